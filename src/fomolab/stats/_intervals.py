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
