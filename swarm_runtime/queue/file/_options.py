"""The file queue's options: defaults, checks with actionable errors, and URL parsing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from ...errors import ConfigError

__all__ = ["FileOptions", "FsyncPolicy", "parse_url"]

MiB = 1024 * 1024

FsyncPolicy = Literal["always", "interval", "never"]
FSYNC_POLICIES = ("always", "interval", "never")


@dataclass(frozen=True, slots=True)
class FileOptions:
    """The options only the file backend has (see :class:`FileQueue` for what they do)."""

    fsync: FsyncPolicy = "always"
    fsync_interval: float = 0.05
    segment_size: int = 64 * MiB
    prefetch: int = 128
    read_only: bool = False
    file_mode: int = 0o600

    def __post_init__(self) -> None:
        if self.fsync not in FSYNC_POLICIES:
            raise ConfigError(
                f"fsync must be one of {', '.join(FSYNC_POLICIES)}; got {self.fsync!r}"
            )
        interval = self.fsync_interval
        if not (isinstance(interval, (int, float)) and 0 < interval < math.inf):
            raise ConfigError(
                f"fsync_interval must be a positive number of seconds, got {interval!r}"
            )
        size = self.segment_size
        if not isinstance(size, int) or not 64 * 1024 <= size <= 2**31:
            raise ConfigError(
                f"segment_size must be an int from 65536 to 2**31 bytes, got {size!r}"
            )
        if not isinstance(self.prefetch, int) or not 0 <= self.prefetch <= 10_000:
            raise ConfigError(f"prefetch must be an int from 0 to 10000, got {self.prefetch!r}")
        mode = self.file_mode
        if not isinstance(mode, int) or mode & ~0o666 or mode & 0o600 != 0o600:
            raise ConfigError(
                "file_mode must be a permission mode giving the owner read and write and "
                f"nothing beyond 0o666 (e.g. 0o600, 0o640), got {_octal(mode)}"
            )

    @property
    def directory_mode(self) -> int:
        """The mode for directories: ``file_mode`` plus search (x) wherever it can read."""
        return self.file_mode | ((self.file_mode & 0o444) >> 2)

    @classmethod
    def names(cls) -> frozenset[str]:
        return frozenset(cls.__dataclass_fields__)

    @classmethod
    def from_strings(cls, raw: dict[str, Any]) -> FileOptions:
        """Options from keyword arguments and URL query strings (typed from the strings)."""
        unknown = set(raw) - cls.names()
        if unknown:
            raise ConfigError(
                f"unknown option(s) for the file:// queue: {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(cls.names()))}, max_attempts, lease, dedup_window, "
                "clock"
            )
        typed: dict[str, Any] = {}
        for name, value in raw.items():
            if not isinstance(value, str):
                typed[name] = value
                continue
            try:
                if name in ("segment_size", "prefetch"):
                    typed[name] = int(value)
                elif name == "file_mode":
                    typed[name] = int(value, 8)
                elif name == "fsync_interval":
                    typed[name] = float(value)
                elif name == "read_only":
                    if value.lower() not in ("1", "0", "true", "false", "yes", "no"):
                        raise ValueError(value)
                    typed[name] = value.lower() in ("1", "true", "yes")
                else:
                    typed[name] = value
            except ValueError:
                raise ConfigError(
                    f"option {name}={value!r} in the queue URL is not valid"
                ) from None
        return cls(**typed)


def _octal(mode: object) -> str:
    return oct(mode) if isinstance(mode, int) else repr(mode)


def parse_url(url: str) -> tuple[str, dict[str, str]]:
    """``file://DIR?opt=value`` (or a plain path) -> ``(DIR, {opt: value})``."""
    if "://" not in url:
        return url, {}
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        raise ConfigError(f"not a file:// URL: {url!r}")
    path = unquote(parts.netloc + parts.path)
    if not path:
        raise ConfigError(f"the file:// URL {url!r} names no directory; use file://DIR")
    return path, dict(parse_qsl(parts.query, keep_blank_values=True))
