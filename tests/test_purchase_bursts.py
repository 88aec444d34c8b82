"""Purchases that excite arrivals: viewer counts against the mean of the branching process they make.

One product with a constant purchase hazard ``h`` over the whole stream, no
stock limit, exponential dwell of mean ``mu_d``: a viewer buys with
probability ``q = h / (h + 1 / mu_d)`` (a purchase after the stream's end
brings nobody into it, so the cut at ``T`` does not matter to the arrivals
before ``T``).  Each viewer brings Poisson(``n``) arrivals and, when they buy,
Poisson(``n_buy``) more, each after an Exponential(``tau``) delay: a
branching process with mean offspring ``m = n + n_buy q``, so after the
start's transient arrivals come at the stationary rate ``mu / (1 - m)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fomolab.errors import SpecError

from helpers import experiment, make_spec, run_tables

MU_D, H, TAU = 100.0, 1 / 100, 40.0


def spec(rate=0.2, n=0.3, n_buy=0.5, T=8000.0, replicates=1, products=1):
    out = make_spec(experiment={"replicates": replicates},
                    stream={"duration_s": T, "arrivals": {"rate_per_s": rate, "hawkes": {
                        "branching": n, "decay_s": TAU, "purchase_branching": n_buy}}},
                    population={"segments": {"all": {"dwell": {"mean_s": MU_D}}}})
    out["lineup"] = {f"p{k}": {"price": 10.0, "base_rate_per_s": H} for k in range(products)}
    return out


def test_arrivals_have_the_stationary_mean_of_the_branching_process():
    """Arrivals in [3000, 8000) s over 40 replicates: their mean within 4 standard errors (the
    replicates' spread) of mu (T - B) / (1 - n - n_buy q); the transient after 3000 s is below
    m^30 of the mean.  Without the purchases' children the same count is far lower."""
    from fomolab.design import expand
    from fomolab.engine import simulate

    rate, n, n_buy, B, T = 0.2, 0.3, 0.5, 3000.0, 8000.0
    exp = experiment(spec(rate, n, n_buy, T, replicates=40))
    counts, share = [], []
    for run in expand(exp):
        sh = simulate(run).shoppers
        a = sh.arrival_s.to_numpy()
        counts.append(np.count_nonzero(a >= B))
        share.append((sh.purchases.to_numpy() > 0).mean())
    counts = np.array(counts, dtype=float)
    q = H / (H + 1 / MU_D)
    mean = rate * (T - B) / (1 - n - n_buy * q)
    se = counts.std(ddof=1) / math.sqrt(len(counts))
    assert abs(counts.mean() - mean) < 4 * se, (counts.mean(), mean, se)
    assert counts.mean() > 1.3 * rate * (T - B) / (1 - n)  # the purchases' children are there
    # the children buy like everyone else (a viewer cut at T buys a little less: a lower bound)
    assert abs(np.mean(share) - q) < 0.02


def test_children_follow_purchases_and_draws_are_reproducible():
    t1 = run_tables(spec(n=0.0, T=3000.0))["control"]
    t2 = run_tables(spec(n=0.0, T=3000.0))["control"]
    assert t1.shoppers.equals(t2.shoppers) and t1.events.equals(t2.events)
    # with no arrival branching every viewer beyond the Poisson immigrants is a purchase's child
    plain = run_tables(spec(n=0.0, n_buy=0.0, T=3000.0))["control"].shoppers
    assert len(t1.shoppers) > 1.1 * len(plain)
    # the immigrants are the same viewers with the same purchases up to the first child's arrival
    first_child = t1.shoppers.arrival_s[~t1.shoppers.arrival_s.isin(plain.arrival_s)].min()
    e1 = t1.events[(t1.events.kind == "purchase") & (t1.events.time_s < first_child)]
    e0 = run_tables(spec(n=0.0, n_buy=0.0, T=3000.0))["control"].events
    e0 = e0[(e0.kind == "purchase") & (e0.time_s < first_child)]
    np.testing.assert_array_equal(e1.time_s.to_numpy(), e0.time_s.to_numpy())


def test_stationarity_is_validated_over_the_lineup():
    """A viewer buys each product at most once, so m <= n + n_buy P: refused when that reaches 1."""
    with pytest.raises(SpecError) as exc:
        experiment(spec(n=0.3, n_buy=0.4, products=2))
    (p,) = exc.value.errors
    assert p.path == "stream.arrivals.hawkes.purchase_branching" and p.value == 0.4
    assert "branching + purchase_branching x 2 products" in p.rule
    experiment(spec(n=0.3, n_buy=0.3, products=2))  # 0.3 + 0.6 < 1
    assert "purchase_branching" not in experiment(make_spec()).arms["control"].scenario.stream.arrivals.model_dump()


def test_with_stock_retention_and_several_products_every_walk_keeps_time_order():
    """Stock limits, a sale's quota, own-purchase retention and three products: the new viewers'
    candidates come into walks that are waiting past them, which must decide them first (the engine
    raises OrderError in test mode otherwise).  Each product sells at most its stock, its stock-out is
    its last sale, and nobody buys after leaving."""
    s = spec(rate=0.3, n=0.2, n_buy=0.25, T=4000.0, products=3)
    s["stream"]["retention"] = {"purchase": 0.5, "deal": 0.7}
    s["lineup"]["p0"]["stock"] = 60
    s["lineup"]["p2"]["base_rate_per_s"] = H / 30  # few candidates: the walk waits long, new ones come before
    s["lineup"]["p1"]["tactics"] = {"lightning_sale": {"start_s": 1000.0, "end_s": 2000.0, "discount": 0.3,
                                                       "gain": 2.0, "quota": 40}}
    s["arms"] = {"control": {}, "sale": {"tactics": ["p1.lightning_sale"]}}
    for tables in run_tables(s).values():
        sh, ev = tables.shoppers.set_index("shopper_id"), tables.events
        buys = ev[ev.kind == "purchase"]
        assert len(sh) > 1.1 * 0.3 * 4000 / 0.8  # children came (0.3 x 4000 / (1 - n) without them)
        assert (buys["product"] == "p0").sum() <= 60
        out = ev[(ev.kind == "stock_out") & (ev["product"] == "p0")]
        if len(out):
            assert out.time_s.iloc[0] == buys[buys["product"] == "p0"].time_s.max()
        assert (buys.time_s.to_numpy() < sh.loc[buys.shopper_id].departure_s.to_numpy()).all()
        assert sh.index.is_unique


def test_branching_ratios_recovered_from_arrivals_and_purchases():
    """Maximum likelihood of the arrivals' conditional intensity given the tables' arrival and purchase
    times, ``mu + (n / tau) sum_arrivals e^(-(t - t_i) / tau) + (n_buy / tau) sum_purchases
    e^(-(t - p_j) / tau)`` (``tau`` fixed at its value; the likelihood is then concave): over six
    replicates of 10^4 s the mean estimates of n and n_buy lie within 4 standard errors of the truth."""
    from scipy.optimize import minimize

    from fomolab.hawkes import kernel_sums

    rate, n, n_buy, T = 0.2, 0.3, 0.5, 10_000.0
    est = []
    for rep in range(6):
        t = run_tables(spec(rate, n, n_buy, T), replicate=rep)["control"]
        a = np.sort(t.shoppers.arrival_s.to_numpy())
        p = np.sort(t.events.time_s[t.events.kind == "purchase"].to_numpy())
        own = kernel_sums(a, TAU)  # earlier arrivals' kernel at each arrival
        merged = np.concatenate([a, p])
        order = np.argsort(merged, kind="stable")
        both = np.empty(len(merged))
        both[order] = kernel_sums(merged[order], TAU)  # earlier arrivals' and purchases' kernel
        cross = both[:len(a)] - own
        ka, kp = np.sum(1 - np.exp(-(T - a) / TAU)), np.sum(1 - np.exp(-(T - p) / TAU))

        def nll(x, own=own, cross=cross, ka=ka, kp=kp):
            lam = x[0] + (x[1] / TAU) * own + (x[2] / TAU) * cross
            return -(np.sum(np.log(lam)) - x[0] * T - x[1] * ka - x[2] * kp)

        fit = minimize(nll, np.array([len(a) / T / 2, 0.2, 0.2]), method="L-BFGS-B",
                       bounds=[(1e-9, None), (0.0, None), (0.0, None)])
        est.append(fit.x)
    est = np.array(est)
    mean, se = est.mean(axis=0), est.std(axis=0, ddof=1) / math.sqrt(len(est))
    for value, truth, err in zip(mean, (rate, n, n_buy), se, strict=True):
        assert abs(value - truth) < 4 * err + 1e-9, (mean, se)
    assert se[2] < 0.1  # precise enough to tell n_buy = 0.5 from none


@pytest.mark.parametrize("case", ["viewer_count", "host", "market"])
def test_what_reads_the_audience_first_is_refused(case):
    bad = spec(n_buy=0.2)
    if case == "viewer_count":
        bad["lineup"]["p0"]["tactics"] = {"viewer_count": {}}
        bad["arms"] = {"control": {}, "count": {"tactics": ["p0.viewer_count"]}}
    elif case == "host":
        bad["stream"]["reactive_host"] = {"check_every_s": 30.0, "rules": [
            {"viewers_below": 100, "discount": 0.2, "sale_s": 60.0, "gain": 1.0, "cooldown_s": 300.0}]}
    else:
        bad["market"] = {"streams": 2}
    with pytest.raises(SpecError) as exc:
        experiment(bad)
    problems = [p for p in exc.value.errors if p.path == "stream.arrivals.hawkes.purchase_branching"]
    assert problems and problems[0].value == 0.2, exc.value.errors
    assert "purchases that bring arrivals" in problems[0].rule
