"""Scarcity cue: "only N left!" once stock falls to a threshold.

The picture: a red badge appears when the warehouse count drops low.  The cue is
shown while the product is on show and ``0 < stock <= threshold``; its signal
grows as stock falls, ``(threshold - stock + 1) / threshold``, reaching 1 at the
last unit.  It needs a finite stock.

The deceptive variant ``displayed_stock = N`` shows "only N left" throughout
the product's slot whatever the real stock (which may be unlimited).  With
``credibility = c < 1`` viewers learn: each ``recheck_s`` seconds a viewer sees
the claim unchanged ("still only 3 left") it proves false once more, and their
response is scaled by ``c``.

With ``competition_per_unit = k`` the message depends on how many are
watching: "10 left" means little to 10 viewers and much to 10,000.  The
signal is multiplied by ``N(t) / (N(t) + k * S)``, ``N(t)`` the viewers
present on the product's stream (the viewer included) and ``S`` the stock
shown (the real stock, or ``displayed_stock``): half strength at ``k``
viewers per unit left.  The audience depends on arrivals and departures only,
known before purchases are decided, and the multiplier is below 1, so the
thinning envelope of the cue without it still bounds the hazard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field, model_serializer

from fomolab.tactics._base import Covariate, LiveSignal, Tactic

if TYPE_CHECKING:
    from fomolab.tactics._context import EpisodeContext, ProductContext

__all__ = ["ScarcityCue", "scarcity_signal"]


def scarcity_signal(stock: int, threshold: int) -> float:
    """Signal of an "only ``stock`` left" cue with the given threshold.

    >>> scarcity_signal(10, 5), scarcity_signal(5, 5), scarcity_signal(1, 5)
    (0.0, 0.2, 1.0)
    """
    if stock <= 0 or stock > threshold:
        return 0.0
    return (threshold - stock + 1) / threshold


class _Badge(LiveSignal):
    """The honest cue in its product's walk: shown while ``0 < stock <= threshold``."""

    def __init__(self, cue: ScarcityCue, ctx: ProductContext) -> None:
        self.cue, self.ctx = cue, ctx
        self.gain, self.threshold = cue.gain, cue.threshold
        self.k = cue.competition_per_unit

    def start(self, stock):
        if stock is not None and 0 < stock <= self.threshold:
            self.ctx.event(self.ctx.slot[0], "tactic_start", self.cue.kind, stock)

    def level(self, t, stock):
        s = scarcity_signal(stock, self.threshold)
        if self.k is None or s == 0.0:
            return s
        n = float(self.ctx.audience(t))
        return s * n / (n + self.k * stock)

    def bought(self, t, stock):
        if stock is None:
            return
        if stock == self.threshold:
            self.ctx.event(t, "tactic_start", self.cue.kind, stock)
        if stock == 0:
            self.ctx.event(t, "tactic_end", self.cue.kind, 0)

    def finish(self, stock):
        if stock is not None and 0 < stock <= self.threshold:
            self.ctx.event(self.ctx.slot[1], "tactic_end", self.cue.kind, stock)


class ScarcityCue(Tactic):
    """An "only N left" cue on one product.

    Attributes
    ----------
    threshold : int
        The cue shows once remaining stock is at most this many units.
    """

    kind: ClassVar[str] = "scarcity_cue"
    order: ClassVar[int] = 30
    summary: ClassVar[str] = '"only N left" below a stock threshold'
    time_fields: ClassVar[tuple[str, ...]] = ("slot_s",)
    live_rank: ClassVar[int] = 20
    record_rank: ClassVar[int] = 40
    covariates: ClassVar[tuple[Covariate, ...]] = (Covariate("scarcity_shown", "scarcity", "int64"),)
    always_listed: ClassVar[bool] = True

    threshold: int = Field(ge=1)
    displayed_stock: int | None = Field(default=None, ge=1)
    credibility: float = Field(default=1.0, gt=0, le=1)
    recheck_s: float = Field(default=60.0, gt=0)
    competition_per_unit: float | None = Field(default=None, gt=0)
    #: The product's slot, filled in by the lineup for the deceptive variant.
    slot_s: tuple[float, float] | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """``competition_per_unit`` is left out when not given: run identities and the stored tactic
        configurations of existing specs stay as they were."""
        data = handler(self)
        if isinstance(data, dict) and data.get("competition_per_unit", 0) is None:
            del data["competition_per_unit"]
        return data

    @classmethod
    def fill_defaults(cls, raw: dict[str, Any], siblings: dict[str, Any], slot) -> dict[str, Any]:
        """The deceptive variant shows throughout the product's slot."""
        if raw.get("displayed_stock") is not None and slot is not None:
            return {**raw, "slot_s": slot}
        return raw

    @classmethod
    def default_sources(cls, raw: dict[str, Any], siblings: dict[str, Any], path: str,
                        slot_path: str) -> dict[str, str]:
        return {f"{path}.slot_s": slot_path} if raw.get("displayed_stock") is not None else {}

    def product_problem(self, product: Any, path: str) -> tuple[Any, str] | None:
        if product.stock is None and not self.fake:
            return ("stock unlimited", f"a scarcity cue needs a finite stock: set {path}.stock "
                    "(or displayed_stock for the deceptive variant)")
        return None

    @property
    def fake(self) -> bool:
        """True for the deceptive variant (a fixed displayed count)."""
        return self.displayed_stock is not None

    def window(self) -> tuple[float, float] | None:
        return self.slot_s if self.fake else None

    def signal(self, t: np.ndarray) -> np.ndarray:
        if self.displayed_stock is None or self.slot_s is None:
            raise TypeError("an honest cue's signal depends on the stock")
        a, b = self.slot_s
        return ((t >= a) & (t < b)) * scarcity_signal(self.displayed_stock, self.threshold)

    def factor(self, t, z, arrival_s, departure_s):
        return self.learned(1.0 + self.gain * z * self.signal(t), t, arrival_s)

    def competition(self, ctx: ProductContext, t: np.ndarray, shown: float) -> np.ndarray:
        """``N(t) / (N(t) + competition_per_unit * shown)``: 1 when the option is off."""
        if self.competition_per_unit is None:
            return np.ones(np.shape(t))
        n = ctx.audience(t).astype(float)
        return n / (n + self.competition_per_unit * shown)

    def hazard_factor(self, ctx: ProductContext, t: np.ndarray, z: np.ndarray, arrival_s: np.ndarray,
                      departure_s: np.ndarray) -> np.ndarray:
        """The deceptive cue's factor, its signal scaled by the audience when ``competition_per_unit`` is set."""
        if self.competition_per_unit is None or self.displayed_stock is None:
            return self.factor(t, z, arrival_s, departure_s)
        s = self.signal(t) * self.competition(ctx, t, float(self.displayed_stock))
        return self.learned(1.0 + self.gain * z * s, t, arrival_s)

    def value_signal(self, ctx: ProductContext, t: np.ndarray, arrival_s: np.ndarray) -> np.ndarray:
        """The signal after learning, scaled by the audience as the hazard is."""
        s = super().value_signal(ctx, t, arrival_s)
        return s if self.displayed_stock is None else s * self.competition(ctx, t, float(self.displayed_stock))

    def analytic_problem(self) -> str | None:
        if self.competition_per_unit is not None:
            return "scarcity_cue with competition_per_unit depends on how many others are watching"
        return super().analytic_problem()

    def audience_problem(self) -> str | None:
        if self.competition_per_unit is not None:
            return "competition_per_unit reads the audience from departures known before the purchases are decided"
        return None

    def likelihood_problem(self) -> str | None:
        if self.competition_per_unit is not None:
            return "depends on how many others are watching (the audience size is not in the visit data)"
        return super().likelihood_problem()

    def time_degree(self) -> int | None:
        return None if self.competition_per_unit is not None else super().time_degree()

    def exposures(self, t: np.ndarray, arrival_s: np.ndarray) -> np.ndarray:
        """Times the unchanged claim was seen again: whole ``recheck_s`` periods watched."""
        if self.slot_s is None or not self.fake:
            return np.zeros(np.shape(t))
        start = np.maximum(arrival_s, self.slot_s[0])
        return np.floor(np.maximum(t - start, 0.0) / self.recheck_s)

    def is_interactive(self) -> bool:
        return not self.fake

    def live(self, ctx: ProductContext) -> LiveSignal | None:
        return _Badge(self, ctx) if not self.fake else None

    def schedule(self, ctx: ProductContext) -> None:
        w = self.window()
        if w is not None and self.displayed_stock is not None:  # "only N left", whatever the real stock
            ctx.event(w[0], "tactic_start", self.kind, self.displayed_stock)
            ctx.event(w[1], "tactic_end", self.kind, self.displayed_stock)

    def episode_covariates(self, ctx: EpisodeContext) -> dict[str, np.ndarray]:
        """``scarcity_shown``: 1 while the cue was shown (an indicator, from the stored windows)."""
        return {"scarcity_shown": ctx.in_windows(self.kind)}

#: This module's tactic, found by :func:`fomolab.tactics.registry`.
PLUGIN = ScarcityCue
