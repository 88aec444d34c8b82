"""The shopper population: segments of viewers and the traits they bring.

The picture: a crowd at a market is a mix of browsers, bargain hunters and
impulse buyers.  A population is a set of *segments*, each with a share of the
arriving viewers and distributions for the traits of its members:

- impulsiveness ``z`` in [0, 1] (Beta distribution, or a fixed value): how
  strongly the viewer responds to tactics;
- interest (gamma distribution with mean ``mean`` and coefficient of variation
  ``cv``; ``cv = 0`` means everyone has ``mean``): a multiplier of the purchase
  hazard;
- dwell time (exponential, log-normal or gamma with mean ``mean_s``): how long
  the viewer watches;
- price sensitivity ``beta >= 0``: the hazard scales with
  ``(price paid / list price) ** -beta``.

Profiles ship in ``fomolab/profiles/*.toml`` (a user's own go in ``agents/``); see ``docs/MODEL.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from fomolab._frozen import FrozenModel

if TYPE_CHECKING:  # numpy is imported where traits are drawn, so validating a spec does not pay for it
    import numpy as np

__all__ = ["Impulsiveness", "Interest", "Dwell", "Valuation", "Segment", "Population", "Traits", "draw_traits"]


class Impulsiveness(FrozenModel):
    """Impulsiveness ``z``: ``beta = [a, b]`` for Beta(a, b), or ``fixed = z``."""

    beta: tuple[float, float] | None = None
    fixed: float | None = Field(default=None, ge=0, le=1)

    @model_validator(mode="after")
    def _one_of(self) -> Impulsiveness:
        if (self.beta is None) == (self.fixed is None):
            raise ValueError("give exactly one of 'beta = [a, b]' or 'fixed = z'")
        if self.beta is not None and min(self.beta) <= 0:
            raise ValueError(f"both Beta parameters must be > 0: {list(self.beta)}")
        return self

    @property
    def mean(self) -> float:
        if self.fixed is not None:
            return self.fixed
        a, b = self.beta  # type: ignore[misc]
        return a / (a + b)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        import numpy as np

        if self.fixed is not None:
            return np.full(n, self.fixed)
        a, b = self.beta  # type: ignore[misc]
        return rng.beta(a, b, size=n)


class Interest(FrozenModel):
    """Interest multiplier of the purchase hazard: gamma with this mean and cv."""

    mean: float = Field(default=1.0, gt=0)
    cv: float = Field(default=0.0, ge=0)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        import numpy as np

        if self.cv == 0:
            return np.full(n, self.mean)
        shape = 1.0 / self.cv**2
        return rng.gamma(shape, self.mean / shape, size=n)


class Dwell(FrozenModel):
    """How long a viewer watches: a distribution with mean ``mean_s`` seconds."""

    mean_s: float = Field(gt=0)
    distribution: Literal["exponential", "lognormal", "gamma"] = "exponential"
    cv: float = Field(default=1.0, gt=0, description="coefficient of variation (lognormal, gamma)")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        import math

        if self.distribution == "exponential":
            return rng.exponential(self.mean_s, size=n)
        if self.distribution == "gamma":
            shape = 1.0 / self.cv**2
            return rng.gamma(shape, self.mean_s / shape, size=n)
        sigma2 = math.log1p(self.cv**2)
        return rng.lognormal(math.log(self.mean_s) - sigma2 / 2, math.sqrt(sigma2), size=n)

    def survival(self, x: np.ndarray) -> np.ndarray:
        """P(dwell > x), for the analytic checks."""
        import numpy as np
        from scipy import stats

        x = np.asarray(x, dtype=float)
        if self.distribution == "exponential":
            return np.exp(-x / self.mean_s)
        if self.distribution == "gamma":
            shape = 1.0 / self.cv**2
            return stats.gamma.sf(x, shape, scale=self.mean_s / shape)
        sigma2 = np.log1p(self.cv**2)
        return stats.lognorm.sf(x, np.sqrt(sigma2), scale=np.exp(np.log(self.mean_s) - sigma2 / 2))


class Valuation(FrozenModel):
    """What a viewer would pay for a product, relative to its list price.

    A viewer's valuation of product ``p`` is ``price_p * interest * V`` with
    ``V`` log-normal of mean ``mean`` and coefficient of variation ``cv``,
    drawn for each viewer and product: viewers who like a product more both
    buy it sooner and value it more.  A purchase's surplus is the valuation
    minus the price paid; a purchase with negative surplus is regretted.
    """

    mean: float = Field(default=1.0, gt=0)
    cv: float = Field(default=0.3, ge=0)

    def lognormal(self) -> tuple[float, float]:
        """``(mu, sigma)`` of ``log V``."""
        import math

        s2 = math.log1p(self.cv**2)
        return math.log(self.mean) - s2 / 2, math.sqrt(s2)


class Segment(FrozenModel):
    """One segment of the population and the distributions of its traits."""

    share: float = Field(gt=0, le=1)
    description: str = ""
    impulsiveness: Impulsiveness
    interest: Interest = Interest()
    dwell: Dwell
    price_sensitivity: float = Field(default=0.0, ge=0)
    valuation: Valuation = Valuation()


class Population(FrozenModel):
    """The viewers' segments; ``profile`` records where they came from."""

    profile: str | None = None
    segments: dict[str, Segment] = Field(min_length=1)


@dataclass(frozen=True)
class Traits:
    """Traits of ``n`` viewers, as arrays (built by :func:`draw_traits`)."""

    segment: np.ndarray  # int index into Population.segments
    impulsiveness: np.ndarray
    interest: np.ndarray
    dwell_s: np.ndarray
    price_sensitivity: np.ndarray


def draw_traits(population: Population, rng: np.random.Generator, n: int) -> Traits:
    """Draw the traits of ``n`` viewers, in arrival order.

    Every trait is drawn for every viewer in a fixed order, so viewer ``i``'s
    traits depend only on the generator and ``n``, never on the arm.

    >>> import numpy as np
    >>> pop = Population(segments={"a": Segment(share=1.0, impulsiveness=Impulsiveness(fixed=0.5),
    ...                                          dwell=Dwell(mean_s=60.0))})
    >>> t = draw_traits(pop, np.random.default_rng(1), 3)
    >>> t.impulsiveness.tolist(), t.segment.tolist()
    ([0.5, 0.5, 0.5], [0, 0, 0])
    """
    import numpy as np

    segs = list(population.segments.values())
    shares = np.array([s.share for s in segs])
    segment = rng.choice(len(segs), size=n, p=shares / shares.sum())
    z = np.empty(n)
    interest = np.empty(n)
    dwell = np.empty(n)
    beta = np.empty(n)
    for k, seg in enumerate(segs):
        # Draw a full-length vector per segment and keep the members' entries:
        # a viewer's traits then do not shift when another viewer's segment does.
        members = segment == k
        z[members] = seg.impulsiveness.draw(rng, n)[members]
        interest[members] = seg.interest.draw(rng, n)[members]
        dwell[members] = seg.dwell.draw(rng, n)[members]
        beta[members] = seg.price_sensitivity
    return Traits(segment=segment, impulsiveness=z, interest=interest, dwell_s=dwell, price_sensitivity=beta)
