"""Intervals over replicates, shared by the results-folder summaries."""

from __future__ import annotations

import numpy as np

from fomolab.stats._compat import renamed_kwargs


@renamed_kwargs({"level": "conf_level"})
def t_interval(x: np.ndarray, conf_level: float = 0.95) -> tuple[float, float, float]:
    """Mean of ``x`` (finite values) and its t interval; NaN bounds with fewer than two values.

    >>> [round(v, 3) for v in t_interval(np.array([1.0, 2.0, 3.0]))]
    [2.0, -0.484, 4.484]
    >>> [round(v, 3) for v in t_interval(np.array([1.0, 2.0, 3.0]), conf_level=0.5)]
    [2.0, 1.529, 2.471]
    """
    from scipy import stats

    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if len(x) == 0:
        return np.nan, np.nan, np.nan
    mean = float(x.mean())
    if len(x) < 2:
        return mean, np.nan, np.nan
    half = float(stats.t.ppf(0.5 + conf_level / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    return mean, mean - half, mean + half


def t_band(values: np.ndarray, conf_level: float = 0.95, axis: int = 0
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Means along ``axis`` (finite values) with t intervals, as :func:`t_interval` does for one sample.

    The interval is ``mean +- t(n-1) sd / sqrt(n)``; with fewer than two
    finite values its bounds are NaN (and the mean NaN without any).

    Returns
    -------
    mean, ci_lower, ci_upper, n : numpy.ndarray

    >>> m, lo, hi, n = t_band(np.array([[1.0, 5.0], [2.0, np.nan], [3.0, np.nan]]))
    >>> [round(float(v), 3) for v in (m[0], lo[0], hi[0])], float(m[1]), bool(np.isnan(lo[1])), n.tolist()
    ([2.0, -0.484, 4.484], 5.0, True, [3, 1])
    """
    from scipy import stats

    x = np.asarray(values, dtype=float)
    ok = np.isfinite(x)
    n = ok.sum(axis=axis)
    total = np.where(ok, x, 0.0).sum(axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        dev = np.where(ok, x - np.expand_dims(mean, axis), 0.0)
        sd = np.sqrt((dev ** 2).sum(axis=axis) / (n - 1))
        half = stats.t.ppf(0.5 + conf_level / 2, n - 1) * sd / np.sqrt(n)
    half = np.where(n >= 2, half, np.nan)
    return mean, mean - half, mean + half, n
