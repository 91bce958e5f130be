"""Building blocks shared by the params models of the built-in agents."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ._confine import confine

__all__ = ["Columns", "FilePath", "Params", "UpstreamName"]


class Params(BaseModel):
    """Base of every params model: unknown keys are errors, models are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


FilePath = Annotated[
    str,
    Field(
        min_length=1,
        description="file path, relative to the working directory (or to --base-dir, "
        "outside which it is refused)",
    ),
    AfterValidator(confine),
]
Columns = Annotated[
    list[Annotated[str, Field(min_length=1)]] | None,
    Field(description="restrict to these columns (default: every eligible column)"),
]
UpstreamName = Annotated[
    str | None,
    Field(description="which upstream task's result to use when there are several"),
]
