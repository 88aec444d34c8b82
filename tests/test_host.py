"""A reactive host: its actions replayed from the events table by an independent check of its rules."""

from __future__ import annotations

import numpy as np
import pytest

from fomolab.errors import SpecError

from helpers import experiment, make_spec, run_tables

CHECK, BELOW, SALE_S, COOLDOWN = 30.0, 120, 90.0, 200.0


def spec(retention=True):
    out = make_spec(
        experiment={"replicates": 1},
        stream={"duration_s": 2400.0,
                "reactive_host": {"check_every_s": CHECK, "rules": [
                    {"viewers_below": BELOW, "discount": 0.3, "sale_s": SALE_S, "gain": 2.0,
                     "cooldown_s": COOLDOWN},
                    {"viewers_below": BELOW - 20, "discount": 0.5, "sale_s": 60.0, "gain": 3.0}]}},
        lineup_template={"count": 12, "name": "p{n:02d}", "slot_s": 200.0, "price": 10.0,
                         "base_rate_per_s": 1e-3,
                         "tactics": {"lightning_sale": {"every": 4, "start_s": 50.0, "end_s": 100.0,
                                                        "discount": 0.2}}},
        arms={"fixed": {"tactics": ["*.lightning_sale"]}, "control": {}},
    )
    del out["lineup"]
    if retention:
        out["stream"]["retention"] = {"deal": 0.5}
    # a busy start, a lull, a second peak: the count crosses the host's levels both ways
    out["stream"]["arrivals"] = {"schedule": [{"start_s": 0.0, "rate_per_s": 1.0}, {"start_s": 600.0, "rate_per_s": 0.1},
                                              {"start_s": 1400.0, "rate_per_s": 1.0}]}
    return out


def replay(events, products, configured, T):
    """The host's actions from the events table alone: viewers present at each check (arrivals up to t
    less departures up to t), the product on show and the rules in order."""
    arrive = np.sort(events.time_s[events.kind == "arrive"].to_numpy())
    leave = np.sort(events.time_s[events.kind == "leave"].to_numpy())
    rules = [(BELOW, SALE_S, COOLDOWN), (BELOW - 20, 60.0, 0.0)]
    last = [-np.inf, -np.inf]
    has_sale = set(configured)
    out = []
    k = 1
    while k * CHECK < T:
        t = k * CHECK
        k += 1
        n = int(np.searchsorted(arrive, t, side="right") - np.searchsorted(leave, t, side="right"))
        for i, (below, length, cool) in enumerate(rules):
            if n >= below or t < last[i] + cool:
                continue
            show = [p for p, a, b in products if a <= t < b and p not in has_sale]
            if not show:
                break
            p, _, b = next(x for x in products if x[0] == show[0])
            out.append((t, i, n, p, min(t + length, b)))
            has_sale.add(p)
            last[i] = t
            break
    return out


@pytest.mark.parametrize("retention", [True, False], ids=["retention", "no_retention"])
def test_actions_replay_from_the_events_table(retention):
    exp = experiment(spec(retention))
    configured = [p for p, prod in exp.spec["lineup"].items() if "lightning_sale" in prod.get("tactics", {})]
    tables = run_tables(spec(retention))
    for arm, t in tables.items():
        ev = t.events
        prods = [(str(r["product"]), r.slot_start_s, r.slot_end_s) for _, r in t.products.iterrows()]
        want = replay(ev, prods, configured if arm == "fixed" else [], 2400.0)
        acts = ev[ev.kind == "host_action"]
        got = list(zip(acts.time_s, acts["product"].astype(str), acts.value.astype(int), strict=True))
        assert got == [(w[0], w[3], w[2]) for w in want], arm
        assert len(got) >= 3, "the rules must fire in the check"
        assert {w[1] for w in want} == {0, 1}, "both rules must act"
        # each action is a sale that ran from the check to its end
        win = t.windows[t.windows.tactic == "lightning_sale"]
        for time, _, _, prod, end in want:
            row = win[(win["product"].astype(str) == prod) & (win.start_s == time)]
            assert len(row) == 1 and row.end_s.iloc[0] == pytest.approx(end), (prod, time)
    # the control arm's host acts on products the fixed arm's own sales occupy
    assert len(tables["control"].events.query("kind == 'host_action'")) >= \
        len(tables["fixed"].events.query("kind == 'host_action'"))


def test_no_host_no_events_and_bad_rules_are_named():
    plain = run_tables(make_spec())["control"].events
    assert "host_action" not in plain.kind.cat.categories
    bad = spec()
    bad["stream"]["reactive_host"]["rules"][0]["discount"] = 1.5
    bad["stream"]["reactive_host"]["check_every_s"] = 0.0
    with pytest.raises(SpecError) as exc:
        experiment(bad)
    assert {p.path for p in exc.value.errors} == {"stream.reactive_host.check_every_s",
                                                   "stream.reactive_host.rules[0].discount"}


STOCK, RESTOCK = 6, [(3, 4, 2), (1, 10, 1)]  # (stock_below, units, times), in order


def restock_spec():
    out = make_spec(
        experiment={"replicates": 1},
        stream={"duration_s": 2400.0, "arrivals": {"rate_per_s": 0.5},
                "reactive_host": {"restock": [{"stock_below": b, "units": u, "times": n} for b, u, n in RESTOCK]}},
        lineup_template={"count": 4, "name": "p{n}", "slot_s": 600.0, "price": 10.0, "base_rate_per_s": 4e-3,
                         "stock": STOCK},
        arms={"control": {}},
    )
    del out["lineup"]
    return out


def replay_restock(purchases, stock):
    """The restocks from a product's purchase times alone: after each purchase, the first rule with
    restocks left whose level the stock is below adds its units."""
    left = [n for _, _, n in RESTOCK]
    out = []
    for t in purchases:
        if stock == 0:
            break
        stock -= 1
        for k, (below, units, _) in enumerate(RESTOCK):
            if left[k] and stock < below:
                left[k] -= 1
                stock += units
                out.append((t, units))
                break
    return out


def test_restocks_replay_from_the_events_table():
    ev = run_tables(restock_spec())["control"].events
    acts = ev[ev.kind == "host_action"]
    assert acts.tactic.isna().all()
    total = 0
    for p in [f"p{n}" for n in range(1, 5)]:
        buys = np.sort(ev.time_s[(ev.kind == "purchase") & (ev["product"] == p)].to_numpy())
        want = replay_restock(buys, STOCK)
        mine = acts[acts["product"] == p]
        assert list(zip(mine.time_s, mine.value.astype(int), strict=True)) == want, p
        # restocked units were sold: more purchases than the first stock, never more than all stock
        assert len(buys) <= STOCK + sum(u for _, u in want)
        total += len(want)
    assert total >= 8, "the rules must act in the check"
    assert {int(v) for v in acts.value} == {4, 10}, "both rules must act"
    sold = ev[ev.kind == "purchase"].groupby("product", observed=True).size()
    assert (sold > STOCK).all()


def test_a_host_needs_rules_and_restocks_need_no_checks():
    bad = restock_spec()
    bad["stream"]["reactive_host"] = {"check_every_s": 30.0}
    with pytest.raises(SpecError, match=r"give rules .* or restock rules"):
        experiment(bad)
    bad["stream"]["reactive_host"] = {"rules": [{"viewers_below": 10}]}
    with pytest.raises(SpecError, match="rules need check_every_s"):
        experiment(bad)
