"""Number formats shared by the dashboard and the command line (no Streamlit, no pandas)."""

from __future__ import annotations

import math


def pct(rate: float | None, digits: int = 1, missing: str = "–") -> str:
    """A rate as a percentage: 0.1234 -> "12.3%"; None or NaN -> ``missing``."""
    return missing if rate is None or math.isnan(rate) else f"{rate * 100:.{digits}f}%"
