"""The base of every spec model: frozen, validated once, unknown keys refused.

Streams, populations, products, tactics, markets and sweeps are pydantic
models built from a spec's tables; each derives from :class:`FrozenModel`, so
nothing downstream can mutate what validation accepted.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["FrozenModel"]


class FrozenModel(BaseModel):
    """A frozen pydantic model that refuses unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)
