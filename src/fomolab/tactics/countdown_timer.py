"""Countdown timer: a clock on screen that runs down to a deadline.

The picture: "Deal ends in 04:59" under the product.  Urgency grows as the
deadline nears, either linearly with the share of the countdown elapsed, or
hyperbolically, ``1 / (1 + kappa * seconds_left)``, as present-biased viewers
discount the future.  By default the timer counts down the product's lightning
sale: it starts with the sale and its deadline is the sale's end.

Viewers who are told they have time may also *wait*: a deal that is still open
keeps the option to buy later (and to learn more, or find a better offer), so
the pull to buy now is weakest just after the countdown starts and grows as the
deadline nears; redemptions of coupons rise again just before they expire
(Inman & McAlister 1994, *Journal of Marketing Research* 31).  With
``deferral = p`` the timer's factor is ``(1 + gain * z * s) * (1 - p * z * (1 - s))``
while it shows: below 1 while the deadline is far, above 1 as it nears.  The
size of the effect is illustrative, not calibrated.  ``deferral`` was called
``procrastination`` before fomolab 0.2; the old key is still read (with a
:class:`~fomolab.errors.DeprecatedKeyWarning`) and keeps its meaning, and a
run's stored configuration still names it ``procrastination`` so that run
identities do not change.

The deceptive variant ``resets = true`` restarts the countdown each time it
reaches zero, until ``until_s`` (default: the end of the product's slot): the
deadline never comes.  With ``credibility = c < 1`` viewers learn: each reset
a viewer witnesses scales their response to the timer by ``c`` (factor
``1 + c ** k * (f - 1)`` after ``k`` resets).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from pydantic import AliasChoices, Field, model_serializer, model_validator

from fomolab.tactics._base import Covariate, Tactic

if TYPE_CHECKING:
    from fomolab.tactics._context import EpisodeContext, ProductContext

__all__ = ["CountdownTimer"]


class CountdownTimer(Tactic):
    """A countdown timer on one product.

    Attributes
    ----------
    start_s, deadline_s : float or None
        When the timer appears and the deadline it counts down to.  Left out,
        they are taken from the product's lightning sale.
    urgency : {"linear", "hyperbolic"}
        ``linear``: ``s(t) = (t - start_s) / (deadline_s - start_s)``;
        ``hyperbolic``: ``s(t) = 1 / (1 + kappa_per_s * (deadline_s - t))``.
    kappa_per_s : float
        Discount rate of the hyperbolic urgency, per second left.
    deferral : float
        ``p`` in [0, 1]: how much viewers wait while the deadline is far (the
        option value of waiting); formerly ``procrastination``.
    arrival_boost : float
        Multiplier of the viewer arrival rate while the timer shows.
    """

    kind: ClassVar[str] = "countdown_timer"
    order: ClassVar[int] = 20
    summary: ClassVar[str] = "a clock running down to a deadline"
    time_fields: ClassVar[tuple[str, ...]] = ("start_s", "deadline_s", "until_s")
    retention_cause: ClassVar[str | None] = "countdown"
    offer: ClassVar[bool] = True
    has_deadline: ClassVar[bool] = True
    deadline_shares: ClassVar[bool] = True
    record_rank: ClassVar[int] = 20
    covariates: ClassVar[tuple[Covariate, ...]] = (Covariate("timer_signal", "timer", "float64"),)
    always_listed: ClassVar[bool] = True
    #: Sub-intervals per timer window in the thinning envelope.
    ENVELOPE_PIECES: ClassVar[int] = 16

    start_s: float | None = Field(default=None, ge=0)
    deadline_s: float | None = Field(default=None, gt=0)
    urgency: Literal["linear", "hyperbolic"] = "linear"
    kappa_per_s: float = Field(default=1 / 60, gt=0)
    deferral: float = Field(default=0.0, ge=0, le=1, validation_alias=AliasChoices("deferral", "procrastination"),
                            description="waiting while the deadline is far, in [0, 1] (formerly procrastination)")
    resets: bool = False
    until_s: float | None = Field(default=None, gt=0)
    credibility: float = Field(default=1.0, gt=0, le=1)
    arrival_boost: float = Field(default=1.0, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> CountdownTimer:
        if self.start_s is not None and self.deadline_s is not None and self.deadline_s <= self.start_s:
            raise ValueError(f"deadline_s must be after start_s ({self.start_s}): {self.deadline_s}")
        if self.until_s is not None and not self.resets:
            raise ValueError("until_s is for a timer that resets (resets = true)")
        if self.until_s is not None and self.deadline_s is not None and self.until_s < self.deadline_s:
            raise ValueError(f"until_s must not be before deadline_s ({self.deadline_s}): {self.until_s}")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """``deferral`` is stored under its former key, ``procrastination``: run identities
        and the stored tactic configurations of existing specs stay as they were."""
        data = handler(self)
        if isinstance(data, dict) and "deferral" in data:
            data["procrastination"] = data.pop("deferral")
        return data

    @classmethod
    def fill_defaults(cls, raw: dict[str, Any], siblings: dict[str, Any], slot) -> dict[str, Any]:
        """Without a window the timer counts down its product's lightning sale; a resetting
        timer shows until the end of the product's slot.  The former key
        ``procrastination`` is read as ``deferral``, with a warning (both at once are refused)."""
        timer = dict(raw)
        if "procrastination" in timer:
            import warnings

            from fomolab.errors import DeprecatedKeyWarning

            warnings.warn("countdown_timer.procrastination is now called deferral (the option value of waiting "
                          "for the deadline); the old key is read with the same meaning", DeprecatedKeyWarning,
                          stacklevel=2)
        sale = siblings.get("lightning_sale")
        if isinstance(sale, dict):
            timer.setdefault("start_s", sale.get("start_s"))
            timer.setdefault("deadline_s", sale.get("end_s"))
        if timer.get("resets") is True and slot is not None:
            timer.setdefault("until_s", slot[1])
        return timer

    @classmethod
    def default_sources(cls, raw: dict[str, Any], siblings: dict[str, Any], path: str,
                        slot_path: str) -> dict[str, str]:
        out = {}
        if isinstance(siblings.get("lightning_sale"), dict):
            sale = path.rsplit(".", 1)[0] + ".lightning_sale"
            for key, src in (("start_s", "start_s"), ("deadline_s", "end_s")):
                if key not in raw:
                    out[f"{path}.{key}"] = f"{sale}.{src}"
        if raw.get("resets") is True and "until_s" not in raw:
            out[f"{path}.until_s"] = slot_path
        return out

    @classmethod
    def idle_problem(cls, raw: dict[str, Any], siblings: dict[str, Any], on: set[str], path: str) -> str | None:
        """A timer that takes its window from the product's lightning sale, in an arm without that sale."""
        borrowed = [k for k in ("start_s", "deadline_s") if k not in raw]
        if borrowed and isinstance(siblings.get("lightning_sale"), dict) and "lightning_sale" not in on:
            sale = path.rsplit(".", 1)[0] + ".lightning_sale"
            return (f"counts down to the end of {sale} ({', '.join(borrowed)} from it), which is not on in this "
                    "arm: the timer shows a deadline of a sale that never runs; switch the sale on too, or give "
                    f"the timer its own {' and '.join(borrowed)}")
        return None

    def unresolved(self) -> str | None:
        if self.start_s is None or self.deadline_s is None:
            return (f"tactics.{self.kind} needs start_s and deadline_s "
                    "(or a lightning_sale on the same product to count down)")
        return None

    def window_key(self) -> str:
        return "until_s" if self.resets else "deadline_s"

    @property
    def period_s(self) -> float:
        """Length of one countdown."""
        a, b = self.countdown()
        return b - a

    def countdown(self) -> tuple[float, float]:
        """The (first) countdown: ``[start_s, deadline_s)``."""
        if self.start_s is None or self.deadline_s is None:
            raise ValueError("unresolved timer: start_s and deadline_s are needed")
        return (self.start_s, self.deadline_s)

    def window(self) -> tuple[float, float]:
        """When the timer shows: its countdown, or until ``until_s`` if it resets."""
        a, b = self.countdown()
        if self.resets:
            return (a, self.until_s if self.until_s is not None else float("inf"))
        return (a, b)

    def resets_at(self, end_s: float) -> np.ndarray:
        """Times the countdown restarts, before ``end_s`` (empty unless it resets)."""
        if not self.resets:
            return np.empty(0)
        a = self.countdown()[0]
        stop = min(self.window()[1], end_s)
        return a + self.period_s * np.arange(1, max(0, int(np.ceil((stop - a) / self.period_s))))

    def kinks(self, end_s: float) -> list[float]:
        return [*super().kinks(end_s), *(float(x) for x in self.resets_at(end_s))]

    def time_degree(self) -> int | None:
        if self.urgency == "hyperbolic":
            return None
        return 2 if self.deferral else 1  # deferral makes the factor quadratic

    def breakpoints(self) -> list[float]:
        a, b = self.countdown()
        return list(np.linspace(a, b, self.ENVELOPE_PIECES + 1))

    def signal(self, t: np.ndarray) -> np.ndarray:
        a, end = self.window()
        b = self.countdown()[1]
        t = np.asarray(t, dtype=float)
        inside = (t >= a) & (t < end)
        if self.resets:  # the displayed countdown restarts: time within the current cycle
            t = a + np.mod(t - a, self.period_s)
        if self.urgency == "linear":
            s = (t - a) / (b - a)
        else:
            s = 1.0 / (1.0 + self.kappa_per_s * np.maximum(b - t, 0.0))
        return np.where(inside, np.clip(s, 0.0, 1.0), 0.0)

    def exposures(self, t: np.ndarray, arrival_s: np.ndarray) -> np.ndarray:
        """Resets witnessed: restarts in ``[arrival, t)`` (the viewer is present throughout)."""
        if not self.resets:
            return np.zeros(np.shape(t))
        a = self.countdown()[0]
        P = self.period_s

        def done(x):  # restarts at a + kP, k >= 1, strictly before x
            return np.maximum(0.0, np.ceil((np.asarray(x, dtype=float) - a) / P) - 1.0)

        end = self.window()[1]
        return done(np.minimum(t, end)) - done(np.minimum(np.maximum(arrival_s, a), end))

    def factor(self, t: np.ndarray, z: np.ndarray, arrival_s: np.ndarray | None = None,
               departure_s: np.ndarray | None = None) -> np.ndarray:
        """The timer's multiplier of the purchase hazard at ``t`` for impulsiveness ``z``.

        >>> timer = CountdownTimer(start_s=0.0, deadline_s=100.0, gain=2.0, deferral=0.5)
        >>> ones = np.ones(3)
        >>> timer.factor(np.array([0.0, 50.0, 150.0]), ones).round(3).tolist()
        [0.5, 1.5, 1.0]
        >>> fake = CountdownTimer(start_s=0.0, deadline_s=100.0, gain=2.0, resets=True, credibility=0.5)
        >>> fake.factor(np.array([50.0, 150.0, 250.0]), ones, arrival_s=np.zeros(3)).round(3).tolist()
        [2.0, 1.5, 1.25]
        """
        s = self.signal(t)
        f = 1.0 + self.gain * z * s
        if self.deferral:
            a, b = self.window()
            inside = (t >= a) & (t < b)
            f = f * (1.0 - self.deferral * z * (1.0 - s) * inside)
        if arrival_s is not None:
            f = self.learned(f, t, arrival_s)
        elif self.credibility != 1.0 and self.resets:
            raise ValueError("a resetting timer with credibility < 1 needs the viewers' arrival times")
        return f

    def signal_bound(self, a: float, b: float) -> float:
        lo, hi = self.window()
        if not (a < hi and b > lo):
            return 0.0
        if self.resets:
            return 1.0
        # Urgency rises with time, so the bound is the value at the right end.
        right = min(b, hi)
        if self.urgency == "linear":
            return (right - lo) / (hi - lo)
        return 1.0 / (1.0 + self.kappa_per_s * (hi - right))

    def schedule(self, ctx: ProductContext) -> None:
        s, e = self.window()
        ctx.event(s, "tactic_start", self.kind)
        for k, r in enumerate(self.resets_at(ctx.duration_s), 1):  # a deceptive timer restarts: no deadline
            ctx.event(r, "tactic_end", self.kind, k)
            ctx.event(r, "tactic_start", self.kind, k)
        ctx.event(min(e, ctx.duration_s), "tactic_end", self.kind)

    def analytic(self, t, z, holder):
        return self.factor(t, z), None

    def episode_cuts(self, slot, options):
        """The timer's window cut into ``timer_pieces`` equal pieces."""
        ta, tb = self.window()
        return [np.linspace(ta, tb, options["timer_pieces"] + 1)]

    def episode_covariates(self, ctx: EpisodeContext) -> dict[str, np.ndarray]:
        """``timer_signal``: the timer's signal at the episode's midpoint, 0 outside its window."""
        return {"timer_signal": np.where(ctx.on, self.signal(ctx.mid), 0.0)}

#: This module's tactic, found by :func:`fomolab.tactics.registry`.
PLUGIN = CountdownTimer
