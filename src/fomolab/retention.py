"""Retention: tactics that hold viewers (or drive them away) while they run.

The picture: "stay tuned, the draw is at 20:30!", "three minutes left on
this deal": while a deal is announced, a countdown runs or a giveaway draw is
pending, viewers leave less readily.  fomolab models this as a multiplier of
the leaving hazard for each *cause*, while a tactic of that cause runs on the
stream (any product's):

``deal``
    a discount is on offer (a lightning sale, an exclusive code: tactics whose
    ``retention_cause`` is ``"deal"``);
``countdown``
    a countdown timer is in progress;
``draw``
    a giveaway's draw is pending.

With multipliers ``r_c`` the viewer's clock of attention runs at rate
``m(t) = prod_c r_c ** [a cause-c tactic runs at t]``: a viewer who arrives
at ``a`` with dwell ``D`` (drawn from their segment, as without retention)
leaves at ``L`` with ``M(L) - M(a) = D``, ``M(t) = integral_0^t m``.  For an
exponential dwell this is exactly a leaving hazard multiplied by ``m(t)``
(proportional hazards); for a log-normal or gamma dwell it is an accelerated
failure time (the viewer's age runs slower while they are held).  The same
``D`` is used in every arm, so arms compare the same viewers (common random
numbers): a viewer stays longer in an arm with a sale only because of it.

Which viewers stayed longer because of what: each cause's *hold* is the
departure minus the departure with that cause's multiplier set to 1
(columns ``held_by_CAUSE_s`` of ``shoppers``), and ``dwell_s`` is the dwell
drawn at arrival (the departure without retention is
``min(arrival_s + dwell_s, duration_s)``).

The windows are the tactics' scheduled windows (a sale's quota that sells out
early does not end its hold).

A viewer's own purchase (``purchase = r``, off at 1): after the viewer's first
purchase at ``p`` (of any product) the attention clock runs at ``r m(t)``, so
the viewer leaves at ``L'`` with ``M(L') = M(p) + (M(a) + D - M(p)) / r``,
cut at the stream's end.  The departure then depends on the purchases, which
depend on who is still there: :class:`OwnPurchase` keeps every viewer's
current departure, and the engine decides every product's candidates in one
time order on the SimPy clock, each counting only before its viewer's current
departure (``held_by_purchase_s``: the final departure minus the departure
without the purchase effect).
"""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_serializer

from fomolab._frozen import FrozenModel

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Retention", "CAUSES", "OwnPurchase", "clock", "departures", "retain"]

#: The causes of retention, as tactics declare them (``Tactic.retention_cause``).
CAUSES = ("deal", "countdown", "draw")


class Retention(FrozenModel):
    """Multipliers of the leaving hazard while tactics of each cause run (1: no effect; < 1 holds viewers).

    Attributes
    ----------
    deal : float
        While a deal is on offer (lightning sale, exclusive code).
    countdown : float
        While a countdown timer is in progress.
    draw : float
        While a giveaway draw is pending.
    purchase : float
        From the viewer's own first purchase on (of any product), for the
        rest of their stay.
    """

    deal: float = Field(default=1.0, gt=0, le=100)
    countdown: float = Field(default=1.0, gt=0, le=100)
    draw: float = Field(default=1.0, gt=0, le=100)
    purchase: float = Field(default=1.0, gt=0, le=100)

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """``purchase`` is left out when it is 1 (off), so that a run's identity is what it was
        before it existed."""
        data = handler(self)
        if isinstance(data, dict) and data.get("purchase", 0) == 1.0:
            del data["purchase"]
        return data

    def multipliers(self) -> dict[str, float]:
        """The tactics' causes and their multipliers (the own-purchase one is not a cause)."""
        return {c: float(getattr(self, c)) for c in CAUSES}

    @property
    def own_purchase(self) -> bool:
        """True when a viewer's own purchase changes their leaving hazard (``purchase != 1``)."""
        return self.purchase != 1.0


def _windows(lineup: dict[str, Any]) -> dict[str, list[tuple[float, float]]]:
    """The scheduled windows of each cause's tactics switched on in the lineup."""
    out: dict[str, list[tuple[float, float]]] = {c: [] for c in CAUSES}
    for prod in lineup.values():
        for _, tactic in prod.tactics.items():
            cause = getattr(tactic, "retention_cause", None)
            w = tactic.window()
            if cause in out and w is not None and w[1] > w[0]:
                out[cause].append((float(w[0]), float(w[1])))
    return out


def clock(windows: dict[str, list[tuple[float, float]]], mult: dict[str, float],
          skip: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints ``x`` and values ``M(x)`` of the attention clock ``M(t) = integral_0^t m``.

    ``m`` is piecewise constant between the windows' ends; ``M`` is linear
    between breakpoints, with slope 1 after the last.  ``skip`` leaves one
    cause out (its multiplier taken as 1).
    """
    import numpy as np

    cuts = sorted({0.0, *(x for c, ws in windows.items() for w in ws for x in w)})
    x = np.array(cuts)
    mids = (x[:-1] + x[1:]) / 2
    m = np.ones(len(mids))
    for cause, ws in windows.items():
        if cause == skip or mult[cause] == 1.0 or not ws:
            continue
        on = np.zeros(len(mids), bool)
        for a, b in ws:
            on |= (mids >= a) & (mids < b)
        m = np.where(on, m * mult[cause], m)
    M = np.concatenate([[0.0], np.cumsum(m * np.diff(x))])
    return x, M


def _invert(x: np.ndarray, M: np.ndarray, arrival: np.ndarray, dwell: np.ndarray) -> np.ndarray:
    """``L`` with ``M(L) = M(arrival) + dwell`` (``M`` extended with slope 1 past its last breakpoint)."""
    import numpy as np

    def fwd(t: np.ndarray) -> np.ndarray:
        return np.where(t <= x[-1], np.interp(t, x, M), M[-1] + (t - x[-1]))

    target = fwd(arrival) + dwell
    inside = target <= M[-1]
    out = np.where(inside, np.interp(target, M, x), x[-1] + (target - M[-1]))
    return np.maximum(out, arrival)  # rounding at a breakpoint cannot put a departure before its arrival


def departures(retention: Retention, lineup: dict[str, Any], arrival: np.ndarray, dwell: np.ndarray,
               duration_s: float) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Departures under retention, and each cause's hold ``held_by_CAUSE_s`` (both cut at the stream's end).

    Parameters
    ----------
    retention : Retention
        The multipliers.
    lineup : dict
        The arm's products (only the tactics switched on hold viewers).
    arrival, dwell : numpy.ndarray
        Arrival times and dwell drawn at arrival.
    duration_s : float
        The stream's end.

    Returns
    -------
    departure : numpy.ndarray
    held : dict
        ``{"held_by_deal_s": ..., ...}``: the departure minus the departure
        with that cause's multiplier set to 1.
    """
    import numpy as np

    wins = _windows(lineup)
    mult = retention.multipliers()
    x, M = clock(wins, mult)
    dep = np.minimum(_invert(x, M, arrival, dwell), duration_s)
    held = {}
    for cause in CAUSES:
        if mult[cause] == 1.0 or not wins[cause]:
            held[f"held_by_{cause}_s"] = np.zeros(len(arrival))
            continue
        xs, Ms = clock(wins, mult, skip=cause)
        held[f"held_by_{cause}_s"] = dep - np.minimum(_invert(xs, Ms, arrival, dwell), duration_s)
    return dep, held


def retain(retention: Retention, lineup: dict[str, Any], viewers: Any, dwell: np.ndarray, duration_s: float,
           recorder: Any) -> Any:
    """The run's viewers with departures under retention; ``dwell_s`` and the holds go to ``recorder``
    (extra columns of ``shoppers``)."""
    from dataclasses import replace

    dep, held = departures(retention, lineup, viewers.arrival_s, dwell, duration_s)
    recorder.shopper_columns.update({"dwell_s": dwell, **held})
    return replace(viewers, departure_s=dep)


class OwnPurchase:
    """Every viewer's current departure under retention from their own purchase.

    Before a viewer's first purchase their departure is ``L`` (retention by
    the tactics only); at the first purchase at ``p`` it becomes ``L'`` with
    ``M(L') = M(p) + (M(a) + D - M(p)) / r``, cut at the stream's end.

    Parameters
    ----------
    retention : Retention
        The multipliers (``purchase`` is ``r``).
    lineup : dict
        The arm's products (their tactics' windows make the clock ``M``).
    arrival, dwell : numpy.ndarray
        Arrival times and dwell drawn at arrival, one per viewer.
    duration_s : float
        The stream's end.
    departure : numpy.ndarray
        The departures without the purchase effect (cut at the stream's end);
        updated **in place** at each viewer's first purchase, so that whoever
        holds the array (the visits, the tactics' context) sees the current
        departures.

    Attributes
    ----------
    departure : numpy.ndarray
        The current departures.
    before : numpy.ndarray
        The departures without the purchase effect (a copy).
    horizon : numpy.ndarray
        The latest each viewer can leave: with ``r < 1`` the departure with
        dwell ``D / r`` (a purchase at arrival), otherwise ``before``.
        Candidate purchases are drawn up to it.
    """

    def __init__(self, retention: Retention, lineup: dict[str, Any], arrival: np.ndarray, dwell: np.ndarray,
                 duration_s: float, departure: np.ndarray) -> None:
        import numpy as np

        self.r = float(retention.purchase)
        self.duration_s = float(duration_s)
        x, M = clock(_windows(lineup), retention.multipliers())
        self._clock = (x, M)
        self._x, self._M = x.tolist(), M.tolist()
        self._slope = (np.diff(M) / np.diff(x)).tolist()
        self.departure = departure
        self.before = departure.copy()
        at = np.where(arrival <= x[-1], np.interp(arrival, x, M), M[-1] + (arrival - x[-1]))
        self.target = at + dwell  # M(a) + D: the attention spent at the departure without a purchase
        self.horizon = (np.minimum(_invert(x, M, arrival, dwell / self.r), duration_s) if self.r < 1
                        else self.before.copy())
        self.bought: set[int] = set()
        self.n0 = len(departure)
        self.later: list[float] = []  # current departures of the viewers that purchases brought (index n0 + k)
        self._later_target: list[float] = []
        self._later_before: list[np.ndarray] = []
        self._later_horizon: list[np.ndarray] = []

    def extend(self, arrival: np.ndarray, dwell: np.ndarray, departure: np.ndarray) -> np.ndarray:
        """Admit viewers who arrive during the run (indices from ``n0 + len(later)`` on), with their
        departures without the purchase effect; returns their horizons (the latest they can leave)."""
        import numpy as np

        x, M = self._clock
        at = np.where(arrival <= x[-1], np.interp(arrival, x, M), M[-1] + (arrival - x[-1]))
        horizon = (np.minimum(_invert(x, M, arrival, dwell / self.r), self.duration_s) if self.r < 1
                   else departure.copy())
        self.later.extend(departure.tolist())
        self._later_target.extend((at + dwell).tolist())
        self._later_before.append(departure.copy())
        self._later_horizon.append(horizon)
        return horizon

    def leaves(self, viewer: int) -> float:
        """Viewer ``viewer``'s current departure."""
        return float(self.departure[viewer]) if viewer < self.n0 else self.later[viewer - self.n0]

    def _forward(self, t: float) -> float:
        x, M = self._x, self._M
        if t >= x[-1]:
            return M[-1] + (t - x[-1])
        k = bisect.bisect_right(x, t) - 1
        return M[k] + self._slope[k] * (t - x[k])

    def _back(self, y: float) -> float:
        x, M = self._x, self._M
        if y >= M[-1]:
            return x[-1] + (y - M[-1])
        k = bisect.bisect_right(M, y) - 1
        return x[k] + (y - M[k]) / self._slope[k]

    def purchase(self, viewer: int, t: float) -> None:
        """Viewer ``viewer`` buys at ``t`` (still present): at their first purchase, their departure moves."""
        if viewer in self.bought:
            return
        self.bought.add(viewer)
        if self.r == 1.0:
            return
        mp = self._forward(t)
        target = float(self.target[viewer]) if viewer < self.n0 else self._later_target[viewer - self.n0]
        leave = min(max(self._back(mp + (target - mp) / self.r), t), self.duration_s)
        if viewer < self.n0:
            self.departure[viewer] = leave
        else:
            self.later[viewer - self.n0] = leave

    def final(self) -> np.ndarray:
        """Every viewer's final departure, those that purchases brought last."""
        import numpy as np

        return np.concatenate([self.departure, np.array(self.later, dtype=float)])

    def held(self) -> np.ndarray:
        """``held_by_purchase_s``: the final departure minus the departure without the purchase effect."""
        import numpy as np

        out: np.ndarray = self.final() - np.concatenate([self.before, *self._later_before])
        return out
