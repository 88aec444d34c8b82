"""fomolab: a laboratory for FOMO tactics in live-shopping streams."""

from __future__ import annotations

__version__ = "0.1.0"
