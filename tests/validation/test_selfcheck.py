"""The model's validation (docs/VALIDATION.md), at quick size: the same checks `fomolab selfcheck` runs.

Sizes are smaller than the full self-check's, targets are the same; seeds are
fixed.  Items 4 and 6 take a minute or so each and are marked slow (CI runs
them; `-m "not slow"` skips them).
"""

from __future__ import annotations

import pytest

from fomolab.validation import run_checks

SLOW = {4, 6}


@pytest.mark.parametrize("item", [pytest.param(k, marks=pytest.mark.slow) if k in SLOW else k
                                  for k in range(1, 11)])
def test_item(item):
    checks = run_checks("quick", [item])
    assert checks, "every item checks something"
    failed = [c for c in checks if not c.passed]
    assert not failed, "\n".join(map(repr, failed))
    for c in checks:
        assert c.figure and c.target
