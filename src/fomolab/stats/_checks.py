"""Input checks shared by every function of :mod:`fomolab.stats`.

All user-facing validation of DataFrames lives here, so that every statistic
rejects bad input the same way: a :class:`~fomolab.errors.DataError` that names
the column, the rule it breaks and the first offending value (with its row
label), never a silent NaN further down.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from fomolab.errors import DataError

__all__ = [
    "as_list",
    "check_frame",
    "check_columns",
    "numeric",
    "events01",
    "keys",
    "check_start_stop",
    "check_alpha",
    "check_probability",
]


def as_list(cols: str | Sequence[str] | None) -> list[str]:
    """Turn ``None``, one column name or a sequence of names into a list."""
    if cols is None:
        return []
    if isinstance(cols, str):
        return [cols]
    return list(cols)


def check_frame(data: object, what: str = "data") -> pd.DataFrame:
    """Check that ``data`` is a non-empty :class:`pandas.DataFrame`."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(
            f"'{what}' must be a pandas DataFrame: got {type(data).__name__}"
        )
    if len(data) == 0:
        raise DataError(f"'{what}' must have at least one row: it is empty")
    return data


def check_columns(data: pd.DataFrame, cols: Iterable[str | None], what: str = "data") -> None:
    """Check that every named column exists in ``data``."""
    for col in cols:
        if col is None:
            continue
        if col not in data.columns:
            have = ", ".join(map(str, list(data.columns)[:20]))
            raise DataError(
                f"column {col!r} not found in '{what}' (columns are: {have})"
            )


def _first(data: pd.DataFrame, mask: np.ndarray) -> tuple[object, int]:
    pos = int(np.flatnonzero(mask)[0])
    return _py(data.index[pos]), pos


def _py(v: object) -> object:
    """A numpy scalar as the plain Python value (for readable messages)."""
    return v.item() if isinstance(v, np.generic) else v


def numeric(
    data: pd.DataFrame,
    col: str,
    *,
    nonnegative: bool = False,
    positive: bool = False,
    what: str = "data",
) -> np.ndarray:
    """Return column ``col`` as a float array, rejecting non-numbers.

    Booleans are accepted (as 0/1).  NaN, infinite, negative (if
    ``nonnegative``) and non-positive (if ``positive``) values are rejected
    with the first offending row.
    """
    s = data[col]
    if s.dtype == bool:
        s = s.astype(float)
    if not (pd.api.types.is_numeric_dtype(s)):
        bad = pd.to_numeric(s, errors="coerce").isna().to_numpy() & s.notna().to_numpy()
        if bad.any():
            label, pos = _first(data, bad)
            raise DataError(
                f"column {col!r} of '{what}' must be numeric: row {label!r} "
                f"holds {_py(s.iloc[pos])!r}"
            )
        s = pd.to_numeric(s, errors="coerce")
    x = s.to_numpy(dtype=float, na_value=np.nan)
    nan = np.isnan(x)
    if nan.any():
        label, _ = _first(data, nan)
        raise DataError(
            f"column {col!r} of '{what}' must not contain missing values: "
            f"row {label!r} is NaN (drop or impute such rows first)"
        )
    inf = np.isinf(x)
    if inf.any():
        label, pos = _first(data, inf)
        raise DataError(
            f"column {col!r} of '{what}' must be finite: row {label!r} holds {float(x[pos])!r}"
        )
    if positive and (x <= 0).any():
        label, pos = _first(data, x <= 0)
        raise DataError(
            f"column {col!r} of '{what}' must be > 0: row {label!r} holds {float(x[pos])!r}"
        )
    if nonnegative and (x < 0).any():
        label, pos = _first(data, x < 0)
        raise DataError(
            f"column {col!r} of '{what}' must be >= 0: row {label!r} holds {float(x[pos])!r}"
        )
    return np.asarray(x, dtype=float)


def events01(data: pd.DataFrame, col: str, what: str = "data", *, as_float: bool = True) -> np.ndarray:
    """Return an event indicator column as 0/1 floats.

    Only booleans and the numbers 0 and 1 are accepted.  R's 1/2 coding
    (1 = censored, 2 = event), other codes and missing values are rejected:
    statsmodels would silently treat every nonzero code as an event.

    With ``as_float`` False, a boolean or integer column is returned as its
    own values (no float copy of every row), for callers that only compare
    it with 0 and sum it.  A float column is returned as its values either
    way.  The caller must not write into the array.
    """
    s = data[col]
    if s.dtype == bool:
        return np.asarray(s.to_numpy() if not as_float else s.to_numpy(dtype=float))
    if not as_float and s.dtype.kind in "iu":  # no missing value in an integer column
        x = s.to_numpy()
        bad = (x != 0) & (x != 1)
        if bad.any():
            label, pos = _first(data, bad)
            hint = " (R's 1 = censored / 2 = event coding? use status - 1)" if bool(((x == 1) | (x == 2)).all()) \
                else ""
            raise DataError(
                f"column {col!r} of '{what}' (event indicator) must be 0/1 or "
                f"boolean: row {label!r} holds {_py(x[pos])!r}{hint}"
            )
        return np.asarray(x)
    if s.isna().any():
        label, _ = _first(data, s.isna().to_numpy())
        raise DataError(
            f"column {col!r} of '{what}' (event indicator) must not contain "
            f"missing values: row {label!r} is missing"
        )
    if s.dtype == object:
        ok = s.map(lambda v: isinstance(v, (bool, np.bool_, int, float, np.integer, np.floating)))
        if not ok.all():
            label, pos = _first(data, ~ok.to_numpy())
            raise DataError(
                f"column {col!r} of '{what}' (event indicator) must be 0/1 or "
                f"boolean: row {label!r} holds {_py(s.iloc[pos])!r}"
            )
    x = pd.to_numeric(s).to_numpy(dtype=float)
    bad = ~np.isin(x, (0.0, 1.0))
    if bad.any():
        label, pos = _first(data, bad)
        hint = ""
        if set(np.unique(x)) <= {1.0, 2.0}:
            hint = " (R's 1 = censored / 2 = event coding? use status - 1)"
        raise DataError(
            f"column {col!r} of '{what}' (event indicator) must be 0/1 or "
            f"boolean: row {label!r} holds {_py(s.iloc[pos])!r}{hint}"
        )
    return np.asarray(x, dtype=float)


def keys(data: pd.DataFrame, col: str, what: str = "data") -> np.ndarray:
    """Return a grouping column (groups, strata, clusters) without missing values."""
    s = data[col]
    miss = s.isna().to_numpy()
    if miss.any():
        label, _ = _first(data, miss)
        raise DataError(
            f"column {col!r} of '{what}' must not contain missing values: "
            f"row {label!r} is missing"
        )
    return np.asarray(s.to_numpy())


def check_start_stop(
    data: pd.DataFrame, start: np.ndarray, stop: np.ndarray, start_col: str, stop_col: str
) -> None:
    """Check the counting-process rule ``start < stop`` row by row."""
    bad = ~(stop > start)
    if bad.any():
        label, pos = _first(data, bad)
        raise DataError(
            f"column {stop_col!r} must be > {start_col!r} in every row "
            f"((start, stop] intervals): row {label!r} has start={float(start[pos])!r}, "
            f"stop={float(stop[pos])!r}"
        )


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """Check a significance level in (0, 1)."""
    return check_probability(alpha, name)


def check_probability(p: float, name: str) -> float:
    """Check a number strictly between 0 and 1."""
    try:
        v = float(p)
    except (TypeError, ValueError):
        raise DataError(f"{name!r} must be a number in (0, 1): got {p!r}") from None
    if not (0.0 < v < 1.0):
        raise DataError(f"{name!r} must be in (0, 1): got {p!r}")
    return v
