"""The five FOMO tactics, one module each.

===================  ==================================================
kind                 what the viewer sees
===================  ==================================================
``lightning_sale``   a discount for a short window (optional quota)
``countdown_timer``  a clock running down to a deadline
``scarcity_cue``     "only N left" below a stock threshold
``social_proof``     "X just bought" notifications
``exclusive_code``   a code for viewers present at its announcement
===================  ==================================================
"""

from __future__ import annotations

from fomolab.tactics._base import Tactic
from fomolab.tactics.countdown_timer import CountdownTimer
from fomolab.tactics.exclusive_code import ExclusiveCode
from fomolab.tactics.lightning_sale import LightningSale
from fomolab.tactics.scarcity_cue import ScarcityCue, scarcity_signal
from fomolab.tactics.social_proof import SocialProof

__all__ = [
    "Tactic",
    "LightningSale",
    "CountdownTimer",
    "ScarcityCue",
    "SocialProof",
    "ExclusiveCode",
    "scarcity_signal",
    "KINDS",
]

#: Tactic kinds in the order the engine applies them.
KINDS: dict[str, type[Tactic]] = {
    cls.kind: cls for cls in (LightningSale, CountdownTimer, ScarcityCue, SocialProof, ExclusiveCode)
}
