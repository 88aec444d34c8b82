"""Common random numbers: arms of a replicate are paired viewer by viewer."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fomolab import run

from helpers import make_spec, run_tables

TRAITS = ["shopper_id", "segment", "impulsiveness", "interest", "price_sensitivity", "arrival_s", "departure_s"]


def test_control_viewers_appear_in_every_arm(tmp_path, root):
    res = run(root / "experiments/lightning_sale.toml", tmp_path / "ls", replicates=3)
    sh = res.shoppers
    assert sh.boosted.any(), "the sale's arrival boost should bring extra viewers"
    for rep in range(3):
        ctrl = sh[(sh.replicate == rep) & (sh.arm == "control")][TRAITS].reset_index(drop=True)
        assert len(ctrl) > 1000
        for arm in ("sale", "sale_timer", "sale_timer_scarcity"):
            other = sh[(sh.replicate == rep) & (sh.arm == arm) & ~sh.boosted][TRAITS].reset_index(drop=True)
            pd.testing.assert_frame_equal(ctrl.astype({"segment": str}), other.astype({"segment": str}))
    # and replicates differ from each other
    r0 = sh[(sh.replicate == 0) & (sh.arm == "control")].arrival_s.to_numpy()
    r1 = sh[(sh.replicate == 1) & (sh.arm == "control")].arrival_s.to_numpy()
    assert len(r0) != len(r1) or not np.array_equal(r0, r1)


def test_coupling_is_monotone():
    """A tactic that only raises hazards: whoever buys in control buys no later in treatment."""
    spec = make_spec(
        lineup={"item": {"tactics": {"lightning_sale": {"start_s": 300.0, "end_s": 600.0, "gain": 3.0},
                                     "countdown_timer": {"urgency": "hyperbolic", "gain": 2.0}}}},
        arms={"control": {}, "treated": {"tactics": ["item.*"]}},
    )
    for rep in range(3):
        t = run_tables(spec, rep)
        c = t["control"].shoppers.set_index("shopper_id").first_purchase_s
        x = t["treated"].shoppers.set_index("shopper_id").first_purchase_s
        bought = c.notna()
        assert bought.sum() > 50
        assert x[bought].notna().all()
        assert (x[bought] <= c[bought]).all()
        assert (x.notna() & ~bought).sum() > 0  # and the tactic induces some purchases
