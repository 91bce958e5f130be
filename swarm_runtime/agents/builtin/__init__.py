"""Built-in data agents: the work of sources, transforms, analyses and sinks.

Each entry of :data:`BUILTINS` is keyed by the name a pipeline's ``uses:`` gives
(``builtin.csv_source``) and holds a :class:`Builtin`: ``name``, ``kind``,
``description``, a pydantic ``params_model`` and a synchronous
``work(params, inputs)``, where ``inputs`` maps upstream task names to their
results. Built-ins compute on Polars frames; a table result is stored as an artifact
and travels by reference (see :mod:`swarm_runtime.artifacts`); ``Builtin.run`` gives
and takes tables as JSON ``{"columns": [...], "rows": [[...], ...]}``.

========================  =========  ====================================================
name                      kind       params
========================  =========  ====================================================
builtin.csv_source        source     path, delimiter, encoding, columns, null_values,
                                     infer_types, limit
builtin.jsonl_source      source     path, columns, limit
builtin.sqlite_source     source     path, table | query (+ parameters), limit
builtin.transform         transform  ops: [clean | normalize | scaling | encoding], input
builtin.analyze           analysis   metrics: [correlation | distribution], input
builtin.parquet_source    source     path, columns, limit
builtin.filter            transform  where (SQL condition), input
builtin.select            transform  columns, input
builtin.rename            transform  columns ({old: new}), input
builtin.derive            transform  columns ({name: SQL expression}), input
builtin.group_by          transform  by, aggs ([{column, fn, name}]), input
builtin.join              transform  left, right, on | left_on + right_on, how, suffix
builtin.sort              transform  by, descending, nulls_last, input
builtin.sql               transform  query (tables named by upstream task)
builtin.json_sink         sink       path, input, indent, records
builtin.csv_sink          sink       path, input, delimiter, header
builtin.parquet_sink      sink       path, input, compression
========================  =========  ====================================================
"""

from __future__ import annotations

from typing import Any

from ._atomic import atomic_write
from ._base import Builtin, BuiltinKind, is_frame, pick_input, pick_table, prepare_inputs
from ._table import is_number, numeric_columns
from .analysis import ANALYZE, METRICS, correlation, distribution
from .parquet import PARQUET_SINK, PARQUET_SOURCE
from .sinks import CSV_SINK, JSON_SINK
from .sources import CSV_SOURCE, JSONL_SOURCE, SQLITE_SOURCE
from .tables import AGGREGATIONS, DERIVE, FILTER, GROUP_BY, JOIN, RENAME, SELECT, SORT, SQL
from .transforms import OPS, TRANSFORM, apply_op

__all__ = [
    "AGGREGATIONS",
    "BUILTINS",
    "BUILTIN_PREFIX",
    "METRICS",
    "OPS",
    "Builtin",
    "BuiltinKind",
    "apply_op",
    "atomic_write",
    "correlation",
    "distribution",
    "get_builtin",
    "is_frame",
    "is_number",
    "numeric_columns",
    "pick_input",
    "pick_table",
    "prepare_inputs",
]

#: ``uses:`` values that start with this name a built-in agent.
BUILTIN_PREFIX = "builtin."

BUILTINS: dict[str, Builtin[Any]] = {
    b.name: b
    for b in (
        CSV_SOURCE,
        JSONL_SOURCE,
        SQLITE_SOURCE,
        PARQUET_SOURCE,
        TRANSFORM,
        FILTER,
        SELECT,
        RENAME,
        DERIVE,
        GROUP_BY,
        JOIN,
        SORT,
        SQL,
        ANALYZE,
        JSON_SINK,
        CSV_SINK,
        PARQUET_SINK,
    )
}


def get_builtin(name: str) -> Builtin[Any]:
    """The built-in called ``name``; :class:`ConfigError` listing the known ones otherwise."""
    from ...errors import ConfigError
    from ._validation import did_you_mean

    try:
        return BUILTINS[name]
    except KeyError:
        raise ConfigError(
            f"unknown built-in agent {name!r}{did_you_mean(name, BUILTINS)}; "
            f"known: {', '.join(BUILTINS)}"
        ) from None
