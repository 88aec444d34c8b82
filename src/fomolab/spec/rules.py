"""Rules that span several keys of a scenario (pydantic checks each key on its own).

Each rule adds a problem to the collector and goes on, so a spec's problems
are reported together.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from fomolab.spec.limits import LIMITS
from fomolab.spec.problems import Problems

if TYPE_CHECKING:
    from fomolab.spec.models import Scenario

__all__ = ["check_scenario"]

def _check_host(s: Scenario, host: Any, add: Any, configured: bool) -> None:
    """Rules of a host's cues and timer extension (:mod:`fomolab.host`) over the lineup and the stream."""
    where = "stream.reactive_host"
    if (host.cues or host.extend_timer is not None) and s.shopper is not None:
        add(f"{where}.{'cues' if host.cues else 'extend_timer'}", "(given)",
            "a host's cues and timer extensions are not modelled with [shopper] in this version; leave them "
            "out or leave out [shopper]")
    from fomolab.host import TIMER

    ext = host.extend_timer
    if ext is None:
        return
    for i, name in enumerate(ext.products or ()):
        if name not in s.lineup:
            add(f"{where}.extend_timer.products[{i}]", name,
                f"unknown product; the lineup has: {', '.join(sorted(s.lineup)[:10])}"
                + (" ..." if len(s.lineup) > 10 else ""))
    timed = [n for n, p in s.lineup.items() if ext.covers(n) and TIMER in dict(p.tactics.items())]
    if configured and not timed and not any(n not in s.lineup for n in ext.products or ()):
        add(f"{where}.extend_timer", ext.model_dump(exclude_none=True),
            f"no product it covers has a {TIMER} to extend; give one a timer, or name products "
            "that have one")
    if timed and s.stream.retention is not None and s.stream.retention.countdown != 1.0:
        add("stream.retention.countdown", s.stream.retention.countdown,
            "a countdown the host extends does not hold viewers in this version (departures are drawn before "
            "the deadline is known); set it to 1 or leave out extend_timer")
    for n in timed:
        timer: Any = dict(s.lineup[n].tactics.items())[TIMER]
        for key, default in (("resets", False), ("deferral", 0.0), ("arrival_boost", 1.0)):
            value = getattr(timer, key)
            if value != default:
                add(f"lineup.{n}.tactics.{TIMER}.{key}", value,
                    f"a timer the host extends ({where}.extend_timer) cannot also have {key} in this version; "
                    f"leave out {key} or name other products in {where}.extend_timer.products")


def check_scenario(s: Scenario, problems: Problems, prefix: str, *, configured: bool = False,
                   key_prefix: str | None = None, same_prefix: str | list[str] | None = None) -> None:
    """Add the cross-key problems of scenario ``s`` to ``problems``.

    Parameters
    ----------
    s : Scenario
        The validated scenario.
    problems : Problems
        The collector.
    prefix : str
        Text before each key path (``"arms.flash.set → "``).
    configured : bool
        ``s`` holds every configured tactic, not one arm's; rules that bind
        only a tactic switched on (a scarcity cue needs a finite stock, which
        an arm may set) wait for the arms.
    key_prefix : str, optional
        Prefix of each problem's duplicate key (default ``prefix``).
    same_prefix : str or list of str, optional
        A problem is dropped when one with key ``same_prefix + path`` (for
        one of them) was added (a problem of the spec's own scenario is not repeated for each
        arm).
    """
    kp = prefix if key_prefix is None else key_prefix

    def add(path: str, value: object, rule: str, code: str = "inconsistent") -> None:
        alike = [] if same_prefix is None else [same_prefix] if isinstance(same_prefix, str) else same_prefix
        problems.add(prefix + path, value, rule, code, key=kp + path, same_as=[s + path for s in alike])

    T = s.stream.duration_s
    if s.shopper is not None:
        for path, value, rule in s.shopper.problems(list(s.population.segments), list(s.lineup)):
            add(path, value, rule)
    sched = s.stream.arrivals.schedule or ()
    for i, piece in enumerate(sched):
        if piece.start_s >= T:
            add(f"stream.arrivals.schedule[{i}].start_s", piece.start_s,
                f"must lie inside the stream, before duration_s = {T}")
    shares = {k: seg.share for k, seg in s.population.segments.items()}
    if not math.isclose(sum(shares.values()), 1.0, abs_tol=1e-6):
        add("population.segments", shares,
            f"segment shares must sum to 1 (they sum to {sum(shares.values()):.6g})")
    m = s.market
    shift = (m.streams - 1) * m.stagger_s if m is not None else 0.0
    if m is not None and shift:
        # windows already outside the stream are named below, not blamed on the stagger
        windows = [t.window() for prod in s.lineup.values() for _, t in prod.tactics.items()]
        ends = [w[1] for w in windows if w is not None and w[1] <= T]
        if ends and max(ends) + shift > T:
            add("market.stagger_s", m.stagger_s,
                f"the last of {m.streams} streams is shifted by {shift:g} s, which moves a tactic window "
                f"ending at {max(ends):g} s past the stream's end ({T:g} s); lower stagger_s")
    if m is not None and s.stream.reactive_host is not None:
        add("stream.reactive_host", "(a reactive host)",
            "a reactive host is not modelled in a marketplace in this version; leave out [market] or "
            "[stream.reactive_host]")
    host = s.stream.reactive_host
    if host is not None and host.restock and s.shopper is not None and s.shopper.walks:
        add("stream.reactive_host.restock", [r.model_dump() for r in host.restock],
            "a host's restocks are not modelled with shopper budgets or several units per purchase in this "
            "version; leave out the restock rules or [shopper]")
    if host is not None:
        _check_host(s, host, add, configured)
    if m is not None and s.stream.retention is not None:
        add("stream.retention", s.stream.retention.model_dump(),
            "retention is not modelled in a marketplace in this version (a viewer's departure is from all "
            "streams); leave out [market] or [stream.retention]")
    if s.stream.retention is not None and s.stream.retention.own_purchase:
        _check_own_purchase(s, add)
    hawkes = s.stream.arrivals.hawkes
    if hawkes is not None and hawkes.purchase_branching > 0:
        _check_purchase_branching(s, hawkes, add)
    _check_sizes(s, add)
    for pname, prod in s.lineup.items():
        where = f"lineup.{pname}"
        named: set[tuple[float, float]] = set()  # a window taken from another (a timer's from its sale) is named once
        if prod.slot_s is not None and not (prod.slot_s[0] >= 0 and prod.slot_s[1] <= T):
            add(f"{where}.slot_s", list(prod.slot_s), f"must lie inside the stream [0, {T}]")
            named.add((prod.slot_s[0], prod.slot_s[1]))
        for kind, tactic in prod.tactics.items():
            w = tactic.window()
            if w is not None and not (w[0] >= 0 and w[1] <= T) and (w[0], w[1]) not in named:
                named.add((w[0], w[1]))
                add(f"{where}.tactics.{kind}.{tactic.window_key()}", list(w),
                    f"the window must lie inside the stream [0, {T}]")
            problem = None if configured else tactic.product_problem(prod, where)
            if problem is not None:
                add(f"{where}.tactics.{kind}", *problem)


def _check_own_purchase(s: Scenario, add: Any) -> None:
    """What retention from a viewer's own purchase cannot be combined with in this version.

    The purchase moves the viewer's departure, so departures are known only as
    the purchases are decided, in time order; whatever reads the audience (who
    is present) before the purchases would read departures that are not final.
    """
    r = s.stream.retention.purchase if s.stream.retention else 1.0
    _audience_first(s, add, "stream.retention.purchase", r, "retention from a viewer's own purchase",
                    "departures then depend on purchases", "set it to 1")


def _audience_first(s: Scenario, add: Any, key: str, value: float, what: str, then: str, off: str) -> None:
    """Refuse, at ``key``, what reads the audience before the purchases are decided."""
    for pname, prod in s.lineup.items():
        for kind, tactic in prod.tactics.items():
            why = tactic.audience_problem()
            if why is not None:
                add(key, value, f"{what} cannot be combined with lineup.{pname}.tactics.{kind} in this version "
                                f"({why}; {then}); {off} or leave out the tactic")
    host = s.stream.reactive_host
    if host is not None and host.rules:
        add(key, value, f"{what} cannot be combined with stream.reactive_host.rules in this version (the host's "
                        f"rules count the viewers present before the purchases are decided; {then}); {off} or "
                        "leave out the rules")
    if s.shopper is not None and (s.shopper.valuation_gate or s.shopper.walks):
        add(key, value, f"{what} cannot be combined with [shopper] (a valuation gate, budgets or several units) in "
                        f"this version (their walks do not follow an audience that purchases change; {then}); "
                        f"{off}, or leave out [shopper] or set shopper.valuation_gate = false")


def _check_purchase_branching(s: Scenario, hawkes: Any, add: Any) -> None:
    """Purchases that bring arrivals: stationarity over the lineup, and what reads the audience first."""
    key, nb, P = "stream.arrivals.hawkes.purchase_branching", hawkes.purchase_branching, len(s.lineup)
    if hawkes.offspring_bound(P) >= 1:
        add(key, nb, f"branching + purchase_branching x {P} products must be below 1 for a stationary audience "
                     f"(a viewer buys each product at most once, so brings up to {hawkes.offspring_bound(P):g} "
                     "arrivals on average, and the audience could grow without bound)")
    if s.market is not None:
        add(key, nb, "purchases that bring arrivals are not modelled in a marketplace in this version; leave out "
                     "[market] or set it to 0")
    _audience_first(s, add, key, nb, "purchases that bring arrivals", "arrivals then depend on purchases",
                    "set it to 0")


def _check_sizes(s: Scenario, add: Any) -> None:
    """How much one run would simulate: viewers, timer restarts, fabricated notifications.

    A typo (``rate_per_s = 1e9``, ``duration_s = 1e300``, a timer that restarts
    every nanosecond) would otherwise hang a run or exhaust its memory.
    """
    T = s.stream.duration_s
    edges, rates = s.stream.arrivals.pieces(T)
    base = float(sum(r * max(0.0, min(b, T) - a) for a, b, r in zip(edges[:-1], edges[1:], rates, strict=True)))
    boost = math.prod(t.boost for prod in s.lineup.values() for _, t in prod.tactics.items())
    streams = s.market.streams if s.market is not None else 1
    viewers = base * (1.0 + streams * (boost - 1.0))
    hawkes = s.stream.arrivals.hawkes
    if hawkes is not None and hawkes.offspring_bound(len(s.lineup)) < 1:  # 1 / (1 - n - n_buy P) in all, at most
        viewers *= hawkes.mean_factor(len(s.lineup) if hawkes.purchase_branching > 0 else 0)
    if viewers > LIMITS["viewers_per_run"]:
        add("stream.arrivals", f"{viewers:.3g} viewers",
            f"a run has at most {LIMITS['viewers_per_run']:,} expected viewers (arrival rate x duration, arrival "
            "boosts at their most, times 1 / (1 - branching) with bursts; a limit of fomolab)", "limit_exceeded")
    cap = LIMITS["scheduled_events_per_run"]
    for pname, prod in s.lineup.items():
        a_slot, b_slot = prod.slot(T)
        shown = max(0.0, min(b_slot, T) - a_slot)
        for kind, tactic in prod.tactics.items():
            rate = getattr(tactic, "fabricated_rate_per_s", None)
            if rate is not None and rate * shown > cap:
                add(f"lineup.{pname}.tactics.{kind}.fabricated_rate_per_s", rate,
                    f"at most {cap:,} fabricated notifications per run ({rate * shown:.3g} over the product's "
                    f"{shown:g} s on show; a limit of fomolab)", "limit_exceeded")
            w = tactic.window()
            if getattr(tactic, "resets", False) and w is not None:
                a, end = w
                period = float(getattr(tactic, "period_s", 0.0))
                restarts = (min(end, T) - a) / period if period > 0 else math.inf
                if restarts > cap:
                    add(f"lineup.{pname}.tactics.{kind}", f"{restarts:.3g} restarts",
                        f"a resetting timer restarts at most {cap:,} times per run (countdowns of {period:g} s "
                        f"from {a:g} s to {min(end, T):g} s; a limit of fomolab)", "limit_exceeded")
