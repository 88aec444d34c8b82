"""Concentration of a marketplace: how evenly streams share the audience and the sales.

The picture: a street of market stalls.  When every stall draws the same crowd
the street is *fragmented*; when one stall has everyone it is *concentrated*.
Three measures of a set of shares ``s_1 .. s_k`` (summing to 1):

* the Herfindahl–Hirschman index ``sum s_i**2`` (``1/k`` when equal, 1 when
  one stream has everything; the competition authorities' measure);
* the Gini coefficient of the shares (0 when equal, ``1 - 1/k`` when one
  stream has everything);
* the top stream's share ``max s_i``.

:func:`concentration` computes them per group (a run, a run and a measure) from
a long table of shares, such as a results folder's ``streams`` table
(``share_viewers``, ``share_sales``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fomolab.errors import DataError

__all__ = ["CONCENTRATION_MEASURES", "concentration", "gini", "hhi", "top_share"]

#: The measures of :func:`concentration`, in column order.
CONCENTRATION_MEASURES = ("hhi", "gini", "top1_share")


def _shares(x: Sequence[float] | np.ndarray) -> np.ndarray:
    s = np.asarray(x, dtype=float)
    if s.ndim != 1:
        raise DataError(f"shares must be one-dimensional: got shape {s.shape}")
    if (s < 0).any() or not np.isfinite(s).all():
        raise DataError(f"shares must be finite and >= 0: got {float(s[(s < 0) | ~np.isfinite(s)][0])!r}")
    return s


def hhi(shares: Sequence[float] | np.ndarray) -> float:
    """Herfindahl–Hirschman index ``sum(s**2)`` of shares (0 for no shares).

    >>> hhi([0.25, 0.25, 0.25, 0.25]), hhi([1.0, 0.0])
    (0.25, 1.0)
    """
    s = _shares(shares)
    return float((s ** 2).sum())


def gini(shares: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient of shares (0: all equal; ``1 - 1/k``: one takes all; 0 for no shares).

    >>> gini([0.25, 0.25, 0.25, 0.25]), round(gini([1.0, 0, 0, 0]), 2)
    (0.0, 0.75)
    """
    x = np.sort(_shares(shares))
    n = len(x)
    if n == 0 or x.sum() == 0:
        return 0.0
    return float((2 * np.arange(1, n + 1) - n - 1) @ x / (n * x.sum()))


def top_share(shares: Sequence[float] | np.ndarray) -> float:
    """The largest share (NaN for no shares).

    >>> top_share([0.5, 0.3, 0.2])
    0.5
    """
    s = _shares(shares)
    return float(s.max()) if len(s) else float("nan")


def concentration(data: pd.DataFrame, share: str, by: str | Sequence[str]) -> pd.DataFrame:
    """HHI, Gini and top share of the column ``share`` within each group of ``by``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per stream (or stall, seller ...) and group.
    share : str
        Column of shares; each group's shares should sum to 1 (or all be 0).
    by : str or list of str
        Columns naming a group (e.g. ``"run_id"``).

    Returns
    -------
    pandas.DataFrame
        One row per group, in order of first appearance: the ``by`` columns,
        then ``hhi``, ``gini``, ``top1_share`` and ``streams`` (rows in the group).

    Raises
    ------
    DataError
        A column is missing, or a share is negative or not finite.

    Examples
    --------
    >>> d = pd.DataFrame({"run_id": ["a", "a", "b", "b"], "share": [0.5, 0.5, 0.9, 0.1]})
    >>> concentration(d, "share", "run_id").round(3).values.tolist()
    [['a', 0.5, 0.0, 0.5, 2], ['b', 0.82, 0.4, 0.9, 2]]
    """
    keys = [by] if isinstance(by, str) else list(by)
    for c in [share, *keys]:
        if c not in data.columns:
            raise DataError(f"column {c!r} not in the data (columns: {', '.join(map(str, data.columns))})")
    rows = []
    for key, g in data.groupby(keys, sort=False, observed=True):
        s = g[share].to_numpy(float)
        key = key if isinstance(key, tuple) else (key,)
        rows.append((*key, hhi(s), gini(s), top_share(s), len(s)))
    return pd.DataFrame(rows, columns=[*keys, *CONCENTRATION_MEASURES, "streams"])
