"""The Fine–Gray model: proportional hazards of the subdistribution of one cause.

With competing risks (buying, leaving), the cumulative incidence of a cause k
is ``F_k(t)``; its subdistribution hazard is ``-d log(1 - F_k(t)) / dt``
(Fine & Gray 1999).  The Fine–Gray model assumes that a covariate multiplies
that hazard by ``exp(beta)`` at every time, so ``exp(beta) > 1`` means a
larger cumulative incidence of k at every time.  Subjects who had a competing
event stay "at risk" of k after it, with a weight that decays like the
censoring distribution.

As R's ``survival::finegray`` (Geskus 2011), the model is fitted in two steps:
:func:`fine_gray_data` expands the data into counting-process rows
``(fgstart, fgstop]`` with case weights ``fgwt`` (a subject with a competing
event gets extra rows over the censoring intervals that hold an event of
interest, weighted by ``G(t-) / G(s-)``, with ``G`` the Kaplan–Meier curve of
the censoring times and ``s`` the subject's event time), and :func:`fine_gray`
fits the weighted Cox model :func:`~fomolab.stats.cox` to those rows, with
robust standard errors clustered by subject (R's
``coxph(Surv(fgstart, fgstop, fgstatus) ~ x, weights = fgwt, id = id)``,
whose robust variance is close to Fine and Gray's).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from fomolab.errors import DataError
from fomolab.stats import _checks
from fomolab.stats.cox import CoxResult, cox

__all__ = ["fine_gray", "fine_gray_data"]

FG_COLUMNS = ("fgstart", "fgstop", "fgstatus", "fgwt")
MAX_ROWS = 20_000_000  # expanded rows beyond which fine_gray_data refuses


def fine_gray_data(
    data: pd.DataFrame,
    duration: str,
    event: str,
    *,
    cause: object,
    censored: object = 0,
) -> pd.DataFrame:
    """Expand competing-risks data for a Fine–Gray fit, as R's ``survival::finegray``.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject (viewer visit); right-censored follow-up from 0.
    duration : str
        Column of times (>= 0) to the first event or to censoring.
    event : str
        Column naming what ended the follow-up: the value ``censored`` for
        censoring, any other value is a cause (as :func:`cumulative_incidence`).
    cause : object
        The value of ``event`` whose subdistribution is modelled (R's ``etype``).
    censored : object, default 0
        The value of ``event`` meaning "censored".

    Returns
    -------
    pandas.DataFrame
        The rows of ``data`` (every column, index reset), a subject with a
        competing event repeated once per censoring interval after its event
        time that contains an event of ``cause``, with the columns
        ``fgstart, fgstop, fgstatus, fgwt`` appended (R's names): the interval,
        1 where the row's subject had ``cause`` (else 0), and the case weight.
        Subjects keep their original order, their extra rows follow them.
        ``fgstart`` is 0 (or -1 where some time is 0, so that every interval
        has a length, as in R).

    Notes
    -----
    The censoring distribution ``G`` is the Kaplan–Meier curve of the
    censoring times in which an event at time ``x`` is not at risk of being
    censored at ``x`` (Geskus 2011).  A competing-event row ending at ``s`` is
    extended to the first censoring time at or after ``s`` (weight 1), then
    one row per later censoring interval ``(c_{j-1}, c_j]`` that holds an
    event of ``cause`` with weight ``G(c_{j-1}) / G(s-)``, the last interval
    ending at the largest follow-up time.  The numbers equal R's
    ``finegray(Surv(duration, factor(event)) ~ ., data, etype = cause)``
    (without ``strata``: one censoring distribution for all rows).

    The expansion has up to (competing events) x (censoring intervals) rows;
    more than 20 million are refused: fit on a sample of subjects, or round
    the times.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 3, 4, 5], "what": ["buy", "leave", 0, "buy", 0]})
    >>> fg = fine_gray_data(df, "t", "what", cause="buy")
    >>> print(fg[["t", "what", "fgstart", "fgstop", "fgstatus", "fgwt"]].to_string(index=False))
     t  what  fgstart  fgstop  fgstatus     fgwt
     1   buy      0.0     1.0         1 1.000000
     2 leave      0.0     3.0         0 1.000000
     2 leave      3.0     5.0         0 0.666667
     3     0      0.0     3.0         0 1.000000
     4   buy      0.0     4.0         1 1.000000
     5     0      0.0     5.0         0 1.000000
    """
    data = _checks.check_frame(data)
    _checks.check_columns(data, [duration, event])
    clash = [c for c in FG_COLUMNS if c in data.columns]
    if clash:
        raise DataError(f"column {clash[0]!r} of 'data' would be overwritten by fine_gray_data(): "
                        "rename it")
    t = _checks.numeric(data, duration, nonnegative=True)
    ev = _checks.keys(data, event)
    is_cens = np.asarray(pd.Series(ev).eq(censored).to_numpy(), dtype=bool)
    is_cause = np.asarray(pd.Series(ev).eq(cause).to_numpy(), dtype=bool) & ~is_cens
    if not is_cause.any():
        raise DataError(f"column {event!r} has no row with the cause {cause!r}: nothing to model")
    expand = ~is_cens & ~is_cause
    # G: Kaplan–Meier of censoring; at a time x, events at x are no longer at risk
    ctimes, n_cens = np.unique(t[is_cens], return_counts=True)
    t_cens, t_event = np.sort(t[is_cens]), np.sort(t[~is_cens])
    at_risk = (len(t_cens) - np.searchsorted(t_cens, ctimes, side="left")) \
        + (len(t_event) - np.searchsorted(t_event, ctimes, side="right"))
    cprob = np.cumprod(1.0 - n_cens / at_risk)
    ct2 = np.concatenate((ctimes, [t.max()]))
    cp2 = np.concatenate(([1.0], cprob))
    # censoring intervals (ct2[j-1], ct2[j]] that hold an event of the cause
    j_event = np.searchsorted(ct2, np.unique(t[is_cause]), side="left")
    kept = np.unique(j_event[j_event >= 1])
    # a competing-event row ends in interval j (first ct2 >= its time); rows after it
    rows = np.flatnonzero(expand)
    j_row = np.searchsorted(ct2, t[rows], side="left")
    n_extra = len(kept) - np.searchsorted(kept, j_row, side="right")
    total = len(t) + int(n_extra.sum())
    if total > MAX_ROWS:
        raise DataError(f"fine_gray_data() would expand {len(t):,} rows of {duration!r} into "
                        f"{total:,} (more than {MAX_ROWS:,}): fit on a sample of subjects, "
                        "or round the times")
    per_row = np.ones(len(t), dtype=int)
    per_row[rows] += n_extra
    src = np.repeat(np.arange(len(t)), per_row)
    first = np.concatenate(([0], np.cumsum(per_row)[:-1]))
    zero = 0.0 if t.min() > 0 else 2.0 * float(t.min()) - 1.0  # before every time, as R
    start = np.full(total, zero)
    stop = t[src].astype(float)
    wt = np.ones(total)
    stop[first[rows]] = ct2[j_row]
    # the extra rows: for row r, kept[k] for k = searchsorted(kept, j_r, "right") ...
    extra_pos = np.setdiff1d(np.arange(total), first, assume_unique=True)
    k0 = np.searchsorted(kept, j_row, side="right")
    offset = np.arange(len(extra_pos)) - np.repeat(np.cumsum(n_extra) - n_extra, n_extra)
    jj = kept[np.repeat(k0, n_extra) + offset]
    start[extra_pos] = ct2[jj - 1]
    stop[extra_pos] = ct2[jj]
    wt[extra_pos] = cp2[jj] / np.repeat(cp2[j_row], n_extra)
    out = data.iloc[src].reset_index(drop=True)
    return out.assign(fgstart=start, fgstop=stop, fgstatus=is_cause[src].astype(int), fgwt=wt)


def fine_gray(
    data: pd.DataFrame,
    duration: str,
    event: str,
    covariates: str | Sequence[str],
    *,
    cause: object,
    censored: object = 0,
    id: str | None = None,
    ties: str = "efron",
    conf_level: float = 0.95,
) -> CoxResult:
    """Fine–Gray regression: subdistribution hazard ratios of one cause.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject (viewer visit), right-censored from 0.
    duration, event, cause, censored
        As :func:`fine_gray_data`.
    covariates : str or sequence of str
        Numeric or boolean columns (no missing values).
    id : str, optional
        Column of subject ids, for the robust errors; default each row is a
        subject.
    ties : {"efron", "breslow"}, default "efron"
    conf_level : float, default 0.95

    Returns
    -------
    CoxResult
        The weighted Cox fit on :func:`fine_gray_data`'s rows: ``hazard_ratio``
        is the subdistribution hazard ratio (``> 1``: more of ``cause`` at every
        time), ``se`` the robust error clustered by subject and ``naive_se``
        the model-based one; ``n`` counts expanded rows, ``events`` the events
        of ``cause``.

    Notes
    -----
    Equals R's ``coxph(Surv(fgstart, fgstop, fgstatus) ~ covariates,
    weights = fgwt, id = id, data = finegray(Surv(duration, factor(event)) ~ .,
    data, etype = cause))``.  Assumes that censoring is independent of the
    event times and covariates (one censoring distribution for everyone), and
    proportional subdistribution hazards, which can hold for at most one
    cause at a time.  Prefer the cause-specific hazard ratio (:func:`cox` with
    the other causes censored) for how a covariate acts, and the difference
    in cumulative incidence (:func:`cumulative_incidence`, or
    :func:`replicate_effects`' ``cif_difference``) for how many more have the
    event: the subdistribution hazard mixes both.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"t": [1, 2, 3, 4, 5, 6, 7, 8], "x": [1, 0, 1, 0, 1, 0, 1, 0],
    ...                    "what": ["buy", "leave", "buy", "buy", 0, "leave", "buy", 0]})
    >>> fit = fine_gray(df, "t", "what", "x", cause="buy")
    >>> fit.summary.index.tolist(), fit.events
    (['x'], 4)
    """
    covs = _checks.as_list(covariates)
    data = _checks.check_frame(data)
    _checks.check_columns(data, [duration, event, id, *covs])
    subject = "_fg_subject" if id is None else id
    frame = data[[duration, event, *covs] + ([] if id is None else [id])]
    if id is None:
        frame = frame.assign(_fg_subject=np.arange(len(frame)))
    else:
        ids = _checks.keys(data, id)
        if pd.Series(ids).duplicated().any():
            raise DataError(f"column {id!r} repeats a subject: fine_gray() needs one row per subject")
    rows = fine_gray_data(frame, duration, event, cause=cause, censored=censored)
    low = float(rows["fgstart"].min())
    if low < 0:  # a time of 0: shift every time alike (Cox uses only their order), starts >= 0
        rows = rows.assign(fgstart=rows["fgstart"] - low, fgstop=rows["fgstop"] - low)
    return cox(rows, "fgstop", "fgstatus", covs, start="fgstart", weights="fgwt", cluster=subject,
               ties=ties, conf_level=conf_level)
