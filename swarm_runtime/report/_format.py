"""Number, duration and time formatting shared by the report's HTML and SVG."""

from __future__ import annotations

import datetime as dt
import math

__all__ = ["fmt_number", "fmt_seconds", "fmt_time"]


def fmt_number(value: object, *, grouping: bool = True) -> str:
    """Ints (with thousands separators unless ``grouping=False``), floats to 4 significant
    digits, everything else as text."""
    if isinstance(value, bool) or value is None:
        return "null" if value is None else str(value).lower()
    if isinstance(value, int):
        return f"{value:,}" if grouping else str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0:
            return "0"
        if abs(value) >= 1e6 or abs(value) < 1e-3:
            return f"{value:.3e}"
        if abs(value) >= 1000:
            return f"{value:,.1f}"
        return f"{value:.4g}"
    return str(value)


def fmt_seconds(seconds: float, *, axis: bool = False) -> str:
    """``850 ms``, ``2.4 s``, ``3m 05s``, ``1h 02m`` (axis labels drop needless decimals)."""
    if seconds < 0:
        seconds = 0.0
    if seconds == 0 and axis:
        return "0"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        text = f"{seconds:.1f}".rstrip("0").rstrip(".") if axis else f"{seconds:.2f}"
        return f"{text} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes}m {rest:02d}s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours}h {rest // 60:02d}m"


def fmt_time(moment: dt.datetime | None) -> str:
    """An ISO-like UTC timestamp to the second, or an em dash."""
    if moment is None:
        return "—"
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
