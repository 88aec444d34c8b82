"""Retention from a viewer's own purchase, against the closed-form law of the time on stream it implies.

Exponential dwell of mean ``mu``, one product with a constant purchase hazard
``h`` and no stock limit, no tactic: before a purchase the viewer faces two
competing exponentials (leaving at ``1 / mu``, buying at ``h``); after the
purchase they leave at ``r / mu``.  So the stay is ``X + B Y`` with
``X ~ Exp(a)``, ``a = 1 / mu + h``, ``B ~ Bernoulli(h / a)`` independent of
``X``, ``Y ~ Exp(b)``, ``b = r / mu``:

    P(S > s) = exp(-a s) + h exp(-b s) (1 - exp(-(a - b) s)) / (a - b),
    E S = 1 / a + (h / a) / b,   P(buy) = h / a.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fomolab.cli import main
from fomolab.errors import SpecError
from test_spec_catalogue import to_toml

from helpers import experiment, make_spec, run_tables

MU, H, T, RATE, UNTIL = 300.0, 1 / 300, 40_000.0, 10.0, 600.0


def spec(r, products=("item",), **retention):
    out = make_spec(stream={"duration_s": T, "retention": {"purchase": r, **retention}},
                    population={"segments": {"all": {"dwell": {"mean_s": MU}}}})
    out["lineup"] = {p: {"price": 10.0, "base_rate_per_s": H} for p in products}
    # viewers arrive in the first 600 s only; nobody is still there at the end
    out["stream"]["arrivals"] = {"schedule": [{"start_s": 0.0, "rate_per_s": RATE},
                                              {"start_s": UNTIL, "rate_per_s": 0.0}]}
    return out


def survival(s, r, h=H):
    a, b = 1 / MU + h, r / MU
    if math.isclose(a, b):
        return np.exp(-a * s) * (1 + h * s)
    return np.exp(-a * s) + h * np.exp(-b * s) * (1 - np.exp(-(a - b) * s)) / (a - b)


def moments(r, h=H):
    a, b = 1 / MU + h, r / MU
    p = h / a
    return 1 / a + p / b, 1 / a ** 2 + 2 * p / b ** 2 - (p / b) ** 2


def purchases(tables):
    e = tables.events
    return e[e.kind == "purchase"]


@pytest.mark.parametrize("r", [0.25, 4.0], ids=["held", "driven_away"])
def test_stay_follows_the_closed_form_law(r):
    """Mean stay and share of buyers within 4 standard errors, the stay's distribution against the
    closed-form mixture (Kolmogorov-Smirnov at the 0.1 % level), and the number at risk within 4
    standard deviations; the same checks refuse the law without the purchase effect."""
    t = run_tables(spec(r))["control"]
    sh = t.shoppers
    a, dep = sh.arrival_s.to_numpy(), sh.departure_s.to_numpy()
    n = len(a)
    assert n > 5000 and dep.max() < T  # nobody censored
    stay = dep - a
    mean, var = moments(r)
    assert abs(stay.mean() - mean) < 4 * math.sqrt(var / n), (stay.mean(), mean)
    p_buy = H / (1 / MU + H)  # unchanged by r: a viewer buys the product at most once
    buyers = sh.purchases.to_numpy() > 0
    assert abs(buyers.mean() - p_buy) < 4 * math.sqrt(p_buy * (1 - p_buy) / n)
    ks = stats.kstest(stay, lambda s: 1 - survival(s, r))
    assert ks.pvalue > 1e-3, ks
    for at in (700.0, 1500.0, 3000.0):
        p = survival(np.maximum(at - a, 0.0), r)
        present = int(((a <= at) & (dep > at)).sum())
        assert abs(present - p.sum()) < 4 * math.sqrt((p * (1 - p)).sum()), (at, present, p.sum())
    # power: the law without the purchase effect is refused by the same data
    assert stats.kstest(stay, lambda s: 1 - survival(s, 1.0)).pvalue < 1e-6
    # the holds: final departure minus the departure without the purchase effect
    held = sh.held_by_purchase_s.to_numpy()
    np.testing.assert_allclose(dep - held, np.minimum(a + sh.dwell_s.to_numpy(), T))
    assert (held[~buyers] == 0).all() and ((held[buyers] > 0) if r < 1 else (held[buyers] < 0)).mean() > 0.99
    # the purchase itself lies inside the stay
    assert (sh.first_purchase_s[buyers] < dep[buyers]).all()


@pytest.mark.parametrize("r", [0.25, 4.0], ids=["held", "driven_away"])
def test_a_second_product_is_bought_while_the_first_purchase_holds(r):
    """Two products with hazard h each: P(buys both) = 2h / (2h + 1/mu) * h / (h + r/mu) within 4
    standard errors.  With r < 1 second purchases fall past the departure without the purchase effect
    (candidates drawn past it are used); with r > 1 none falls at or after the moved departure."""
    t = run_tables(spec(r, products=("a", "b")))["control"]
    sh = t.shoppers.set_index("shopper_id")
    n = len(sh)
    both = (sh.purchases == 2).mean()
    p = 2 * H / (2 * H + 1 / MU) * H / (H + r / MU)
    assert abs(both - p) < 4 * math.sqrt(p * (1 - p) / n), (both, p)
    buys = purchases(t)
    who = sh.loc[buys.shopper_id]
    before = (who.departure_s - who.held_by_purchase_s).to_numpy()  # departure without the purchase effect
    at = buys.time_s.to_numpy()
    assert (at < who.departure_s.to_numpy()).all(), "a purchase after the viewer left"
    late = at >= before
    if r < 1:
        assert late.sum() > 100, late.sum()
        # each late purchase is a second one, after the viewer's first
        assert (at[late] > who.first_purchase_s.to_numpy()[late]).all()
    else:
        assert not late.any()
        assert (sh.held_by_purchase_s < 0).sum() > 1000  # buyers driven away


def test_tactic_retention_and_purchase_retention_compose():
    """A sale holding viewers (deal = 0.5 on [600, 1200)) and the purchase effect: the departure
    solves M(L') = M(p) + (M(a) + D - M(p)) / r with the sale's clock M, recomputed here from the
    tables (arrival, dwell, first purchase)."""
    r, deal = 0.5, 0.5
    s = spec(r, deal=deal)
    s["lineup"]["item"]["tactics"] = {"lightning_sale": {"start_s": 600.0, "end_s": 1200.0, "discount": 0.2}}
    s["arms"] = {"control": {}, "sale": {"tactics": ["item.lightning_sale"]}}
    sh = run_tables(s)["sale"].shoppers
    x, M = np.array([0.0, 600.0, 1200.0]), np.array([0.0, 600.0, 600.0 + deal * 600.0])

    def fwd(t):
        return np.where(t <= x[-1], np.interp(t, x, M), M[-1] + t - x[-1])

    def back(y):
        return np.where(y <= M[-1], np.interp(y, M, x), x[-1] + y - M[-1])

    a, d, p = sh.arrival_s.to_numpy(), sh.dwell_s.to_numpy(), sh.first_purchase_s.to_numpy()
    bought = ~np.isnan(p)
    assert bought.sum() > 1000 and (sh.held_by_deal_s > 0).sum() > 1000
    expect = back(fwd(a) + d)
    expect[bought] = back(fwd(p[bought]) + (fwd(a[bought]) + d[bought] - fwd(p[bought])) / r)
    np.testing.assert_allclose(sh.departure_s, np.minimum(expect, T), rtol=1e-9, atol=1e-6)


def test_a_code_goes_to_whoever_a_purchase_kept_until_its_announcement():
    """An exclusive code announced at 600 s (everyone arrived before): every viewer who buys during
    its window was present at the announcement, so holds it and pays half, including those whose
    departure without the purchase effect came before 600 s (a first purchase kept them)."""
    s = spec(0.25, products=("a", "b"))
    s["lineup"]["b"]["tactics"] = {"exclusive_code": {"announce_s": UNTIL, "expires_s": 1200.0,
                                                      "discount": 0.5, "gain": 1.0}}
    s["arms"] = {"control": {}, "code": {"tactics": ["b.exclusive_code"]}}
    t = run_tables(s)["code"]
    sh = t.shoppers.set_index("shopper_id")
    buys = purchases(t)
    coded = buys[(buys["product"] == "b") & (buys.time_s >= UNTIL) & (buys.time_s < 1200.0)]
    who = sh.loc[coded.shopper_id]
    kept = (who.departure_s - who.held_by_purchase_s).to_numpy() <= UNTIL
    assert kept.sum() > 20, kept.sum()
    np.testing.assert_allclose(coded.value, 5.0)


def test_off_is_the_old_run_and_bad_values_are_named():
    plain = experiment(spec(1.0))
    assert "purchase" not in plain.arms["control"].scenario.stream.retention.model_dump()
    assert "held_by_purchase_s" not in run_tables(spec(1.0))["control"].shoppers
    with pytest.raises(SpecError) as exc:
        experiment(spec(0.0))
    assert {p.path for p in exc.value.errors} == {"stream.retention.purchase"}
    with pytest.raises(SpecError, match="less than or equal to 100"):
        experiment(spec(101.0))


def refusals():
    viewer_count = spec(0.5)
    viewer_count["lineup"]["item"]["tactics"] = {"viewer_count": {}}
    viewer_count["arms"] = {"control": {}, "count": {"tactics": ["item.viewer_count"]}}
    competition = spec(0.5)
    competition["lineup"]["item"].update(stock=50, tactics={"scarcity_cue": {"threshold": 10, "competition_per_unit": 2.0}})
    competition["arms"] = {"control": {}, "cue": {"tactics": ["item.scarcity_cue"]}}
    host = spec(0.5)
    host["stream"]["reactive_host"] = {"check_every_s": 30.0, "rules": [
        {"viewers_below": 100, "discount": 0.2, "sale_s": 60.0, "gain": 1.0, "cooldown_s": 300.0}]}
    shopper = spec(0.5)
    shopper["shopper"] = {"valuation_gate": True}
    return {"viewer_count": (viewer_count, "lineup.item.tactics.viewer_count"),
            "competition": (competition, "lineup.item.tactics.scarcity_cue"),
            "host": (host, "stream.reactive_host.rules"), "shopper": (shopper, "[shopper]")}


@pytest.mark.parametrize("case", list(refusals()))
def test_combinations_it_cannot_make_exact_are_refused(case, tmp_path, capsys):
    """File, key, value and rule on one line, exit code 2, nothing written."""
    bad, names = refusals()[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(to_toml(bad))
    out = tmp_path / "out"
    for command in (["validate", str(path)], ["run", str(path), "--out", str(out), "--quiet"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        for fragment in (str(path), "stream.retention.purchase", "0.5", names, "own purchase"):
            assert fragment in err, (fragment, err)
    assert not out.exists()
