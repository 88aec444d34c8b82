"""What every tactic shares: the plugin protocol and its defaults.

A tactic is attached to one product of the lineup.  Its *signal* ``s(t)`` enters
the purchase hazard as the factor ``1 + gain * z * s(t)``, where ``z`` is the
viewer's impulsiveness (see ``docs/MODEL.md``).  Tactics with a fixed window know
their signal in advance (*static*); the others (scarcity cue, social proof)
depend on what other viewers do and are evaluated by the engine in event order.

A tactic is a plugin: one module of :mod:`fomolab.tactics` defines one subclass
of :class:`Tactic`, and everything the rest of the package needs to know about
it is asked of that class.  The engine, the lineup, the marketplace, the
validation, the theory and the statistics never branch on a tactic's kind.  The
protocol, in the order a run meets it:

=========================  ===========================================================
what                       hooks (defaults in :class:`Tactic`)
=========================  ===========================================================
fields                     the pydantic fields; ``fill_defaults`` (keys that default
                           to other keys), ``product_problem`` (rules binding the
                           tactic to its product)
windows and time fields    ``window``, ``window_key`` (the spec key of its end, for
                           messages), ``time_fields`` (what a marketplace staggers,
                           ``shifted``), ``offer`` (makes its stream an offer)
signal and bound           ``signal``, ``breakpoints``, ``signal_bound``,
                           ``envelope_gain`` (the thinning envelope); ``factor`` or
                           ``hazard_factor`` (static), ``live`` (interactive);
                           ``value_signal`` (what a value lift scales)
price effect               ``price_keep`` (share of the list price paid),
                           ``discount_bound`` (for the envelope); ``gated``: the
                           product's state may switch the tactic off (``gate``)
events                     ``schedule`` (windows known in advance), ``event_kinds``
                           (kinds of its own), ``after_run`` (draws and the like)
episode covariates         ``covariates``, ``episode_cuts``, ``episode_covariates``;
                           ``has_deadline``, ``deadline_shares`` (its windows end in a
                           deadline; their bunching is in the deadline table)
analytic hazard            ``analytic``, ``analytic_problem``, ``holder_time``
likelihood (fomolab fit)   ``kinks`` and ``time_degree``: where the factor changes form,
                           and its degree in time in between (exact quadrature);
                           ``likelihood_problem``
=========================  ===========================================================

:func:`fomolab.tactics.registry` finds the plugins (every public module of the
package that names one in ``PLUGIN``), in the order of their ``order``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import Field

from fomolab._frozen import FrozenModel
from fomolab._libm import power

if TYPE_CHECKING:
    from fomolab.tactics._context import EpisodeContext, ProductContext

__all__ = ["Tactic", "FrozenModel", "Covariate", "Gate", "LiveSignal"]


@dataclass(frozen=True)
class Covariate:
    """One covariate a tactic contributes to :func:`fomolab.stats.episodes`.

    Attributes
    ----------
    name : str
        Column name in the episodes table (e.g. ``sale_active``).
    short : str
        Stem of its interaction column, ``{short}_x_impulsiveness``.
    dtype : {"int64", "float64"}
        Column type: an indicator (int64) or a level in [0, 1] (float64).
    """

    name: str
    short: str
    dtype: str = "float64"


class Gate:
    """State of a *gated* tactic inside its product's walk (e.g. a sale's quota).

    ``open`` is False once the product's state has switched the tactic off;
    ``sold(t)`` is called for each purchase made while it was on; ``close()``
    once the walk is over.  See :class:`~fomolab.tactics.LightningSale`.
    """

    open: bool = True

    def sold(self, t: float) -> None:  # pragma: no cover - interface
        """A unit sold at ``t`` while the tactic was on."""

    def close(self) -> None:  # pragma: no cover - interface
        """The walk is over: record what is still open."""


class LiveSignal:
    """Signal of an *interactive* tactic, evaluated in event order by its product's walk.

    The walk multiplies a candidate's hazard by ``1 + gain * z * level(t, stock)``
    (``level`` in [0, 1]), and tells the signal of each purchase with
    ``bought(t, stock)`` (stock after the purchase; None if unlimited).
    """

    gain: float = 0.0

    def start(self, stock: int | None) -> None:
        """The slot starts with ``stock`` units."""

    def level(self, t: float, stock: int | None) -> float:  # pragma: no cover - interface
        """The signal at ``t`` with ``stock`` units left."""
        raise NotImplementedError

    def bought(self, t: float, stock: int | None) -> None:
        """A purchase at ``t`` left ``stock`` units."""

    def finish(self, stock: int | None) -> None:
        """The walk is over with ``stock`` units left."""


class Tactic(FrozenModel):
    """Base class of the tactics: the plugin protocol, with defaults for a windowed tactic.

    Attributes
    ----------
    gain : float
        Strength of the tactic: the hazard of a viewer with impulsiveness ``z``
        is multiplied by ``1 + gain * z * s(t)``.
    """

    #: The tactic's name in specs (``tactics.KIND``) and in the tables' ``tactic`` column.
    kind: ClassVar[str] = "tactic"
    #: Position in the registry: the engine multiplies static factors, the envelope
    #: lists gains and the tables list kinds in this order.
    order: ClassVar[int] = 1000
    #: One line for the parameter table of ``docs/MODEL.md`` and the tactics' listing.
    summary: ClassVar[str] = ""
    #: Fields that hold stream times (a float or a ``(start, end)`` pair): a marketplace staggers them.
    time_fields: ClassVar[tuple[str, ...]] = ()
    #: True when the tactic's window makes its stream an offer (marketplace choice and switching).
    offer: ClassVar[bool] = False
    #: True when the product's state may switch the tactic off (its factor and price
    #: effect then apply only while the :class:`Gate` is open).  At most one per product.
    gated: ClassVar[bool] = False
    #: Order of interactive tactics' factors in the walk (lower first).
    live_rank: ClassVar[int] = 1000
    #: Order in which tactics record their scheduled events (ties at equal times keep it).
    record_rank: ClassVar[int] = 1000
    #: Kinds of events of its own (appended to the events table's kinds).
    event_kinds: ClassVar[tuple[str, ...]] = ()
    #: True when its window ends at a declared time, a deadline (figures of purchases by time left).
    has_deadline: ClassVar[bool] = False
    #: True when :func:`fomolab.stats.deadline_shares` examines bunching before its windows' ends.
    deadline_shares: ClassVar[bool] = False
    #: What its window holds viewers as (:data:`fomolab.retention.CAUSES`: ``"deal"``,
    #: ``"countdown"``, ``"draw"``), or None: it does not hold them.
    retention_cause: ClassVar[str | None] = None
    #: Covariates it contributes to the episodes table.
    covariates: ClassVar[tuple[Covariate, ...]] = ()
    #: True for the tactics of fomolab 0.1, which every run's identity lists even when unused
    #: (a key of the lineup's ``tactics``, a column of the envelope).  A new tactic leaves it
    #: False: it enters a run's identity only where a spec uses it, so adding a tactic
    #: changes no existing run id.
    always_listed: ClassVar[bool] = False

    gain: float = Field(default=1.0, ge=0, description="hazard gain per unit of z * signal")

    # ----- fields ---------------------------------------------------------------------------

    @classmethod
    def fill_defaults(cls, raw: dict[str, Any], siblings: dict[str, Any],
                      slot: list[float] | tuple[float, float] | None) -> dict[str, Any]:
        """The raw table of this tactic with keys that default to other keys filled in.

        ``siblings`` holds the raw tables of the product's other tactics; ``slot``
        the product's slot (None if unknown).  Returns a new dict.
        """
        return raw

    @classmethod
    def default_sources(cls, raw: dict[str, Any], siblings: dict[str, Any], path: str,
                        slot_path: str) -> dict[str, str]:
        """The keys :meth:`fill_defaults` fills from others: ``{filled key path: source key path}``.

        ``path`` is the tactic's key (``lineup.P.tactics.KIND``), ``slot_path``
        the key its product's slot comes from; a broken source is then named
        once, not again at each key filled from it.
        """
        return {}

    def unresolved(self) -> str | None:
        """Why the tactic is incomplete once defaults are filled (None: complete)."""
        return None

    @classmethod
    def idle_problem(cls, raw: dict[str, Any], siblings: dict[str, Any], on: set[str], path: str) -> str | None:
        """Why the tactic, switched on in an arm, cannot act as the spec sets it (None: it can).

        ``raw`` is its table as written (keys an arm or a sweep sets included),
        ``siblings`` its product's configured tactic tables, ``on`` the kinds
        switched on with it in the arm, ``path`` its key.  A warning of
        ``fomolab validate``, not an error: the spec runs as written.
        """
        return None

    def product_problem(self, product: Any, path: str) -> tuple[Any, str] | None:
        """``(value, rule)`` when the tactic cannot run on ``product`` (None: it can);
        ``path`` is the product's key (``lineup.NAME``), for the rule's fix."""
        return None

    # ----- windows and time fields ----------------------------------------------------------

    def is_interactive(self) -> bool:
        """True when the signal depends on other viewers (stock, purchases)."""
        return False

    def window(self) -> tuple[float, float] | None:
        """The scheduled window ``[start, end)`` in stream seconds, or None."""
        return None

    def window_key(self) -> str:
        """The spec key that holds the end of :meth:`window` (named in error messages)."""
        return self.time_fields[-1] if self.time_fields else "window"

    def shifted(self, dt: float) -> Tactic:
        """The tactic with every time field moved by ``dt`` seconds."""
        upd: dict[str, Any] = {}
        for f in self.time_fields:
            x = getattr(self, f)
            if x is None:
                continue
            upd[f] = tuple(v + dt for v in x) if isinstance(x, tuple) else x + dt
        return self.model_copy(update=upd)

    @property
    def boost(self) -> float:
        """Multiplier of the arrival rate while the window runs (1 = none)."""
        return float(getattr(self, "arrival_boost", 1.0))

    # ----- signal and bound -----------------------------------------------------------------

    def breakpoints(self) -> list[float]:
        """Times where the signal's upper bound changes (for the thinning envelope)."""
        w = self.window()
        return [] if w is None else [w[0], w[1]]

    def kinks(self, end_s: float) -> list[float]:
        """Times up to ``end_s`` where the factor jumps or changes form; between them
        it is a polynomial in time of degree :meth:`time_degree` (for quadrature)."""
        w = self.window()
        return [] if w is None else [w[0], w[1]]

    def time_degree(self) -> int | None:
        """Degree in time of the factor between :meth:`kinks` (None: not a polynomial)."""
        return 0

    def signal_bound(self, a: float, b: float) -> float:
        """Largest signal on ``[a, b)``; 1 for tactics without a window."""
        w = self.window()
        if w is None:
            return 1.0
        return 1.0 if (a < w[1] and b > w[0]) else 0.0

    def envelope_gain(self, a: float, b: float) -> float:
        """The tactic's gain in the envelope on ``[a, b)``: its factor there is at most
        ``1 + envelope_gain * z`` (the engine checks this in test mode)."""
        return self.gain * self.signal_bound(a, b)

    def signal(self, t: np.ndarray) -> np.ndarray:
        """The signal at times ``t`` (static tactics only)."""
        w = self.window()
        if w is None:
            raise TypeError(f"{self.kind} has no static signal")
        return ((t >= w[0]) & (t < w[1])).astype(float)

    def factor(self, t: np.ndarray, z: np.ndarray, arrival_s: np.ndarray, departure_s: np.ndarray) -> np.ndarray:
        """Multiplier of the hazard at ``t`` for viewers with impulsiveness ``z``
        who arrived at ``arrival_s`` and leave at ``departure_s`` (static tactics)."""
        return 1.0 + self.gain * z * self.signal(t)

    def hazard_factor(self, ctx: ProductContext, t: np.ndarray, z: np.ndarray, arrival_s: np.ndarray,
                      departure_s: np.ndarray) -> np.ndarray:
        """The static factor in a run (``ctx`` gives the run's randomness); default :meth:`factor`."""
        return self.factor(t, z, arrival_s, departure_s)

    def live(self, ctx: ProductContext) -> LiveSignal | None:
        """The signal an interactive tactic keeps in its product's walk (None if static)."""
        return None

    def value_signal(self, ctx: ProductContext, t: np.ndarray, arrival_s: np.ndarray) -> np.ndarray:
        """The static signal a viewer present since ``arrival_s`` sees at ``t``, after learning: what
        a value lift (:mod:`fomolab.value`) scales.  Default: :meth:`signal`, times
        ``credibility ** exposures`` for a deceptive variant whose viewers learn."""
        s = self.signal(t)
        c = getattr(self, "credibility", 1.0)
        return s if c == 1.0 else s * power(c, self.exposures(t, arrival_s))

    def exposures(self, t: np.ndarray, arrival_s: np.ndarray) -> np.ndarray:
        """How often a viewer present since ``arrival_s`` has seen this claim prove
        false by ``t`` (deceptive variants; 0 for honest tactics)."""
        return np.zeros(np.shape(t))

    def learned(self, f: np.ndarray, t: np.ndarray, arrival_s: np.ndarray) -> np.ndarray:
        """A factor ``f`` after learning: ``1 + credibility ** exposures * (f - 1)``."""
        c = getattr(self, "credibility", 1.0)
        if c == 1.0:
            return f
        return 1.0 + power(c, self.exposures(t, arrival_s)) * (f - 1.0)

    # ----- price effect ---------------------------------------------------------------------

    def price_keep(self, t: np.ndarray, arrival_s: np.ndarray, departure_s: np.ndarray) -> np.ndarray | None:
        """Share of the list price paid at ``t`` (``1 - discount`` while it applies);
        None for a tactic that does not change the price."""
        return None

    def discount_bound(self, a: float, b: float) -> float:
        """Largest discount on ``[a, b)`` (for the envelope's price term)."""
        d = getattr(self, "discount", None)
        return d if d is not None and self.signal_bound(a, b) > 0 else 0.0

    def gate(self, ctx: ProductContext) -> Gate | None:
        """The state of a gated tactic in its product's walk (None: never switched off)."""
        return None

    # ----- events ---------------------------------------------------------------------------

    def schedule(self, ctx: ProductContext) -> None:
        """Record the events known before the run (windows that start and end on time)."""

    def after_run(self, ctx: ProductContext) -> None:
        """Record what happens once the run's purchases are decided (draws and the like)."""

    # ----- episode covariates ---------------------------------------------------------------

    def episode_cuts(self, slot: tuple[float, float], options: dict[str, Any]) -> list[np.ndarray]:
        """Times where the episodes of a visit are cut, beyond the windows' edges."""
        return []

    def episode_covariates(self, ctx: EpisodeContext) -> dict[str, np.ndarray]:
        """Each of :attr:`covariates` at the episodes' midpoints, for viewers of a product on show."""
        return {}

    # ----- analytic hazard ------------------------------------------------------------------

    def analytic_problem(self) -> str | None:
        """Why :mod:`fomolab.theory` cannot integrate the tactic's hazard (None: it can)."""
        if self.is_interactive():
            return "viewers interact (stock, quota or social proof)"
        if getattr(self, "credibility", 1.0) != 1.0:
            return f"{self.kind} with credibility < 1 (learning) depends on each viewer's history"
        return None

    def likelihood_problem(self) -> str | None:
        """Why the visit-level likelihood of ``fomolab fit`` cannot hold with this tactic (None: it can).

        The reason completes a sentence that starts with the tactic's path,
        ``lineup.PRODUCT.tactics.KIND``.
        """
        if self.is_interactive():
            return "depends on other viewers' purchases"
        return None

    def audience_problem(self) -> str | None:
        """Why the tactic cannot run when departures depend on purchases (retention from a viewer's own
        purchase), None: it can.  A tactic that reads the audience (who is present at ``t``) before the
        purchases are decided says so here."""
        return None

    def holder_time(self) -> float | None:
        """The time a viewer must be present at to be affected (None: everyone present is)."""
        return None

    def analytic(self, t: np.ndarray, z: float, holder: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """The hazard factor and the share of the price paid at ``t`` for impulsiveness ``z``;
        ``holder``: the viewer was present at :meth:`holder_time`."""
        s = self.signal(t)
        return 1 + self.gain * z * s, self._analytic_keep(s)

    def _analytic_keep(self, s: np.ndarray) -> np.ndarray | None:
        d = getattr(self, "discount", None)
        return None if d is None else 1 - d * s
