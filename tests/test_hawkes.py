"""Bursty audiences: Hawkes arrivals against the known moments of a stationary Hawkes count,
the branching ratio recovered by maximum likelihood from the shoppers table, and their spec rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fomolab.errors import SpecError
from fomolab.hawkes import cascade, count_moments, fit_exponential

from helpers import experiment, make_spec, run_tables


def test_window_counts_have_the_stationary_mean_and_variance():
    """Counts in [burn, burn + w) of 4,000 independent cascades against the stationary law.

    The transient from an empty start decays as exp(-(1 - n) t / tau): after
    300 s it is e^-15.  Tolerances: 4 standard errors of the sample mean and of
    the sample variance (from the sample's fourth central moment).
    """
    mu, n, tau, burn, w, reps = 1.0, 0.5, 10.0, 300.0, 100.0, 4000
    rng = np.random.default_rng(2024)
    counts = np.empty(reps)
    for r in range(reps):
        imm = np.sort(rng.random(rng.poisson(mu * (burn + w))) * (burn + w))
        t = cascade(imm, n, tau, burn + w, rng)
        counts[r] = np.count_nonzero(t >= burn)
    mean, var = count_moments(mu, n, tau, w)
    assert var > 2.5 * mean  # bursts: far from a Poisson count (Fano factor 1)
    m, s2 = counts.mean(), counts.var(ddof=1)
    m4 = np.mean((counts - m) ** 4)
    assert abs(m - mean) < 4 * math.sqrt(var / reps), (m, mean)
    assert abs(s2 - var) < 4 * math.sqrt((m4 - s2 ** 2) / reps), (s2, var)


def bursty(rate=0.4, n=0.6, tau=30.0, T=10_000.0, replicates=1):
    return make_spec(experiment={"replicates": replicates},
                     stream={"duration_s": T, "arrivals": {"rate_per_s": rate,
                                                           "hawkes": {"branching": n, "decay_s": tau}}})


def test_engine_arrivals_have_the_mean_from_an_empty_start():
    """Viewers per run over 40 replicates against E N(0, T) of a Hawkes process started empty:
    mu / (1 - n) (T - n tau / (1 - n) (1 - exp(-(1 - n) T / tau)))."""
    from fomolab.design import expand
    from fomolab.engine import simulate

    mu, n, tau, T = 0.5, 0.5, 20.0, 400.0
    exp = experiment(bursty(mu, n, tau, T, replicates=40))
    viewers = np.array([simulate(r).runs.viewers[0] for r in expand(exp)])
    mean = mu / (1 - n) * (T - n * tau / (1 - n) * (1 - math.exp(-(1 - n) * T / tau)))
    _, var = count_moments(mu, n, tau, T)  # the stationary variance bounds the started one's
    assert abs(viewers.mean() - mean) < 4 * math.sqrt(var / len(viewers)), (viewers.mean(), mean)
    assert viewers.var(ddof=1) > 2 * viewers.mean()  # overdispersed


def test_branching_ratio_recovered_from_the_shoppers_table():
    """Maximum likelihood on the arrival times the engine wrote, six replicates of 10^4 s:
    the mean estimate within 4 standard errors (their spread over replicates) of n."""
    n, tau, mu, T = 0.6, 30.0, 0.4, 10_000.0
    fits = []
    for rep in range(6):
        t = run_tables(bursty(mu, n, tau, T), replicate=rep)["control"].shoppers.arrival_s.to_numpy()
        fits.append(fit_exponential(t, T))
    est = np.array([[f["branching"], f["decay_s"], f["rate_per_s"]] for f in fits])
    mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / math.sqrt(len(est))
    for value, truth, err in zip(mean, (n, tau, mu), se, strict=True):
        assert abs(value - truth) < 4 * err + 1e-9, (mean, se)
    assert se[0] < 0.03  # precise enough to tell n = 0.6 from no bursts


def test_off_changes_nothing_and_the_spec_names_the_stationarity_rule():
    plain = make_spec()
    assert "hawkes" not in experiment(plain).arms["control"].scenario.stream.arrivals.model_dump()
    spec = bursty(n=1.2)
    spec["stream"]["arrivals"]["hawkes"]["decay_s"] = -1.0
    with pytest.raises(SpecError) as exc:
        experiment(spec)
    got = {p.path: p for p in exc.value.errors}
    assert set(got) == {"stream.arrivals.hawkes.branching", "stream.arrivals.hawkes.decay_s"}
    assert "below 1 for a stationary audience" in got["stream.arrivals.hawkes.branching"].rule
    assert got["stream.arrivals.hawkes.branching"].value == 1.2
    huge = bursty(rate=1000.0, n=0.999, T=1e5)
    with pytest.raises(SpecError, match="1 / \\(1 - branching\\)"):
        experiment(huge)
