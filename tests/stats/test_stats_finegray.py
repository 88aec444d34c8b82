"""Known-answer tests of fine_gray_data and fine_gray against R's printed output.

Sources (see r_output.py):

- FINEGRAY: survival's tests/finegray.R checks ``finegray()``'s rows and
  weights on a 14-row data set against values written out by hand (R prints
  ``TRUE`` for each ``all.equal``); they are transcribed below.
- COMPETE: the built vignette "Competing risks" of survival 3.8-6, whose
  transcript prints the Fine–Gray fits of PCM and of death on ``mgus2``
  (``finegray`` + weighted ``coxph``), the expanded data's size and first rows.

Data: ``mgus2.csv`` is R's ``survival::mgus2`` (see test_stats_r_printed.py).
"""

from __future__ import annotations

import pathlib

import numpy as np
import pandas as pd
import pytest

from fomolab.errors import DataError
from fomolab.stats import cox, fine_gray, fine_gray_data

from r_output import close_to_printed as _close

DATA = pathlib.Path(__file__).parent / "data"

# R, source FINEGRAY:
# > fdata <- data.frame(time  =c(1,2,3,4,4,4,5,5,6,8,8, 9,10,12),
# +                     status=factor(c(1,2,0,1,0,0,2,1,0,0,2, 0,1 ,0), 0:2,
# +                              c("cen", "type1", "type2")),
# +                     x     =c(5,4,3,1,2,1,1,2,2,4,6,1,2, 0),
# +                     id = 1:14)
# > test1 <- finegray(Surv(time, status) ~., fdata, count="fgcount")
FDATA = pd.DataFrame({"time": [1, 2, 3, 4, 4, 4, 5, 5, 6, 8, 8, 9, 10, 12],
                      "status": pd.Categorical.from_codes([1, 2, 0, 1, 0, 0, 2, 1, 0, 0, 2, 0, 1, 0],
                                                          ["cen", "type1", "type2"]),
                      "x": [5, 4, 3, 1, 2, 1, 1, 2, 2, 4, 6, 1, 2, 0], "id": range(1, 15)})


def test_expanded_rows_and_weights_are_r_finegray():
    # > csurv <- list(time=c(0, 3, 4, 6, 8, 9),
    # +               p = cumprod(c(1, 11/12, 8/10, 5/6, 3/4, 2/3)))
    # > all.equal(test1$id, c(1, 2,2,2,2, 3:6, 7, 7, 8:11, 11, 12:14))
    # [1] TRUE
    # > twt <- c(1, csurv$p[c(1,2,3,6)], 1,1,1, 1, 1, 5/12, 1,1,1,
    # +                          1, 1/2, 1,1,1)
    # > all.equal(test1$fgwt, twt)
    # [1] TRUE
    # > all.equal(test1$fgstop[test1$fgcount>0], c(4,6,12, 12,12))
    # [1] TRUE
    p = np.cumprod([1, 11 / 12, 8 / 10, 5 / 6, 3 / 4, 2 / 3])
    twt = [1, *p[[0, 1, 2, 5]], 1, 1, 1, 1, 1, 5 / 12, 1, 1, 1, 1, 1 / 2, 1, 1, 1]
    fg = fine_gray_data(FDATA, "time", "status", cause="type1", censored="cen")
    assert fg["id"].tolist() == [1, 2, 2, 2, 2, 3, 4, 5, 6, 7, 7, 8, 9, 10, 11, 11, 12, 13, 14]
    np.testing.assert_allclose(fg["fgwt"], twt, rtol=1e-14)
    extra = fg["id"].duplicated()  # R's fgcount > 0
    assert fg.loc[extra, "fgstop"].tolist() == [4, 6, 12, 12, 12]
    # > all.equal(test1$fgstop[!type2-like rows]) ...: rows not expanded keep their time, start 0
    plain = ~fg["id"].isin([2, 7, 11])
    assert (fg.loc[plain, "fgstop"] == fg.loc[plain, "time"]).all() and (fg["fgstart"][plain] == 0).all()
    assert fg["fgstatus"].tolist() == [int(s == "type1") for s in fg["status"]]


def test_weights_are_g_at_the_interval_over_g_at_the_event_on_mgus2(mgus2):
    # R, source FINEGRAY (test data set 2): G = Kaplan–Meier of the censoring with an event at x not
    # at risk of censoring at x; every expanded row's weight is G(t-) / G(s-) (R prints TRUE):
    # > all.equal(tdata$fgwt, Gwt/Gwt[first])
    etime, event = mgus2["etime"].to_numpy(), mgus2["code"].to_numpy()
    tt = np.unique(etime)
    nrisk = np.array([((etime > u) & (event > 0) | (etime >= u) & (event == 0)).sum() for u in tt])
    nevent = np.array([((etime == u) & (event == 0)).sum() for u in tt])
    with np.errstate(invalid="ignore"):  # 0/0 after the last time, as in R
        G = np.cumprod(1 - nevent / nrisk)
    fg = fine_gray_data(mgus2, "etime", "code", cause=1)
    type2 = fg["code"].to_numpy() == 2
    assert (fg.loc[~type2, "fgstop"] == fg.loc[~type2, "etime"]).all()
    assert (fg.loc[~type2, "fgstart"] == 0).all() and (fg.loc[~type2, "fgwt"] == 1).all()
    td = fg[type2]
    Gwt = np.concatenate(([1.0], G))[np.searchsorted(tt, td["fgstop"].to_numpy())]
    first = td.groupby("id")["fgstop"].transform("first").to_numpy()
    Gfirst = np.concatenate(([1.0], G))[np.searchsorted(tt, first)]
    np.testing.assert_allclose(td["fgwt"], Gwt / Gfirst, rtol=1e-12)


@pytest.fixture(scope="module")
def mgus2() -> pd.DataFrame:
    # R, source COMPETE:
    # > etime <- with(mgus2, ifelse(pstat==0, futime, ptime))
    # > event <- with(mgus2, ifelse(pstat==0, 2*death, 1))
    # > event <- factor(event, 0:2, labels=c("censor", "pcm", "death"))
    m = pd.read_csv(DATA / "mgus2.csv")
    assert len(m) == 1384
    return m.assign(etime=np.where(m["pstat"] == 0, m["futime"], m["ptime"]),
                    code=np.where(m["pstat"] == 0, 2 * m["death"], 1),
                    male=(m["sex"] == "M").astype(int))


def test_expanded_mgus2_has_r_size_and_first_rows(mgus2):
    # R, source COMPETE:
    # > pcmdat <- finegray(Surv(etime, event) ~ ., data=mgus2, etype="pcm")
    # > pcmdat[1:4, c(1:3, 11:14)]
    #   id age sex death fgstart fgstop fgstatus
    # 1  1  88   F     1       0     35        0
    # 2  1  88   F     1      35     44        0
    # 3  1  88   F     1      44     47        0
    # 4  1  88   F     1      48     52        0
    # > deathdat <- finegray(Surv(etime, event) ~ ., data=mgus2, etype="death")
    # > dim(pcmdat)
    # [1] 41775    15
    # > dim(deathdat)
    # [1] 12910    15
    pcm = fine_gray_data(mgus2, "etime", "code", cause=1)
    head = pcm.loc[:3, ["id", "age", "sex", "death", "fgstart", "fgstop", "fgstatus"]]
    assert head.values.tolist() == [[1, 88, "F", 1, 0, 35, 0], [1, 88, "F", 1, 35, 44, 0],
                                    [1, 88, "F", 1, 44, 47, 0], [1, 88, "F", 1, 48, 52, 0]]
    assert len(pcm) == 41775
    assert len(fine_gray_data(mgus2, "etime", "code", cause=2)) == 12910


def test_fine_gray_sex_pcm_and_death_match_r(mgus2):
    # R, source COMPETE:
    # > fgfit1 <- coxph(Surv(fgstart, fgstop, fgstatus) ~ sex, data=pcmdat,
    # +                weights= fgwt, id=id)
    # > summary(fgfit1)
    #   n= 41775, number of events= 115
    #         coef exp(coef) se(coef) robust se      z Pr(>|z|)
    # sexM -0.2290    0.7953   0.1866    0.1858 -1.233    0.218
    #      exp(coef) exp(-coef) lower .95 upper .95
    # sexM    0.7953      1.257    0.5526     1.145
    # Likelihood ratio test= 1.51  on 1 df,   p=0.2
    # Wald test            = 1.52  on 1 df,   p=0.2
    # Score (logrank) test = 1.51  on 1 df,   p=0.2,   Robust = 1.5  p=0.2
    fit = fine_gray(mgus2, "etime", "code", "male", cause=1, id="id")
    row = fit.summary.loc["male"]
    assert (fit.n, fit.events) == (41775, 115)
    for got, printed in [(row["coef"], "-0.2290"), (row["hazard_ratio"], "0.7953"),
                         (row["naive_se"], "0.1866"), (row["se"], "0.1858"), (row["z"], "-1.233"),
                         (row["p"], "0.218"), (1 / row["hazard_ratio"], "1.257"),
                         (row["ci_lower"], "0.5526"), (row["ci_upper"], "1.145"),
                         (fit.tests.loc["likelihood_ratio", "statistic"], "1.51"),
                         (fit.tests.loc["wald", "statistic"], "1.52"),
                         (fit.tests.loc["score", "statistic"], "1.51"),
                         (fit.tests.loc["robust_score", "statistic"], "1.5")]:
        _close(got, printed)
    # > fgfit2 <- coxph(Surv(fgstart, fgstop, fgstatus) ~ sex, data=deathdat,
    # +                weights= fgwt, id=id)
    #         coef exp(coef) se(coef) robust se     z        p
    # sexM 0.23349   1.26299  0.06894   0.06828 3.419 0.000627
    # Likelihood ratio test=11.57  on 1 df, p=0.0006703
    # n= 12910, unique id= 1384, number of events= 860
    fit = fine_gray(mgus2, "etime", "code", "male", cause=2, id="id")
    row = fit.summary.loc["male"]
    assert (fit.n, fit.events) == (12910, 860)
    for got, printed in [(row["coef"], "0.23349"), (row["hazard_ratio"], "1.26299"),
                         (row["naive_se"], "0.06894"), (row["se"], "0.06828"), (row["z"], "3.419"),
                         (row["p"], "0.000627"),
                         (fit.tests.loc["likelihood_ratio", "statistic"], "11.57"),
                         (fit.tests.loc["likelihood_ratio", "p"], "0.0006703")]:
        _close(got, printed)
    assert fit.cluster == "id"


def test_fine_gray_age_sex_mspike_match_r(mgus2):
    # R, source COMPETE:
    # > fgfit2a <- coxph(Surv(fgstart, fgstop, fgstatus) ~ age + sex + mspike,
    # +                  data=pcmdat, weights=fgwt, id=id)
    # > fgfit2b <- coxph(Surv(fgstart, fgstop, fgstatus) ~ age + sex + mspike,
    # +                  data=deathdat, weights=fgwt, id=id)
    # > round(rbind(PCM= coef(fgfit2a), death=coef(fgfit2b)), 3)
    #          age   sexM mspike
    # PCM   -0.017 -0.213  0.888
    # death  0.059  0.369 -0.154
    # finegray() weighs on all 1,384 subjects; coxph then drops the 11 without mspike.
    printed = {1: ("-0.017", "-0.213", "0.888"), 2: ("0.059", "0.369", "-0.154")}
    for cause, coefs in printed.items():
        rows = fine_gray_data(mgus2, "etime", "code", cause=cause).dropna(subset=["mspike"])
        fit = cox(rows, "fgstop", "fgstatus", ["age", "male", "mspike"], start="fgstart",
                  weights="fgwt", cluster="id")
        for cov, v in zip(["age", "male", "mspike"], coefs, strict=True):
            _close(fit.summary.loc[cov, "coef"], v)


def test_fine_gray_refuses_what_it_cannot_fit(mgus2, monkeypatch):
    with pytest.raises(DataError, match="no row with the cause 3"):
        fine_gray_data(mgus2, "etime", "code", cause=3)
    with pytest.raises(DataError, match="repeats a subject"):
        fine_gray(pd.concat([mgus2, mgus2.head(2)]), "etime", "code", "male", cause=1, id="id")
    with pytest.raises(DataError, match="overwritten"):
        fine_gray_data(mgus2.assign(fgwt=1.0), "etime", "code", cause=1)
    import fomolab.stats.finegray as fgmod
    monkeypatch.setattr(fgmod, "MAX_ROWS", 1000)
    with pytest.raises(DataError, match=r"41,775 \(more than 1,000\)"):
        fine_gray_data(mgus2, "etime", "code", cause=1)


def test_a_time_of_zero_gets_a_start_before_zero():
    # R's finegray starts every row at 2 * min(time) - 1 when a time is 0, so no interval is empty
    df = pd.DataFrame({"t": [0, 1, 2, 3, 4, 5], "what": ["buy", "leave", 0, "buy", "leave", 0],
                       "x": [1, 0, 1, 0, 1, 0]})
    fg = fine_gray_data(df, "t", "what", cause="buy")
    assert (fg["fgstart"] < fg["fgstop"]).all() and fg.loc[0, "fgstart"] == -1
    fit = fine_gray(df, "t", "what", "x", cause="buy")
    assert fit.events == 2 and np.isfinite(fit.summary.loc["x", "coef"])
