"""Numbers as people read them: the one set of formatters for figures and the report.

>>> num(1234.5), num(0.012345), compact(12345), ci(1.5, 1.2, 1.9), p_value(0.0004)
('1,234', '0.0123', '12.3k', '1.5 (1.2–1.9)', '< 0.001')
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["ci", "compact", "decimals", "estimate", "fixed", "level", "minutes", "nice_step", "num", "p_value",
           "pct", "tick"]

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


# ------------------------------------------------------------- fixed-point (no e-notation)

#: The minus sign of typeset numbers (U+2212), wider than a hyphen.
MINUS = "\u2212"

#: Most decimals :func:`fixed` and :func:`estimate` ever write.
MAX_DECIMALS = 8


def decimals(x: float, digits: int = 3) -> int:
    """Decimals that show ``x`` to ``digits`` significant digits, never fewer than 0.

    >>> decimals(152.4), decimals(1.524), decimals(0.001524), decimals(0.0)
    (0, 2, 5, 0)
    """
    v = abs(float(x))
    if v == 0 or not math.isfinite(v):
        return 0
    return min(MAX_DECIMALS, max(0, digits - 1 - math.floor(math.log10(v))))


def _write(v: float, places: int, trim: bool) -> str:
    text = f"{abs(v):,.{places}f}"
    if trim and "." in text:
        text = text.rstrip("0").rstrip(".")
    if text.strip("0.,") == "":  # rounds to zero: no signed zero
        return text
    return (MINUS if v < 0 else "") + text


def fixed(x: Any, digits: int = 3, *, places: int | None = None) -> str:
    """A number in fixed-point notation, never in e-notation.

    To ``digits`` significant digits, except that the integer part is never
    rounded (152.4 to one digit is ``'152'``, not ``'2e+02'``); thousands are
    separated by commas; trailing zeros are dropped; negative numbers take
    the minus sign U+2212.  ``places`` fixes the decimals instead (zeros kept).

    >>> fixed(152.4, 1), fixed(152.4, 4), fixed(0.000300), fixed(-1234.5), fixed(2.0)
    ('152', '152.4', '0.0003', '−1,234', '2')
    >>> fixed(0.5, places=2), fixed(float("nan")), fixed("abc"), fixed(3e-12)
    ('0.50', '–', 'abc', '0')
    """
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(v):
        return MISSING
    if math.isinf(v):
        return (MINUS if v < 0 else "") + "∞"
    if places is not None:
        return _write(v, places, trim=False)
    return _write(v, decimals(v, digits), trim=True)


def estimate(est: Any, lo: Any = None, hi: Any = None, digits: int = 3) -> str:
    """An estimate and its interval with the same decimals, in fixed-point notation.

    The decimals give the largest of the three numbers ``digits`` significant
    digits, and the interval's width two, so a narrow interval around a large
    number still shows where its bounds lie.  Bounds are joined by an en dash,
    or by "to" when one is negative (a dash would read as a minus sign).
    Without bounds, the estimate alone (:func:`fixed`).

    >>> estimate(152.4, 101.2, 203.9, 1), estimate(200.4, 199.9, 201.0)
    ('152 (101–204)', '200.4 (199.9–201.0)')
    >>> estimate(1.66, -0.373, 3.7)
    '1.66 (−0.37 to 3.70)'
    >>> estimate(0.5), estimate(float("nan"), 1, 2)
    ('0.5', '–')
    """
    if _missing(est):
        return MISSING
    if _missing(lo) or _missing(hi):
        return fixed(est, digits)
    e, a, b = float(est), float(lo), float(hi)
    big = max(abs(e), abs(a), abs(b))
    width = abs(b - a)
    places = decimals(big, digits)
    if width > 0 and math.isfinite(width):
        places = max(places, min(MAX_DECIMALS, max(0, 1 - math.floor(math.log10(width)))))
    sep = " to " if a < 0 or b < 0 else "–"
    return f"{_write(e, places, False)} ({_write(a, places, False)}{sep}{_write(b, places, False)})"


def tick(x: float, step: float | None = None) -> str:
    """An axis tick label: fixed-point, with the decimals the tick ``step`` needs.

    >>> tick(0.25, 0.25), tick(2000.0, 500.0), tick(1e-4, 5e-5), tick(-3.0, 1.0)
    ('0.25', '2,000', '0.0001', '−3')
    """
    if step is None or step <= 0 or not math.isfinite(step):
        return fixed(x, 3)
    if float(step).is_integer():
        return fixed(x, places=0)
    return _write(round(float(x), 10), MAX_DECIMALS, trim=True)
