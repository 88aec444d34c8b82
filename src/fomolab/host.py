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

Two more rules read the sales, and so act in each product's walk too, exactly
at the state they read:

- ``[stream.reactive_host.extend_timer]`` (:class:`ExtendTimer`), the fake
  deadline: when ``left_s`` remain on a countdown, stock is left and (if
  asked) fewer than ``sales_below`` units sold in the last ``window_s``, the
  host moves the deadline ``by_s`` later, at most ``times`` times.  The
  timer (:class:`ExtendedTimer`) is then interactive: its signal follows the
  moved deadline, and its window ends at the deadline reached.
- ``[[stream.reactive_host.cues]]`` (:class:`SlowSalesCue`): at a check,
  fewer than ``sales_below`` units of the product on show sold in the last
  ``window_s`` shows a cue (``scarcity_cue`` or ``social_proof``) for
  ``show_s``: the hazard is multiplied by ``1 + gain * z`` meanwhile.

Each is a ``host_action`` event; the thinning envelope holds each one's gain
over the product's slot (:meth:`ReactiveHost.envelope_gains`).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from pydantic import Field, PrivateAttr, field_validator, model_serializer, model_validator

from fomolab._frozen import FrozenModel
from fomolab.tactics._base import LiveSignal
from fomolab.tactics.countdown_timer import CountdownTimer
from fomolab.tactics.lightning_sale import LightningSale
from fomolab.tactics.scarcity_cue import ScarcityCue
from fomolab.tactics.social_proof import SocialProof

if TYPE_CHECKING:
    import numpy as np

    from fomolab.tactics._context import ProductContext

__all__ = ["HostRule", "Restock", "ExtendTimer", "SlowSalesCue", "ReactiveHost", "HostAction", "ExtendedTimer",
           "react", "host_reacts", "host_signals", "SALE", "TIMER", "CUE_KINDS"]

#: The tactic kind a host's action starts.
SALE = LightningSale.kind
#: The tactic kind a host's timer extension moves.
TIMER = CountdownTimer.kind
#: The messages a host may show when sales slow (tactic kinds, as the tables name them).
CUE_KINDS = (ScarcityCue.kind, SocialProof.kind)


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


class ExtendTimer(FrozenModel):
    """Move a countdown's deadline ``by_s`` later when ``left_s`` remain and sales are slow, at most ``times`` times.

    The deceptive "fake deadline": the viewer sees a deadline that the host
    moves when it comes near.

    Attributes
    ----------
    left_s : float
        The host decides when this many seconds are left on the countdown.
    by_s : float
        Seconds the deadline moves (cut at the product's slot end).
    times : int
        Extensions of each timer, at most.
    sales_below : int or None
        The condition: fewer than this many units of the product sold in the
        last ``window_s`` (None: whatever the sales).
    window_s : float
        The sales window of ``sales_below``.
    products : tuple of str or None
        The products whose timers the host extends (None: every product with
        a countdown timer).
    """

    left_s: float = Field(gt=0)
    by_s: float = Field(gt=0)
    times: int = Field(default=1, ge=1, le=10_000)
    sales_below: int | None = Field(default=None, ge=1)
    window_s: float = Field(default=60.0, gt=0)
    products: tuple[str, ...] | None = Field(default=None, min_length=1)

    def covers(self, name: str) -> bool:
        """True when the rule extends the timer of product ``name``."""
        return self.products is None or name in self.products


class SlowSalesCue(FrozenModel):
    """Show cue ``cue`` for ``show_s`` when fewer than ``sales_below`` units sold in the last ``window_s``.

    Attributes
    ----------
    sales_below : int
        The condition: units of the product on show sold in the last
        ``window_s`` below this.
    window_s : float
        The sales window (the host judges a product once it has been on show
        that long).
    cue : str
        The message shown, one of :data:`CUE_KINDS` (a scarcity message, "only
        a few left!", or a social-proof ticker, "people are buying!"), as the
        tables' ``tactic`` column names it.
    show_s : float
        How long the cue shows (cut at the product's slot end).
    gain : float
        The cue's hazard gain: the hazard is multiplied by ``1 + gain * z``
        while it shows.
    cooldown_s : float
        Seconds after this rule's last cue on the product before it may act again.
    """

    sales_below: int = Field(ge=1)
    window_s: float = Field(gt=0)
    cue: str
    show_s: float = Field(gt=0)
    gain: float = Field(default=1.0, ge=0)
    cooldown_s: float = Field(default=0.0, ge=0)

    @field_validator("cue")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CUE_KINDS:
            raise ValueError(f"must be one of {', '.join(CUE_KINDS)} (the message the host shows)")
        return value


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
    cues : tuple of SlowSalesCue
        In order, at each check: the first that applies shows its cue on the
        product on show (in each product's walk).
    extend_timer : ExtendTimer or None
        Extensions of countdown timers' deadlines (in each product's walk).
    """

    check_every_s: float | None = Field(default=None, gt=0)
    rules: tuple[HostRule, ...] = Field(default=(), max_length=100)
    restock: tuple[Restock, ...] = Field(default=(), max_length=100)
    cues: tuple[SlowSalesCue, ...] = Field(default=(), max_length=100)
    extend_timer: ExtendTimer | None = None

    @model_validator(mode="after")
    def _something(self) -> ReactiveHost:
        if not self.rules and not self.restock and not self.cues and self.extend_timer is None:
            raise ValueError("give rules (sales when the audience drops) or restock rules (or cues when sales "
                             "slow, or extend_timer), or leave out the host")
        if self.rules and self.check_every_s is None:
            raise ValueError("rules need check_every_s (seconds between the host's checks)")
        if self.cues and self.check_every_s is None:
            raise ValueError("cues need check_every_s (seconds between the host's checks)")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """``restock``, ``cues`` and ``extend_timer`` are left out when not given: a run's identity is
        what it was before they existed."""
        data = handler(self)
        if isinstance(data, dict):
            for key in ("restock", "cues"):
                if not data.get(key, 1):
                    del data[key]
            if "extend_timer" in data and data["extend_timer"] is None:
                del data["extend_timer"]
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

    def extends(self, name: str, product: Any) -> bool:
        """True when the host may extend the countdown timer of ``product`` (named ``name``)."""
        return (self.extend_timer is not None and self.extend_timer.covers(name)
                and TIMER in dict(product.tactics.items()))

    def envelope_gains(self, name: str, product: Any) -> list[tuple[str, float]]:
        """``(tactic kind, gain)`` the host's cues and timer extension may add to ``product`` anywhere
        in its slot: the largest gain of its cues of each kind (a kind the product configures is not
        shown by the host), and its timer's gain (an extended timer's signal stays in [0, 1] whatever
        its deadline)."""
        out = []
        own = dict(product.tactics.items())
        for kind in CUE_KINDS:
            gains = [c.gain for c in self.cues if c.cue == kind]
            if gains and kind not in own:
                out.append((kind, max(gains)))
        if self.extends(name, product):
            out.append((TIMER, own[TIMER].gain))
        return out


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
    lineup = {name: _extendable(host, name, prod) for name, prod in lineup.items()}
    names = list(lineup)
    for act in actions:
        recorder.event(act.time_s, "host_action", names.index(act.product), SALE, act.viewers)
    if actions and retention is not None:
        viewers = retain(retention, lineup, replace(viewers, departure_s=viewers.departure_s), dwell, duration_s,
                         recorder)
    return scenario.model_copy(update={"lineup": lineup}), viewers


# ----- a timer the host extends; cues when sales slow (both act in the product's walk) -------------------


class ExtendedTimer(CountdownTimer):
    """A countdown timer whose deadline the host may move (:class:`ExtendTimer`).

    Its configuration (and so the ``tactics`` table) is the timer's as the
    spec gives it; the host's rule rides along out of it.  Its factor depends
    on the deadline, which depends on the product's sales, so it is
    interactive: its signal is evaluated in the product's walk
    (:class:`_Extension`), and its ``tactic_end`` event is recorded at the
    deadline it finally reached.
    """

    _rule: ExtendTimer | None = PrivateAttr(default=None)

    def is_interactive(self) -> bool:
        return True

    def live(self, ctx: ProductContext) -> LiveSignal | None:
        if self._rule is None:
            raise TypeError("an ExtendedTimer needs the host's rule")
        return _Extension(self, self._rule, ctx)

    def schedule(self, ctx: ProductContext) -> None:
        ctx.event(self.countdown()[0], "tactic_start", self.kind)  # its end: when the walk has moved it


def _extendable(host: ReactiveHost, name: str, prod: Any) -> Any:
    """``prod`` with its countdown timer made extendable, where the host's rule covers it."""
    if not host.extends(name, prod):
        return prod
    timer = dict(prod.tactics.items())[TIMER]
    ext = ExtendedTimer.model_validate(dict(timer))
    ext._rule = host.extend_timer
    return prod.model_copy(update={"tactics": prod.tactics.model_copy(update={TIMER: ext})})


def _sold(sales: list[float], t: float, window_s: float) -> int:
    """Units sold in ``(t - window_s, t]`` (``sales`` sorted)."""
    from bisect import bisect_right

    return bisect_right(sales, t) - bisect_right(sales, t - window_s)


class _Extension(LiveSignal):
    """An extendable timer's signal in its product's walk.

    The host decides at ``deadline - left_s`` (not before the countdown
    starts): with stock left and (if asked) fewer than ``sales_below`` sold
    in the last ``window_s``, the deadline moves ``by_s`` later (cut at the
    slot's end), a ``host_action`` event (``value``: seconds added); the next
    decision is ``left_s`` before the new deadline.  Otherwise the deadline
    comes, and the host decides no more.  Decisions are made when the walk
    reaches a later candidate, or at its end: every purchase before a
    decision is known then, and none after it.
    """

    def __init__(self, timer: CountdownTimer, rule: ExtendTimer, ctx: ProductContext) -> None:
        self.gain = timer.gain
        self.timer, self.rule, self.ctx = timer, rule, ctx
        self.start_s, self.deadline = timer.countdown()
        self.cap = min(ctx.slot[1], ctx.duration_s)
        self.left = rule.times
        self.sales: list[float] = []
        self.next = self._decision()

    def _decision(self) -> float:
        if self.left <= 0 or self.deadline >= self.cap:
            return float("inf")
        return max(self.deadline - self.rule.left_s, self.start_s)

    def _advance(self, t: float, stock: int | None) -> None:
        rule = self.rule
        while self.next <= t and self.next < float("inf"):
            c = self.next
            ok = stock is None or stock > 0
            if ok and rule.sales_below is not None:
                ok = _sold(self.sales, c, rule.window_s) < rule.sales_below
            if not ok:
                self.next = float("inf")
                return
            new = min(self.deadline + rule.by_s, self.cap)
            self.ctx.event(c, "host_action", TIMER, new - self.deadline)
            self.deadline = new
            self.left -= 1
            self.next = self._decision()

    def level(self, t: float, stock: int | None) -> float:
        self._advance(t, stock)
        a, b = self.start_s, self.deadline
        if not a <= t < b:
            return 0.0
        if self.timer.urgency == "linear":
            return min(1.0, max(0.0, (t - a) / (b - a)))
        return 1.0 / (1.0 + self.timer.kappa_per_s * (b - t))

    def bought(self, t: float, stock: int | None) -> None:
        self.sales.append(t)

    def finish(self, stock: int | None) -> None:
        self._advance(float("inf"), stock)
        self.ctx.event(min(self.deadline, self.ctx.duration_s), "tactic_end", TIMER)


class _CueBoard:
    """The host's cues on one product, in its walk: at each check ``k * check_every_s`` in the slot,
    the first rule that applies shows its cue (``tactic_start``/``tactic_end`` events and a
    ``host_action``, ``value``: the units counted).

    A rule applies when no host cue shows on the product, its cooldown has
    passed, the product has been on show for its ``window_s``, stock is left
    and fewer than ``sales_below`` units sold in the last ``window_s``.  As
    for a timer's extension, checks are made when the walk reaches a later
    candidate, or at its end.
    """

    def __init__(self, host: ReactiveHost, rules: list[tuple[int, SlowSalesCue]], ctx: ProductContext) -> None:
        import math

        self.rules, self.ctx = rules, ctx
        self.every = float(host.check_every_s or 0.0)
        self.a, self.b = ctx.slot[0], min(ctx.slot[1], ctx.duration_s)
        self.k = max(1, math.floor(self.a / self.every) + 1)  # the first check after the slot starts
        self.last = {i: -float("inf") for i, _ in rules}
        self.shown: tuple[str, float, float, float] | None = None  # kind, gain, start, end
        self.sales: list[float] = []

    def advance(self, t: float, stock: int | None) -> None:
        while True:
            c = self.k * self.every
            if c > t or c >= self.b:
                return
            self.k += 1
            if self.shown is not None and c < self.shown[3]:
                continue
            if stock is not None and stock <= 0:
                continue
            for i, rule in self.rules:
                if c - self.a < rule.window_s or c < self.last[i] + rule.cooldown_s:
                    continue
                n = _sold(self.sales, c, rule.window_s)
                if n >= rule.sales_below:
                    continue
                end = min(c + rule.show_s, self.b)
                self.shown = (rule.cue, rule.gain, c, end)
                self.last[i] = c
                self.ctx.event(c, "tactic_start", rule.cue)
                self.ctx.event(end, "tactic_end", rule.cue)
                self.ctx.event(c, "host_action", rule.cue, n)
                break

    def level(self, kind: str, t: float) -> float:
        """The gain of ``kind``'s cue shown at ``t`` (0: none)."""
        s = self.shown
        return s[1] if s is not None and s[0] == kind and s[2] <= t < s[3] else 0.0


class _Cue(LiveSignal):
    """One cue kind's signal on a product: ``gain_i / gain`` while rule ``i``'s cue of this kind shows,
    ``gain`` the largest of the kind's rules (its envelope).  The first of a product's cue signals
    tells the board of purchases."""

    def __init__(self, board: _CueBoard, kind: str, gain: float, tells: bool) -> None:
        self.board, self.kind, self.gain, self.tells = board, kind, gain, tells

    def level(self, t: float, stock: int | None) -> float:
        self.board.advance(t, stock)
        return self.board.level(self.kind, t) / self.gain if self.gain > 0 else 0.0

    def bought(self, t: float, stock: int | None) -> None:
        if self.tells:
            self.board.sales.append(t)

    def finish(self, stock: int | None) -> None:
        if self.tells:
            self.board.advance(float("inf"), stock)


def host_signals(host: ReactiveHost, ctx: ProductContext, product: Any) -> list[LiveSignal]:
    """The live signals of the host's cues on ``product`` (empty without cues): one per cue kind the
    product does not configure itself."""
    own = dict(product.tactics.items())
    rules = [(i, c) for i, c in enumerate(host.cues) if c.cue not in own]
    if not rules:
        return []
    board = _CueBoard(host, rules, ctx)
    kinds = [k for k in CUE_KINDS if any(c.cue == k for _, c in rules)]
    return [_Cue(board, k, max(c.gain for _, c in rules if c.cue == k), j == 0) for j, k in enumerate(kinds)]
