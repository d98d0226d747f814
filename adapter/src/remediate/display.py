"""How times and durations read in both views of an incident (the page and `remediate watch`)."""

from __future__ import annotations

from datetime import UTC, datetime


def clock(moment: float | None) -> str:
    """13:02:31 (UTC), or '' for no moment."""
    return datetime.fromtimestamp(moment, UTC).strftime("%H:%M:%S") if moment else ""


def duration(seconds: float | None) -> str:
    """1.2 s, 45 s, 3 min 05 s, 2 h 04 min."""
    if seconds is None:
        return ""
    if seconds < 10:
        return f"{max(seconds, 0):.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"
