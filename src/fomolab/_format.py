"""Numbers as people read them: the one set of formatters for figures and the report.

>>> num(1234.5), num(0.012345), compact(12345), ci(1.5, 1.2, 1.9), p_value(0.0004)
('1,234', '0.0123', '12.3k', '1.5 (1.2–1.9)', '< 0.001')
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["ci", "compact", "level", "minutes", "nice_step", "num", "p_value", "pct"]

#: Shown where a value is missing.
MISSING = "–"


def _missing(x: Any) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def num(x: Any, digits: int = 3) -> str:
    """A number to ``digits`` significant digits; thousands with separators and no decimals.

    >>> num(2.0), num(0.5), num(float("nan")), num("abc")
    ('2', '0.5', '–', 'abc')
    """
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(v):
        return MISSING
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def compact(n: float) -> str:
    """A count in few characters: 12345 -> '12.3k', 2.5e6 -> '2.5M', 950 -> '950'."""
    n = float(n)
    if abs(n) >= 1e6:
        return f"{n / 1e6:.3g}M"
    if abs(n) >= 1e4:
        return f"{n / 1e3:.3g}k"
    return f"{n:,.0f}"


def ci(est: Any, lo: Any, hi: Any, digits: int = 3) -> str:
    """An estimate with its interval, ``"1.5 (1.2–1.9)"``; the estimate alone without bounds."""
    if _missing(est):
        return MISSING
    if _missing(lo) or _missing(hi):
        return num(est, digits)
    return f"{num(est, digits)} ({num(lo, digits)}–{num(hi, digits)})"


def p_value(p: Any) -> str:
    """A p value to 3 decimals, ``"< 0.001"`` below that."""
    if _missing(p):
        return MISSING
    return "< 0.001" if float(p) < 0.001 else f"{float(p):.3f}"


def minutes(s: float) -> str:
    """Seconds as minutes: 600 -> '10 min', 90 -> '1.5 min'."""
    m = float(s) / 60
    return f"{m:g} min" if m == int(m) else f"{m:.1f} min"


def pct(x: float) -> str:
    """A fraction as a percentage: 0.3 -> '30 %'."""
    return f"{100 * float(x):g} %"


def level(conf_level: float) -> str:
    """A confidence level as people write it: 0.95 -> '95 %', 0.9 -> '90 %', 0.995 -> '99.5 %'."""
    return pct(round(float(conf_level), 6))


def nice_step(span: float, target: int) -> float:
    """A round step (1, 2, 2.5, 5 x 10^k) giving about ``target`` steps over ``span``.

    >>> nice_step(60.0, 6), nice_step(1.0, 4)
    (10.0, 0.25)
    """
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw))
    for m in (1, 2, 2.5, 5, 10):
        if m * mag >= raw:
            return float(m * mag)
    return float(10 * mag)  # pragma: no cover
