"""Bursty audiences: self-exciting (Hawkes) arrivals.

The picture: a go-live notification or a share brings a viewer, and each
viewer who arrives shares the stream or pings friends, who arrive a little
later and share it in turn: arrivals come in bursts.  Crane and Sornette
(2008) found this epidemic cascade in the views of millions of YouTube videos:
each view is the cause of further views after a waiting time, on top of
exogenous, Poisson-like activity.

The model is a linear Hawkes process with an exponential kernel: the arrival
intensity is

    lambda(t) = mu(t) + sum_{t_i < t} (n / tau) exp(-(t - t_i) / tau),

where ``mu(t)`` is the spec's (piecewise-constant) arrival rate, ``n`` the
*branching ratio* (the mean number of arrivals each arrival brings) and
``tau`` the mean delay to them.  It is stationary, with mean rate
``mu / (1 - n)``, only for ``n < 1``; the spec refuses ``n >= 1``.

Sampling is exact, by the cluster (immigrant-birth) representation of Hawkes
and Oakes (1974): the immigrants are the Poisson arrivals at ``mu(t)``; each
arrival has a Poisson(``n``) number of children, each after an exponential
delay of mean ``tau``; children past the stream's end are dropped (so are
their descendants, who would come later still).  Generations are drawn in
bulk with numpy, no time step.

References
----------
Crane, R. and Sornette, D. (2008). Robust dynamic classes revealed by
measuring the response function of a social system. *PNAS* 105(41),
15649-15653. doi:10.1073/pnas.0803685105.

Hawkes, A. G. and Oakes, D. (1974). A cluster process representation of a
self-exciting process. *Journal of Applied Probability* 11(3), 493-503.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_serializer

from fomolab._frozen import FrozenModel

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Hawkes", "cascade", "count_moments", "kernel_sums", "fit_exponential"]


class Hawkes(FrozenModel):
    """Self-exciting arrivals: each arrival brings ``branching`` more on average, after ``decay_s``.

    Attributes
    ----------
    branching : float
        Branching ratio ``n``: mean number of arrivals each arrival brings, in
        ``[0, 1)`` (stationarity).
    decay_s : float
        Mean delay ``tau`` (seconds) from an arrival to the arrivals it brings
        (exponential kernel).
    purchase_branching : float
        ``n_buy``: mean number of arrivals each purchase brings (after the
        same delays), ``>= 0``; 0 (default) is off.  With it the arrivals
        depend on the purchases, and the engine simulates them together in
        time order.  Stationarity over a lineup of ``P`` products is
        validated with the spec: ``branching + purchase_branching * P < 1``.
    """

    branching: float = Field(ge=0)
    decay_s: float = Field(gt=0)
    purchase_branching: float = Field(default=0.0, ge=0)

    @model_serializer(mode="wrap")
    def _dump(self, handler):
        """``purchase_branching`` is left out when 0, so that a run's identity is what it was before
        it existed."""
        data = handler(self)
        if isinstance(data, dict) and data.get("purchase_branching", 1) == 0.0:
            del data["purchase_branching"]
        return data

    @field_validator("branching")
    @classmethod
    def _stationary(cls, v: float) -> float:
        if v >= 1:
            raise ValueError(f"the branching ratio must be below 1 for a stationary audience (each arrival "
                             f"would bring {v:g} more on average and the audience would grow without bound)")
        return v

    def cascade(self, immigrants: np.ndarray, duration_s: float, rng: np.random.Generator) -> np.ndarray:
        """The arrivals that ``immigrants`` bring, with them, sorted (see :func:`cascade`)."""
        return cascade(immigrants, self.branching, self.decay_s, duration_s, rng)

    def mean_factor(self, products: int = 0) -> float:
        """Expected arrivals per immigrant in a long stream, ``1 / (1 - n)``; with purchases bringing
        arrivals, at most ``1 / (1 - n - n_buy * products)`` (each viewer buys each of ``products`` at most
        once)."""
        return 1.0 / (1.0 - self.branching - self.purchase_branching * products)

    def offspring_bound(self, products: int) -> float:
        """The largest mean number of arrivals one viewer brings: ``n + n_buy * products``."""
        return self.branching + self.purchase_branching * products


def cascade(immigrants: np.ndarray, branching: float, decay_s: float, duration_s: float,
            rng: np.random.Generator) -> np.ndarray:
    """Every arrival of a Hawkes cluster process with immigrants ``immigrants``, sorted.

    Each arrival has Poisson(``branching``) children, each after an
    Exponential(``decay_s``) delay; children at or after ``duration_s`` are
    dropped.  Draws go generation by generation: the same ``rng`` state gives
    the same arrivals.

    >>> import numpy as np
    >>> t = cascade(np.array([0.0, 50.0]), 0.0, 10.0, 100.0, np.random.default_rng(0))
    >>> t.tolist()
    [0.0, 50.0]
    """
    import numpy as np

    out = [np.asarray(immigrants, dtype=float)]
    gen = out[0]
    while len(gen):
        k = rng.poisson(branching, len(gen))
        children = np.repeat(gen, k) + rng.exponential(decay_s, int(k.sum()))
        gen = children[children < duration_s]
        out.append(gen)
    return np.sort(np.concatenate(out))


def count_moments(rate_per_s: float, branching: float, decay_s: float, window_s: float) -> tuple[float, float]:
    """Mean and variance of the number of arrivals of a *stationary* Hawkes process in a window.

    With exponential kernel and constant baseline ``mu``: mean rate
    ``L = mu / (1 - n)``; covariance density
    ``c(u) = L n (2 - n) / (2 tau (1 - n)) exp(-(1 - n) |u| / tau)``, so
    ``Var N(w) = L w + 2 A (w / b - (1 - exp(-b w)) / b^2)`` with
    ``b = (1 - n) / tau`` and ``A`` the factor of ``c``.  For long windows
    the Fano factor tends to ``1 / (1 - n)^2``.

    >>> m, v = count_moments(1.0, 0.0, 10.0, 100.0)
    >>> m, v
    (100.0, 100.0)
    """
    n, tau, w = branching, decay_s, window_s
    lam = rate_per_s / (1.0 - n)
    b = (1.0 - n) / tau
    a = lam * n * (2.0 - n) / (2.0 * tau * (1.0 - n))
    var = lam * w + 2.0 * a * (w / b - (1.0 - math.exp(-b * w)) / b ** 2)
    return lam * w, var


def kernel_sums(t: np.ndarray, tau: float) -> np.ndarray:
    """``r_i = sum_{j < i} exp(-(t_i - t_j) / tau)`` for sorted ``t``, in O(N) with numpy.

    Ozaki's recursion ``r_i = exp(-(t_i - t_{i-1}) / tau) (1 + r_{i-1})``,
    unrolled over blocks of at most ``300 tau`` seconds so that the
    exponentials stay finite: within a block starting at ``c``,
    ``r_i = exp(-(t_i - c) / tau) (R_c + sum_{c <= t_j < t_i} exp((t_j - c) / tau))``.

    >>> import numpy as np
    >>> kernel_sums(np.array([0.0, 1.0, 2.0]), 1.0).round(6).tolist()
    [0.0, 0.367879, 0.503215]
    """
    import numpy as np

    from fomolab._libm import exp

    out = np.empty(len(t))
    carry, c, i = 0.0, 0.0, 0  # carry: sum over earlier blocks' events of exp(-(c - t_j) / tau)
    span = 300.0 * tau
    while i < len(t):
        c = t[i]
        k = int(np.searchsorted(t, c + span, side="left"))
        e = exp((t[i:k] - c) / tau)
        before = np.concatenate([[0.0], np.cumsum(e)[:-1]])
        out[i:k] = exp(-(t[i:k] - c) / tau) * (carry + before)
        end = t[k] if k < len(t) else c
        carry = (carry + float(e.sum())) * math.exp(-(end - c) / tau)  # moved to the next block's start
        i = k
    return out


def fit_exponential(times: np.ndarray, duration_s: float, start: tuple[float, float, float] | None = None
                    ) -> dict[str, float]:
    """Maximum-likelihood fit of a Hawkes process with constant baseline and exponential kernel.

    The log-likelihood of arrivals ``t_1 < ... < t_N`` on ``[0, T)`` is
    ``sum_i log lambda(t_i) - integral_0^T lambda``, with the kernel sum
    computed by Ozaki's (1979) recursion in O(N).  Independent of how the
    arrivals were drawn: it sees only their times.

    Parameters
    ----------
    times : numpy.ndarray
        Arrival times in ``[0, duration_s)``.
    duration_s : float
        The observation window's end.
    start : (mu, n, tau), optional
        Starting values (default: the mean rate, 0.5, a tenth of the mean gap times 10).

    Returns
    -------
    dict
        ``rate_per_s`` (baseline ``mu``), ``branching`` (``n``), ``decay_s`` (``tau``), ``loglik``.
    """
    import numpy as np
    from scipy.optimize import minimize

    t = np.sort(np.asarray(times, dtype=float))
    T = float(duration_s)

    def nll(x: np.ndarray) -> float:
        mu, n, tau = math.exp(x[0]), 1.0 / (1.0 + math.exp(-x[1])), math.exp(x[2])
        lam = mu + (n / tau) * kernel_sums(t, tau)
        comp = mu * T + n * float(np.sum(1.0 - np.exp(-(T - t) / tau)))
        return -(float(np.sum(np.log(lam))) - comp)

    mean_rate = len(t) / T
    mu0, n0, tau0 = start if start is not None else (mean_rate / 2, 0.5, 10.0 * T / max(len(t), 1))
    x0 = np.array([math.log(mu0), math.log(n0 / (1 - n0)), math.log(tau0)])
    res = minimize(nll, x0, method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-6, "maxiter": 4000})
    mu, n, tau = math.exp(res.x[0]), 1.0 / (1.0 + math.exp(-res.x[1])), math.exp(res.x[2])
    return {"rate_per_s": mu, "branching": n, "decay_s": tau, "loglik": -float(res.fun)}
