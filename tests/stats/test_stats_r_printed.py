"""Known-answer tests of the curves' standard errors against R's own transcripts.

Sources (see r_output.py):

- R_SAS: the valve-seat replacements of 41 diesel engines (Nelson 1995),
  ``survfit(Surv(time1, time2, status) ~ 1, vtemp, id = id)``: R's printed
  mean cumulative number of replacements and its robust (``id =``)
  standard error, the Lawless–Nadeau variance of recurrent events.
- TESTCI: a competing-risks ``survfit`` whose ``std.err`` R declares equal
  (``all.equal`` printing ``TRUE``) to an infinitesimal jackknife written out
  by hand in the transcript; the hand computation is transcribed below.
- SURV_EX_A2 (examples of ?concordance and ?summary.coxph): R's printed
  concordance, its standard error and the pair counts of Cox linear
  predictors on ``mgus2`` and ``lung``.
- CANCER (lung by ph.ecog): R's printed Kaplan–Meier ``survival`` and
  Greenwood ``std.err``, through the formulas R documents for
  ``conf.type = "plain"`` and ``"log-log"`` (``?survfit.formula``).

Data: ``valveSeat.csv`` is R's ``survival::valveSeat`` (columns id, time,
status; 89 rows) from therneau/survival data/reliability.rda, and
``mgus2.csv`` is R's ``survival::mgus2`` (1,384 rows, all 11 columns) from
data/cancer.rda, both at commit a2533a92, values unchanged.
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest
from lifelines.datasets import load_lung

from fomolab.stats import concordance, cox, cumulative_incidence, kaplan_meier, mean_cumulative_function

from r_output import close_to_printed as _close

DATA = pathlib.Path(__file__).parent / "data"

# R, source R_SAS:
# > ties <- which(diff(valveSeat$time)==0 & diff(valveSeat$id)==0)
# > temp <- valveSeat$time; temp[ties] <- temp[ties] - .1
# > first <- !duplicated(valveSeat$id)
# > vtemp <- with(valveSeat, data.frame(id =id, time1= ifelse(first, 0, c(0, temp[-n])),
# +                                     time2= temp, status=status))
# > kfit <- survfit(Surv(time1, time2, status) ~1, vtemp, id=id)
# > xx <- summary(kfit)
# > temp <- cbind(xx$time, xx$n.risk, xx$n.event, xx$cumhaz, xx$std.chaz, ...)
# > print(temp, digits=2)
#  time n.risk n.event Cum haz std.err   (columns "lower 95%", "upper 95%" left out: they
#                                          are -log of the Kaplan–Meier limits, not of these)
VALVE = """
61 41 0.024 0.024|76 41 0.049 0.034|84 41 0.073 0.041|87 41 0.098 0.046|92 41 0.122 0.051
98 41 0.146 0.055|120 41 0.171 0.059|139 41 0.195 0.062|139 41 0.220 0.073|165 41 0.244 0.075
166 41 0.268 0.077|202 41 0.293 0.079|206 41 0.317 0.088|249 41 0.341 0.089|254 41 0.366 0.090
258 41 0.390 0.090|265 41 0.415 0.091|276 41 0.439 0.098|298 41 0.463 0.110|323 41 0.488 0.110
326 41 0.512 0.110|328 41 0.537 0.115|344 41 0.561 0.115|348 41 0.585 0.124|349 41 0.610 0.124
367 41 0.634 0.123|377 41 0.659 0.132|404 40 0.684 0.136|408 40 0.709 0.140|410 40 0.734 0.139
449 40 0.759 0.143|479 40 0.784 0.146|497 40 0.809 0.149|538 40 0.834 0.152|539 40 0.859 0.155
561 40 0.884 0.162|563 40 0.909 0.164|570 40 0.934 0.170|573 40 0.959 0.169|581 38 0.985 0.171
586 34 1.014 0.174|604 22 1.060 0.185|621 17 1.119 0.208|635 16 1.181 0.207|640 16 1.244 0.226
646 13 1.320 0.229|653 9 1.432 0.252|653 9 1.543 0.312
"""


def _valve_rows() -> pd.DataFrame:
    v = pd.read_csv(DATA / "valveSeat.csv")
    assert len(v) == 89 and v["id"].nunique() == 41
    t = v["time"].to_numpy(dtype=float).copy()
    ties = np.flatnonzero((np.diff(v["time"]) == 0) & (np.diff(v["id"]) == 0))
    t[ties] -= 0.1  # R's fudge of the two dual failures
    first = ~v["id"].duplicated().to_numpy()
    t1 = np.where(first, 0.0, np.concatenate(([0.0], t[:-1])))
    return pd.DataFrame({"id": v["id"], "time1": t1, "time2": t, "status": v["status"]})


def test_mcf_of_recurrent_events_and_its_robust_se_match_r_valve_seats():
    res = mean_cumulative_function(_valve_rows(), "time2", "status", id="id", start="time1")
    cur = res.curve[res.curve["events"] > 0].reset_index(drop=True)
    printed = [row.split() for line in VALVE.strip().splitlines() for row in line.split("|")]
    assert len(cur) == len(printed) == 48
    for (_, got), (time, n_risk, chaz, se) in zip(cur.iterrows(), printed, strict=True):
        _close(got["time"], time)
        assert int(got["at_risk"]) == int(n_risk)
        _close(got["mcf"], chaz)
        _close(got["std_err"], se)
    assert res.summary.loc[0, "subjects"] == 41 and res.summary.loc[0, "events"] == 48


def _testci_by_hand() -> tuple[np.ndarray, np.ndarray]:
    """R's ``byhand()`` of TESTCI, line for line: the states (s0), 1, 2 at times 1, 2, 3, 5, 6."""
    p1 = np.array([1.0, 0, 0])
    p2 = np.array([6 / 7, 1 / 7, 0])
    u2 = np.tile([1 / 49, -1 / 49, 0], (8, 1))
    u2[0] = 0  # subject 1 is not present
    u2[1, :2] += [-1 / 7, 1 / 7]
    p3 = np.array([(6 / 7) * (3 / 5), 1 / 7, 12 / 35])
    h3 = np.array([[3 / 5, 0, 2 / 5], [0, 1, 0], [0, 1, 0]])
    u3 = u2 @ h3
    u3[3:8, 0] += p2[0] * 2 / 25
    u3[3:8, 2] -= p2[0] * 2 / 25
    u3[3] += [-p2[0] / 5, 0, p2[0] / 5]
    u3[5] = u3[3]
    p6 = np.array([0, 1 / 7, 6 / 7])
    u6 = np.column_stack([np.zeros(8), u3[:, 1], -u3[:, 1]])
    V = np.vstack([np.zeros(3), (u2 ** 2).sum(0), (u3 ** 2).sum(0), (u3 ** 2).sum(0),
                   (u6 ** 2).sum(0)])
    return np.vstack([p1, p2, p3, p3, p6]), V


def test_cumulative_incidence_pointwise_se_is_r_survfit_std_err():
    # R, source TESTCI:
    # > tdata <- data.frame(time=c(1,2,2,3,3,3,5,6), status = c(0,1,0,1,0,1,0,1),
    # +                     event = c(1,1,2,2,1,2,3,2), grp = c(1,2,1,2,1,2,1,2), id = 1:8)
    # > fit <- survfit(Surv(time, factor(status*event)) ~1, tdata)
    # > bfit <- byhand()
    # > aeq(fit$pstate, bfit$P)
    # [1] TRUE
    # > aeq(fit$n.risk[,1], c(8,7,5,2,1))
    # [1] TRUE
    # > aeq(fit$std.err, sqrt(bfit$V))
    # [1] TRUE
    tdata = pd.DataFrame({"time": [1, 2, 2, 3, 3, 3, 5, 6], "status": [0, 1, 0, 1, 0, 1, 0, 1],
                          "event": [1, 1, 2, 2, 1, 2, 3, 2]})
    tdata["state"] = tdata["status"] * tdata["event"]
    P, V = _testci_by_hand()
    ci = cumulative_incidence(tdata, "time", "state")
    for cause in (1, 2):
        cur = ci.curve[ci.curve["cause"] == cause]
        np.testing.assert_array_equal(cur["time"], [1, 2, 3, 5, 6])
        np.testing.assert_array_equal(cur["at_risk"], [8, 7, 5, 2, 1])
        np.testing.assert_allclose(cur["cuminc"], P[:, cause], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(cur["std_err"], np.sqrt(V[:, cause]), rtol=1e-10, atol=1e-15)
    # the event-free state's share is 1 minus the causes' (R's first column)
    total = ci.curve.groupby("time")["cuminc"].sum().to_numpy()
    np.testing.assert_allclose(1 - total, P[:, 0], atol=1e-15)


@pytest.mark.parametrize("conf_type", ["plain", "log-log"])
def test_km_plain_and_log_log_limits_from_r_printed_greenwood(conf_type):
    # R, source CANCER: summary(survfit(Surv(time, status) ~ ph.ecog, lung), times=...)
    #  time n.risk n.event survival std.err   (ph.ecog = 0, 1, 2)
    # R documents conf.type="plain" as S -+ z std.err (clipped to [0, 1]) and "log-log" as
    # exp(-exp(log(-log S) -+ z se(log S) / log S)), se(log S) = std.err / S.  The limits below
    # are those formulas on R's printed survival and std.err, good to the error their rounding
    # carries (a unit in std.err's last digit moves a limit by z / 2 of it).
    printed = {0: [(180, "0.841", "0.0461"), (365, "0.535", "0.0728"), (730, "0.193", "0.0707")],
               1: [(90, "0.920", "0.0255"), (365, "0.431", "0.0509"), (730, "0.114", "0.0388")],
               2: [(120, "0.7174", "0.0641"), (365, "0.2147", "0.0614"), (730, "0.0371", "0.0345")]}
    lung = load_lung().dropna(subset=["ph.ecog"])
    km = kaplan_meier(lung, "time", "status", by="ph.ecog", conf_type=conf_type)
    z = 1.959963984540054
    for g, pts in printed.items():
        cur = km.curve[km.curve["group"] == g]
        for t, surv, se in pts:
            row = cur[cur["time"] <= t].iloc[-1]
            s, e = float(surv), float(se)
            _close(row["survival"], surv)
            _close(row["survival"] * row["std_err"], se)
            if conf_type == "plain":
                lo, hi = max(s - z * e, 0.0), min(s + z * e, 1.0)
            else:
                w = z * (e / s) / np.log(s)
                lo, hi = np.exp(-np.exp(np.log(-np.log(s)) - w)), np.exp(-np.exp(np.log(-np.log(s)) + w))
            tol = 0.5 * 10.0 ** -len(se.split(".")[1]) * z * 1.5 + 0.5 * 10.0 ** -len(surv.split(".")[1]) * 3
            assert row["ci_lower"] == pytest.approx(lo, abs=tol), (g, t)
            assert row["ci_upper"] == pytest.approx(hi, abs=tol), (g, t)
    assert km.conf_type == conf_type


def test_concordance_of_cox_predictors_matches_r_mgus2():
    # R, source SURV_EX_A2 (example of ?concordance):
    # > options(na.action = na.exclude)   # predict all 1384 obs, including missing
    # > fit4 <- coxph(Surv(ptime, pstat) ~ age + sex + mspike, mgus2)
    # > fit5 <- coxph(Surv(ptime, pstat) ~ age + sex + hgb + creat, mgus2)
    # > p4 <- -predict(fit4) # high risk scores predict shorter survival
    # > p5 <- -predict(fit5)
    # > cfit <- concordance(Surv(ptime, pstat) ~p3 +  p4 + p5, mgus2)
    # n=1338 (46 observations deleted due to missingness)
    #    concordance     se
    # p4      0.6618 0.0310
    # p5      0.6000 0.0293
    #    concordant discordant tied.x tied.y tied.xy
    # p4      51258      26180     74     28       0
    # p5      46507      31003      2     28       0
    m = pd.read_csv(DATA / "mgus2.csv")
    assert len(m) == 1384
    m["male"] = (m["sex"] == "M").astype(int)
    printed = {"p4": (["age", "male", "mspike"], "0.6618", "0.0310", (51258, 26180, 74, 28, 0)),
               "p5": (["age", "male", "hgb", "creat"], "0.6000", "0.0293", (46507, 31003, 2, 28, 0))}
    for name, (covs, *_) in printed.items():
        fit = cox(m.dropna(subset=covs), "ptime", "pstat", covs)  # each fit on its own complete rows
        m[name] = -(m[covs].to_numpy() @ fit.summary["coef"].to_numpy())
    common = m.dropna(subset=["p4", "p5"])  # R's 1338 rows complete in p3, p4 and p5
    assert len(common) == 1338
    for name, (_, c, se, counts) in printed.items():
        row = concordance(common, "ptime", "pstat", name).summary.iloc[0]
        _close(row["concordance"], c)
        _close(row["se"], se)
        assert tuple(row[["concordant", "discordant", "tied_x", "tied_y", "tied_xy"]]) == counts
        assert row["n"] == 1338


def test_concordance_of_a_cox_fit_matches_r_lung():
    # R, source SURV_EX_A2 (example of ?summary.coxph):
    # > fit <- coxph(Surv(time, status) ~ age + sex, lung); summary(fit)
    # Concordance= 0.603  (se = 0.025 )
    c = cox(load_lung(), "time", "status", ["age", "sex"]).concordance
    _close(c["concordance"], "0.603")
    _close(c["se"], "0.025")
