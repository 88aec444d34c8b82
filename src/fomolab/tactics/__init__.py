"""The FOMO tactics, one plugin module each.

===================  ==================================================
kind                 what the viewer sees
===================  ==================================================
``lightning_sale``   a discount for a short window (optional quota)
``countdown_timer``  a clock running down to a deadline
``scarcity_cue``     "only N left" below a stock threshold
``social_proof``     "X just bought" notifications
``exclusive_code``   a code for viewers present at its announcement
===================  ==================================================

Every public module of this package that names a :class:`Tactic` subclass in
``PLUGIN`` is a tactic: :func:`registry` finds them (``pkgutil``), so a new
tactic is one new module; ``docs/MODEL.md`` lists them all.  The registry's
order is each plugin's ``order``.
"""

from __future__ import annotations

import importlib
import pkgutil

from fomolab.tactics._base import Covariate, Gate, LiveSignal, Tactic
from fomolab.tactics._context import EpisodeContext, ProductContext
from fomolab.tactics.countdown_timer import CountdownTimer
from fomolab.tactics.exclusive_code import ExclusiveCode
from fomolab.tactics.lightning_sale import LightningSale
from fomolab.tactics.scarcity_cue import ScarcityCue, scarcity_signal
from fomolab.tactics.social_proof import SocialProof

__all__ = [
    "Tactic",
    "Covariate",
    "Gate",
    "LiveSignal",
    "ProductContext",
    "EpisodeContext",
    "LightningSale",
    "CountdownTimer",
    "ScarcityCue",
    "SocialProof",
    "ExclusiveCode",
    "scarcity_signal",
    "registry",
    "KINDS",
]


def registry() -> dict[str, type[Tactic]]:
    """Every tactic plugin, ``kind -> class``, in registry order.

    A plugin is a public module of :mod:`fomolab.tactics` with a module-level
    ``PLUGIN = TheClass``; two plugins may not share a kind or an order.
    """
    found: list[type[Tactic]] = []
    for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        cls = getattr(importlib.import_module(f"{__name__}.{mod.name}"), "PLUGIN", None)
        if isinstance(cls, type) and issubclass(cls, Tactic):
            found.append(cls)
    found.sort(key=lambda c: c.order)
    out: dict[str, type[Tactic]] = {}
    for cls in found:
        if cls.kind in out:
            raise TypeError(f"two tactic plugins have kind {cls.kind!r}: {out[cls.kind].__module__} "
                            f"and {cls.__module__}")
        out[cls.kind] = cls
    orders = [c.order for c in found]
    if len(set(orders)) != len(orders):
        raise TypeError(f"tactic plugins must have distinct orders: { {c.kind: c.order for c in found} }")
    return out


#: Tactic kinds in registry order (the order the engine applies them).
KINDS: dict[str, type[Tactic]] = registry()
