"""A host who extends a countdown and shows cues when sales slow.

Each action is replayed from the events table by an independent check of the
rules, and the purchase hazard is checked against the moved deadline and the
cues' windows: over every viewer, the purchases match the integrated hazard
(the compensator, computed here from the stored facts alone), within four
standard deviations of the counting martingale.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fomolab
from fomolab.errors import SpecError

from helpers import experiment, make_spec, run_tables

T, START, DEADLINE, GAIN_T, KAPPA = 1800.0, 400.0, 700.0, 3.0, 0.02
LEFT, BY, TIMES, SALES_BELOW, WINDOW = 40.0, 90.0, 4, 100, 120.0
CHECK = 30.0
CUES = [(45, 240.0, "social_proof", 90.0, 1.5, 300.0), (20, 120.0, "scarcity_cue", 60.0, 2.0, 0.0)]
RATE = 1 / 1000
#: a busy start and a lull: sales slow down, and the host's rules cross their levels
ARRIVALS = {"schedule": [{"start_s": 0.0, "rate_per_s": 3.0}, {"start_s": 600.0, "rate_per_s": 0.6}]}


def spec(urgency="linear", stock=None, cues=True, extend=True, reps=1):
    host: dict = {}
    if extend:
        host["extend_timer"] = {"left_s": LEFT, "by_s": BY, "times": TIMES, "sales_below": SALES_BELOW,
                                "window_s": WINDOW}
    if cues:
        host["check_every_s"] = CHECK
        host["cues"] = [{"sales_below": b, "window_s": w, "cue": c, "show_s": s, "gain": g, "cooldown_s": cd}
                        for b, w, c, s, g, cd in CUES]
    timer = {"start_s": START, "deadline_s": DEADLINE, "gain": GAIN_T, "urgency": urgency, "kappa_per_s": KAPPA}
    item = {"price": 10.0, "base_rate_per_s": RATE, "slot_s": [0.0, T], "tactics": {"countdown_timer": timer}}
    if stock is not None:
        item["stock"] = stock
    out = make_spec(experiment={"replicates": reps}, stream={"duration_s": T, "reactive_host": host},
                    lineup={"item": item}, arms={"control": {}, "timer": {"tactics": ["item.countdown_timer"]}})
    out["stream"]["arrivals"] = ARRIVALS
    return out


def replay_extensions(purchases, stock):
    """Decisions from the purchase times alone: ``(time, seconds added)`` and the final deadline."""
    deadline, left, out = DEADLINE, TIMES, []
    while left and deadline < T:
        c = max(deadline - LEFT, START)
        before = purchases[purchases <= c]
        sold = int(np.count_nonzero(before > c - WINDOW))
        if (stock is not None and len(before) >= stock) or sold >= SALES_BELOW:
            break
        new = min(deadline + BY, T)
        out.append((c, new - deadline))
        deadline, left = new, left - 1
    return out, deadline


def replay_cues(purchases, stock, own=()):
    """Cues from the purchase times alone: ``(time, cue, units counted, end)``."""
    out, last, shown_end = [], [-np.inf] * len(CUES), -np.inf
    k = 1
    while k * CHECK < T:
        c = k * CHECK
        k += 1
        if c < shown_end:
            continue
        before = purchases[purchases <= c]
        if stock is not None and len(before) >= stock:
            continue
        for i, (below, window, cue, show, _, cool) in enumerate(CUES):
            if cue in own or c < window or c < last[i] + cool:
                continue
            n = int(np.count_nonzero(before > c - window))
            if n >= below:
                continue
            shown_end = min(c + show, T)
            out.append((c, cue, n, shown_end))
            last[i] = c
            break
    return out


def acts(events, tactic):
    a = events[(events.kind == "host_action") & (events.tactic == tactic)]
    return list(zip(a.time_s.tolist(), a.value.tolist(), strict=True))


@pytest.mark.parametrize("stock", [None, 500], ids=["unlimited", "stock"])
def test_extensions_and_cues_replay_from_the_events_table(stock):
    tables = run_tables(spec(stock=stock), replicate=1)
    n_ext = n_cues = 0
    kinds = set()
    for arm, t in tables.items():
        ev = t.events
        buys = np.sort(ev.time_s[ev.kind == "purchase"].to_numpy())
        win = t.windows
        if arm == "timer":
            want, end = replay_extensions(buys, stock)
            assert acts(ev, "countdown_timer") == want
            row = win[win.tactic == "countdown_timer"]
            assert list(zip(row.start_s, row.end_s, strict=True)) == [(START, end)]  # the real, extended end
            n_ext += len(want)
        else:
            assert acts(ev, "countdown_timer") == [] and (win.tactic != "countdown_timer").all()
        want_c = replay_cues(buys, stock)
        got = ev[(ev.kind == "host_action") & ev.tactic.isin(["scarcity_cue", "social_proof"])]
        assert list(zip(got.time_s, got.tactic.astype(str), got.value.astype(int), strict=True)) == \
            [(c, cue, n) for c, cue, n, _ in want_c], arm
        cw = win[win.tactic.isin(["scarcity_cue", "social_proof"])].sort_values("start_s")
        assert list(zip(cw.start_s, cw.tactic.astype(str), cw.end_s, strict=True)) == \
            [(c, cue, e) for c, cue, _, e in want_c]
        n_cues += len(want_c)
        kinds |= {cue for _, cue, _, _ in want_c}
    assert kinds == {"scarcity_cue", "social_proof"}, "both rules must act"
    assert n_ext >= 2, "the host must extend the timer in the check"
    assert n_cues >= 4
    if stock is not None:  # the stock runs out in the timer's arm, and the host stops with it
        assert (tables["timer"].events.kind == "stock_out").any()


def shown(windows, grid, kind):
    on = np.zeros(len(grid))
    for a, b in zip(windows.start_s[windows.tactic == kind], windows.end_s[windows.tactic == kind], strict=True):
        on[(grid >= a) & (grid < b)] = 1.0
    return on


def timer_signal(events, windows, grid, urgency):
    """The timer's signal on ``grid`` from the stored facts: its window, and the deadline moved at
    each extension (``host_action`` events, ``value`` seconds later)."""
    w = windows[windows.tactic == "countdown_timer"]
    s = np.zeros(len(grid))
    if not len(w):
        return s
    a, end = float(w.start_s.iloc[0]), float(w.end_s.iloc[0])
    ext = events[(events.kind == "host_action") & (events.tactic == "countdown_timer")]
    deadline = np.full(len(grid), end - ext.value.sum())
    for t, v in zip(ext.time_s, ext.value, strict=True):
        deadline[grid >= t] += v
    assert deadline[-1] == pytest.approx(end)
    on = (grid >= a) & (grid < deadline)
    if urgency == "linear":
        s[on] = ((grid - a) / (deadline - a))[on]
    else:
        s[on] = 1.0 / (1.0 + KAPPA * (deadline[on] - grid[on]))
    return s


@pytest.mark.parametrize("urgency", ["linear", "hyperbolic"])
def test_purchases_follow_the_moved_deadline_and_the_cues(urgency):
    """Purchases match the compensator of the hazard ``r q (1 + g_t z s(t)) (1 + g_c z c(t))``, with the
    timer's signal from the moved deadline and the cues from their windows: in any fixed interval,
    the purchases less the integrated hazard is a martingale with variance the integrated hazard.
    Checked over the whole stream and over the time the extensions add to the announced countdown."""
    grid = np.linspace(0.0, T, 360_001)
    dt = grid[1] - grid[0]
    gains = {kind: max(g for _, _, k, _, g, _ in CUES if k == kind) for kind in ("scarcity_cue", "social_proof")}
    gs, gp = gains["scarcity_cue"], gains["social_proof"]
    got, want = np.zeros(3), np.zeros(3)
    extended = 0
    for rep in range(8):
        for t in run_tables(spec(urgency), replicate=rep).values():
            ev, win, sh = t.events, t.windows, t.shoppers
            s = timer_signal(ev, win, grid, urgency)
            extended += int(((ev.kind == "host_action") & (ev.tactic == "countdown_timer")).sum())
            c = {k: shown(win, grid, k) for k in gains}
            assert not (c["scarcity_cue"] * c["social_proof"]).any()  # one cue at a time
            parts = [np.ones(len(grid)), s, c["scarcity_cue"], c["social_proof"], s * c["scarcity_cue"],
                     s * c["social_proof"]]
            # predictable sets: the whole stream, the time the extensions add, the times a cue shows
            # (each cue decided from purchases before it)
            sets = [np.ones(len(grid)), ((grid >= DEADLINE) & (grid < DEADLINE + TIMES * BY)).astype(float),
                    c["scarcity_cue"] + c["social_proof"]]
            bought = sh.first_purchase_s.to_numpy()
            z, q = sh.impulsiveness.to_numpy(), sh.interest.to_numpy()
            a = sh.arrival_s.to_numpy()
            e = np.fmin(sh.departure_s.to_numpy(), np.nan_to_num(bought, nan=np.inf))
            for k, w in enumerate(sets):
                cum = [np.concatenate([[0.0], np.cumsum(np.minimum(w[1:], w[:-1]) * (p[1:] + p[:-1]) / 2 * dt)])
                       for p in parts]
                integ = [np.interp(e, grid, C) - np.interp(a, grid, C) for C in cum]
                lam = RATE * q * (integ[0] + GAIN_T * z * integ[1] + gs * z * integ[2] + gp * z * integ[3]
                                  + GAIN_T * gs * z ** 2 * integ[4] + GAIN_T * gp * z ** 2 * integ[5])
                want[k] += lam.sum()
                hit = np.interp(bought[~np.isnan(bought)], grid, w) > 0.5
                got[k] += float(np.count_nonzero(hit))
    assert extended >= 6
    assert np.all(np.abs(got - want) < 4 * np.sqrt(want)), (got, want)


def test_the_timer_bound_holds_after_extensions(monkeypatch):
    """In test mode the engine checks every candidate's hazard against its envelope; an extended timer
    runs past the deadline the envelope was built from, so its bound must cover the whole slot."""
    monkeypatch.setenv("FOMOLAB_CHECK_BOUNDS", "1")
    s = spec(cues=False)
    del s["stream"]["reactive_host"]["extend_timer"]["sales_below"]  # extended whatever the sales
    t = run_tables(s)["timer"]
    assert (t.events.kind == "host_action").sum() == TIMES
    assert t.windows.end_s[t.windows.tactic == "countdown_timer"].tolist() == [DEADLINE + TIMES * BY]
    assert "scarcity_cue" not in set(t.windows.tactic.astype(str))


def test_off_unless_asked_and_own_tactics_are_left_alone():
    plain = run_tables(make_spec())["control"]
    assert "host_action" not in plain.events.kind.cat.categories
    # a product with a scarcity cue of its own gets no host scarcity cue
    s = spec(extend=False, stock=600)
    s["lineup"]["item"]["tactics"]["scarcity_cue"] = {"threshold": 5, "gain": 1.0}
    s["arms"] = {"control": {}, "cue": {"tactics": ["item.scarcity_cue"]}}
    t = run_tables(s, replicate=1)["cue"]
    ev = t.events
    buys = np.sort(ev.time_s[ev.kind == "purchase"].to_numpy())
    got = ev[(ev.kind == "host_action")]
    assert set(got.tactic.astype(str)) == {"social_proof"}
    want = replay_cues(buys, 600, own=("scarcity_cue",))
    assert list(zip(got.time_s, got.value.astype(int), strict=True)) == [(c, n) for c, _, n, _ in want]


def paths(bad):
    with pytest.raises(SpecError) as exc:
        experiment(bad)
    return {p.path: p for p in exc.value.errors}


def test_bad_rules_are_named():
    bad = spec()
    bad["stream"]["reactive_host"]["extend_timer"]["by_s"] = -30.0
    bad["stream"]["reactive_host"]["cues"][0]["cue"] = "fireworks"
    bad["stream"]["reactive_host"]["cues"][1]["show_s"] = 0.0
    got = paths(bad)
    assert set(got) == {"stream.reactive_host.extend_timer.by_s", "stream.reactive_host.cues[0].cue",
                        "stream.reactive_host.cues[1].show_s"}
    assert got["stream.reactive_host.extend_timer.by_s"].value == -30.0

    bad = spec()
    bad["stream"]["reactive_host"]["extend_timer"]["products"] = ["item", "lipstick"]
    got = paths(bad)
    assert list(got) == ["stream.reactive_host.extend_timer.products[1]"]
    assert got["stream.reactive_host.extend_timer.products[1]"].value == "lipstick"
    assert "unknown product" in got["stream.reactive_host.extend_timer.products[1]"].rule

    bad = spec()
    bad["lineup"]["item"]["tactics"]["countdown_timer"]["resets"] = True
    bad["stream"]["retention"] = {"countdown": 0.5}
    assert set(paths(bad)) == {"lineup.item.tactics.countdown_timer.resets", "stream.retention.countdown"}

    bad = spec()
    del bad["lineup"]["item"]["tactics"]
    bad["arms"] = {"control": {}}
    assert set(paths(bad)) == {"stream.reactive_host.extend_timer"}

    bad = spec(extend=False)
    del bad["stream"]["reactive_host"]["check_every_s"]
    with pytest.raises(SpecError, match="cues need check_every_s"):
        experiment(bad)


def test_a_bad_rule_exits_2_naming_file_key_value_and_rule(tmp_path):
    from test_spec_catalogue import to_toml

    bad = spec()
    bad["stream"]["reactive_host"]["extend_timer"]["left_s"] = -5.0
    path = tmp_path / "bad.toml"
    path.write_text(to_toml(bad))
    env = {**os.environ, "PYTHONPATH": str(Path(fomolab.__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "fomolab.cli", "validate", str(path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[0]
    assert str(path) in line and "stream.reactive_host.extend_timer.left_s" in line and "-5" in line, line
    assert "greater than 0" in line or "> 0" in line, line
