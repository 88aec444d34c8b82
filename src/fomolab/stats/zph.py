"""Is the hazard ratio constant over time?  R's ``cox.zph`` for :func:`fomolab.stats.cox` fits.

A tactic acts at stream times, so an arm's hazard ratio is often larger in some
stretch of a visit than in another, and a Cox model's single hazard ratio is
then an average whose weights depend on who is still present.  Grambsch and
Therneau (1994) showed that if the coefficient of covariate x drifts as
``beta + theta g(t)``, the scaled Schoenfeld residuals trend with ``g(t)``;
R's ``cox.zph`` (survival >= 3.0) tests ``theta = 0`` with the score test of
the added covariates ``x * g(t)`` at the fitted ``beta`` (per covariate, 1 df
each, and globally, p df).  This module computes that score test exactly, from
the fit's risk sets, as R's ``zph1.c`` does: the full ``2p x 2p`` information of
``(x, x g(t))`` and the score of the added terms (the score of ``x`` is set to
0, its value at the maximum).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy import stats as _st
from scipy.stats import rankdata

from fomolab.errors import DataError
from fomolab.stats._result import StatsResult
from fomolab.stats.cox import CoxResult, _efron_frac

__all__ = ["TRANSFORMS", "ZphResult", "cox_zph"]

#: The time scales ``g(t)`` of R's ``cox.zph(transform = )``.
TRANSFORMS = ("km", "rank", "identity", "log")


@dataclass(frozen=True, eq=False)
class ZphResult(StatsResult):
    """Score tests of proportional hazards, laid out like R's ``print(cox.zph(fit))``.

    Attributes
    ----------
    summary : pandas.DataFrame
        Indexed by covariate, then ``GLOBAL``; columns ``COLUMNS``: ``chisq, df, p``.
    transform : str
        The time scale ``g(t)``: ``"km"``, ``"rank"``, ``"identity"`` or ``"log"``.
    """

    COLUMNS: ClassVar[tuple[str, ...]] = ("chisq", "df", "p")
    summary: pd.DataFrame
    transform: str

    def __repr__(self) -> str:
        g = self.summary.loc["GLOBAL"]
        return (f"<ZphResult: {len(self.summary) - 1} covariate(s), transform={self.transform!r}, "
                f"global chisq={g['chisq']:.4g} on {int(g['df'])} df, p={g['p']:.4g}>")

    def _show_index(self) -> bool:
        return True


def _gtime(transform: str, time: np.ndarray, event: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    if transform == "identity":
        g = time.astype(float)
    elif transform == "log":
        if (time <= 0).any():
            raise DataError("transform='log' needs event/censoring times > 0: a time is 0")
        g = np.log(time)
    elif transform == "rank":
        g = rankdata(time)  # R's rank(): ties get their average rank
    else:  # "km": 1 - the left-continuous Kaplan–Meier of all rows, strata ignored
        # (with start times, R's survfitKM of Surv(start, stop, event): at risk at t iff start < t <= stop)
        ut, inv = np.unique(time, return_inverse=True)
        d = np.bincount(inv, weights=event, minlength=len(ut))
        n = (len(time) - np.searchsorted(np.sort(time), ut, side="left")).astype(float)
        if start is not None:
            n -= len(start) - np.searchsorted(np.sort(start), ut, side="left")
        with np.errstate(divide="ignore", invalid="ignore"):
            surv = np.cumprod(np.where(n > 0, 1.0 - d / n, 1.0))
        g = 1.0 - np.concatenate(([1.0], surv[:-1]))[inv]
    out: np.ndarray = g - g[event > 0].mean()
    return out


def cox_zph(fit: CoxResult, transform: str = "km") -> ZphResult:
    """Test proportional hazards of a Cox fit: R's ``cox.zph(fit, transform)``.

    Parameters
    ----------
    fit : CoxResult
        A fit from :func:`fomolab.stats.cox` (with or without strata, start
        times and case weights).
    transform : {"km", "rank", "identity", "log"}, default "km"
        The time scale ``g(t)`` against which a drifting coefficient is sought:
        ``"km"`` (R's default) is 1 minus the left-continuous Kaplan–Meier
        curve of all rows, which spreads the event times evenly and is robust
        to a few very long times; ``"rank"`` the rank of the time; ``"identity"``
        the time itself; ``"log"`` its logarithm.

    Returns
    -------
    ZphResult
        ``.summary``: one row per covariate and a ``GLOBAL`` row, with the
        score statistic ``chisq``, its degrees of freedom and p value.

    Notes
    -----
    The score-test form of survival 3.x (the printed example of
    ``?cox.zph``, survival 3.8): earlier releases (< 3.0) regressed the scaled
    Schoenfeld residuals on ``g(t)`` and give slightly different numbers.  A
    small p says the covariate's hazard ratio changes over time; the test
    does not say how, so plot or model the effect by time window.

    Examples
    --------
    >>> import pandas as pd
    >>> from fomolab.stats import cox
    >>> test1 = pd.DataFrame({"time": [9, 1, 1, 6, 6, 8], "status": [1, 1, 0, 1, 1, 0],
    ...                       "x": [0, 1, 1, 1, 0, 0]})
    >>> zp = cox_zph(cox(test1, "time", "status", "x"), transform="log")
    >>> zp.summary.columns.tolist()
    ['chisq', 'df', 'p']
    >>> round(float(zp.summary.loc["x", "chisq"]), 4)
    0.2387
    """
    if not isinstance(fit, CoxResult):
        raise DataError(f"cox_zph() needs a CoxResult from fomolab.stats.cox: got {type(fit).__name__}")
    if transform not in TRANSFORMS:
        raise DataError(f"'transform' must be one of {', '.join(map(repr, TRANSFORMS))}: "
                        f"got {transform!r}")
    if fit._x is None or fit._rs is None or fit._time is None:
        raise DataError("this CoxResult was built without its data: refit it with fomolab.stats.cox")
    if not np.isfinite(fit.summary["coef"]).all():
        raise DataError("the Cox fit has a non-finite coefficient: no test of proportional hazards")
    X, rs, names = fit._x, fit._rs, list(fit.summary.index)
    event = rs.event.astype(float)
    g_row = _gtime(transform, fit._time, event, fit._start)
    beta = fit.summary["coef"].to_numpy(dtype=float)
    w = rs.wt * np.exp(X @ beta)
    wx = w[:, None] * X
    wxx = wx[:, :, None] * X[:, None, :]
    f = _efron_frac(rs, fit.ties)
    gi = rs.ev_group
    pw = rs.piece_wt
    s0 = rs.risk_sums(w)[gi] - f * rs.death_sums(w)[gi]
    a = (rs.risk_sums(wx)[gi] - f[:, None] * rs.death_sums(wx)[gi]) / s0[:, None]
    V = (rs.risk_sums(wxx)[gi] - f[:, None, None] * rs.death_sums(wxx)[gi]) / s0[:, None, None] \
        - a[:, :, None] * a[:, None, :]
    V = V * pw[:, None, None]
    ev = rs.ev_rows
    g = g_row[ev]
    u2 = (g * rs.wt[ev]) @ X[ev] - (g * pw) @ a
    p = X.shape[1]
    i11 = V.sum(axis=0)
    i12 = np.einsum("k,kij->ij", g, V)
    i22 = np.einsum("k,kij->ij", g * g, V)
    imat = np.block([[i11, i12], [i12, i22]])
    u = np.concatenate((np.zeros(p), u2))
    rows = {}
    for j, name in enumerate(names):
        kk = list(range(p)) + [p + j]
        uj = u[kk]
        rows[name] = (float(uj @ np.linalg.solve(imat[np.ix_(kk, kk)], uj)), 1)
    rows["GLOBAL"] = (float(u @ np.linalg.solve(imat, u)), p)
    summary = pd.DataFrame.from_dict(rows, orient="index", columns=["chisq", "df"])
    summary["p"] = _st.chi2.sf(summary["chisq"], summary["df"])
    summary.index.name = "covariate"
    return ZphResult(summary[list(ZphResult.COLUMNS)], transform)
