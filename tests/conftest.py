"""Fixtures and test-session settings (helpers live in ``tests/helpers.py``).

Hypothesis runs derandomized in CI (``CI=true``): the same examples every run,
no deadline, and a reproduction blob printed with any failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from helpers import ROOT

# the engine checks every hazard against its envelope (worker processes inherit this)
os.environ.setdefault("FOMOLAB_CHECK_BOUNDS", "1")

settings.register_profile("ci", derandomize=True, print_blob=True, deadline=None)
settings.register_profile("dev", parent=settings.get_profile("default"), print_blob=True)
_IN_CI = os.environ.get("CI", "").lower() == "true"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _IN_CI else "dev"))


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
