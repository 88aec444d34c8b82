"""A reactive host: rules over the stream's audience, declared in the spec.

The picture: the host glances at the viewer count every half minute; when it
drops below 150 she shouts "flash deal, two minutes only!" on whatever is on
show.  A rule says when (``viewers_below``), what (a lightning sale on the
product on show: ``discount``, ``sale_s``, ``gain``) and how often
(``cooldown_s``); no code goes in a spec::

    [stream.reactive_host]
    check_every_s = 30.0
    [[stream.reactive_host.rules]]
    viewers_below = 150
    discount = 0.3
    sale_s = 120.0
    gain = 2.0
    cooldown_s = 300.0

The host is a SimPy process: at each check ``k * check_every_s`` (``k >= 1``,
before the stream's end) it counts the viewers present (visits under way),
and the first rule whose condition holds, whose cooldown has passed and for
which a product is on show without a sale of its own (configured or the
host's, still running) starts a sale on that product: from the check until
``sale_s`` later or the slot's end.  Each action is a ``host_action`` event
(``value``: the viewers counted) and its sale's ``tactic_start`` and
``tactic_end`` events, windows and tactics rows, as a sale the spec
configured.

The rules read the audience, which does not depend on purchases, so the host
runs before the products' walks; a sale it starts holds viewers under
``[stream.retention]``, so the departures are recomputed after each action
(presence before an action does not depend on it): the counts it reads are
exact.  The thinning envelope of every product bounds the host's largest
discount and gain over its slot.

A host also restocks: ``[[stream.reactive_host.restock]]`` rules
(``stock_below``, ``units``, ``times``) act in each product's walk, at the
purchase that leaves fewer than ``stock_below`` units of a product with a
finite stock: the first rule with restocks left adds ``units`` at once.  Each
restock is a ``host_action`` event (``value``: the units added; ``tactic``
missing).  A restock reads the stock, which purchases change, so it acts in
the walk, exactly at the purchase; it changes no hazard bound (stock only
allows purchases).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_serializer, model_validator

from fomolab._frozen import FrozenModel
from fomolab.tactics.lightning_sale import LightningSale

if TYPE_CHECKING:
    import numpy as np

__all__ = ["HostRule", "Restock", "ReactiveHost", "HostAction", "react", "host_reacts", "SALE"]

#: The tactic kind a host's action starts.
SALE = LightningSale.kind


class HostRule(FrozenModel):
    """Start a lightning sale on the product on show when fewer than ``viewers_below`` watch.

    Attributes
    ----------
    viewers_below : int
        The condition: viewers present at the check below this.
    discount : float
        The sale's discount, in ``[0, 1)``.
    sale_s : float
        The sale's length (cut at the product's slot end).
    gain : float
        The sale's hazard gain.
    cooldown_s : float
        Seconds after this rule's last sale before it may act again.
    """

    viewers_below: int = Field(ge=1)
    discount: float = Field(default=0.2, ge=0, lt=1)
    sale_s: float = Field(default=120.0, gt=0)
    gain: float = Field(default=1.0, ge=0)
    cooldown_s: float = Field(default=0.0, ge=0)


class Restock(FrozenModel):
    """Add ``units`` to a product at the purchase that leaves fewer than ``stock_below``, at most ``times`` times.

    Attributes
    ----------
    stock_below : int
        The condition: units left after a purchase below this.
    units : int
        Units added.
    times : int
        Restocks of each product by this rule, at most.
    """

    stock_below: int = Field(ge=1)
    units: int = Field(ge=1)
    times: int = Field(default=1, ge=1)


class ReactiveHost(FrozenModel):
    """The host's rules and how often she checks them.

    Attributes
    ----------
    check_every_s : float or None
        Seconds between checks of ``rules`` (needed with them).
    rules : tuple of HostRule
        In order: the first that applies acts.
    restock : tuple of Restock
        In order: the first with restocks left acts, in each product's walk.
    """

    check_every_s: float | None = Field(default=None, gt=0)
    rules: tuple[HostRule, ...] = Field(default=(), max_length=100)
    restock: tuple[Restock, ...] = Field(default=(), max_length=100)

    @model_validator(mode="after")
    def _something(self) -> ReactiveHost:
        if not self.rules and not self.restock:
            raise ValueError("give rules (sales when the audience drops) or restock rules, or leave out the host")
        if self.rules and self.check_every_s is None:
            raise ValueError("rules need check_every_s (seconds between the host's checks)")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """``restock`` is left out when empty: a run's identity is what it was before it existed."""
        data = handler(self)
        if isinstance(data, dict) and not data.get("restock", 1):
            del data["restock"]
        return data

    def largest(self) -> tuple[float, float]:
        """The largest discount and gain of any rule (for the thinning envelope)."""
        return max(r.discount for r in self.rules), max(r.gain for r in self.rules)

    def envelope_term(self, product: Any) -> tuple[str, float, float] | None:
        """``(tactic kind, gain, discount)`` the host may add to ``product`` anywhere in its slot
        (None: it never acts on it, having a sale of its own)."""
        if not self.rules or SALE in dict(product.tactics.items()):
            return None
        discount, gain = self.largest()
        return SALE, gain, discount


class HostAction(FrozenModel):
    """One action: at ``time_s``, seeing ``viewers``, rule ``rule`` started a sale on ``product``."""

    time_s: float
    rule: int
    viewers: int
    product: str
    end_s: float


def _present(arrival: np.ndarray, departure: np.ndarray, t: float) -> int:
    import numpy as np

    return int(np.count_nonzero((arrival <= t) & (departure > t)))


def react(host: ReactiveHost, lineup: dict[str, Any], arrival: np.ndarray, departures: Any,
          duration_s: float) -> tuple[dict[str, Any], list[HostAction]]:
    """Run the host's process; return the lineup with its sales added, and its actions.

    Parameters
    ----------
    host : ReactiveHost
    lineup : dict
        The arm's products (:class:`~fomolab.lineup.Product`).
    arrival : numpy.ndarray
        Every viewer's arrival.
    departures : callable
        ``departures(lineup) -> numpy.ndarray``: every viewer's departure with
        that lineup (retention makes it depend on the sales).
    duration_s : float
        The stream's end.
    """
    import simpy

    from fomolab.tactics import KINDS

    if not host.rules or host.check_every_s is None:
        return dict(lineup), []
    every = host.check_every_s
    sale_cls: Any = KINDS[SALE]
    state = {"lineup": dict(lineup), "departure": departures(lineup)}
    actions: list[HostAction] = []
    last = [-float("inf")] * len(host.rules)

    def on_show(t: float) -> str | None:
        for name, prod in state["lineup"].items():
            a, b = prod.slot(duration_s)
            if a <= t < b and SALE not in dict(prod.tactics.items()):
                return name
        return None

    def process(env: simpy.Environment) -> Generator[Any, Any, None]:
        while True:
            yield env.timeout(every)
            t = float(env.now)
            if t >= duration_s:
                return
            n = _present(arrival, state["departure"], t)
            for i, rule in enumerate(host.rules):
                if n >= rule.viewers_below or t < last[i] + rule.cooldown_s:
                    continue
                name = on_show(t)
                if name is None:
                    break
                prod = state["lineup"][name]
                end = min(t + rule.sale_s, prod.slot(duration_s)[1])
                sale = sale_cls(start_s=t, end_s=end, discount=rule.discount, gain=rule.gain)
                state["lineup"][name] = prod.model_copy(
                    update={"tactics": prod.tactics.model_copy(update={SALE: sale})})
                actions.append(HostAction(time_s=t, rule=i, viewers=n, product=name, end_s=end))
                last[i] = t
                state["departure"] = departures(state["lineup"])  # the sale may hold viewers
                break

    env = simpy.Environment()
    env.process(process(env))
    env.run(until=duration_s)
    return state["lineup"], actions


def host_reacts(scenario: Any, viewers: Any, dwell: np.ndarray, recorder: Any, duration_s: float
                ) -> tuple[Any, Any]:
    """The run's scenario with the host's sales in its lineup, and its viewers' departures
    (under retention, held by those sales too); the actions go to ``recorder`` as events."""
    from dataclasses import replace

    from fomolab.retention import departures, retain

    host = scenario.stream.reactive_host
    retention = scenario.stream.retention

    def leave(lineup: dict[str, Any]) -> np.ndarray:
        if retention is None:
            return viewers.departure_s
        return departures(retention, lineup, viewers.arrival_s, dwell, duration_s)[0]

    lineup, actions = react(host, scenario.lineup, viewers.arrival_s, leave, duration_s)
    names = list(lineup)
    for act in actions:
        recorder.event(act.time_s, "host_action", names.index(act.product), SALE, act.viewers)
    if actions and retention is not None:
        viewers = retain(retention, lineup, replace(viewers, departure_s=viewers.departure_s), dwell, duration_s,
                         recorder)
    return scenario.model_copy(update={"lineup": lineup}), viewers
