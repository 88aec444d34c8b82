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
early does not end its hold).  A viewer's own purchase does not change their
leaving hazard in this version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import Field

from fomolab._frozen import FrozenModel

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Retention", "CAUSES", "clock", "departures", "retain"]

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
    """

    deal: float = Field(default=1.0, gt=0, le=100)
    countdown: float = Field(default=1.0, gt=0, le=100)
    draw: float = Field(default=1.0, gt=0, le=100)

    def multipliers(self) -> dict[str, float]:
        return {c: float(getattr(self, c)) for c in CAUSES}


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
