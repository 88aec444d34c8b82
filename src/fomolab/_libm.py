"""``exp`` and ``power`` of arrays that give the same numbers on every machine.

numpy computes float64 ``exp`` and ``log`` with kernels of its own where the
CPU has AVX-512F, and ``power`` (among others) with Intel's SVML where it has
AVX-512 SKX; elsewhere it calls the C library.  The kernels are accurate but
not the C library's: about one result in twenty differs in its last bit.  A
simulation that used them would write different tables on a laptop and on a
server from the same spec and seed.  The simulation's exponentials and powers
of arrays therefore come from here: pyarrow's compute kernels, which call the
C library element by element on every CPU (``tests/test_libm.py`` checks
them against :func:`math.exp` and :func:`math.pow`).  Scalars use
:mod:`math` directly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["exp", "power"]


def exp(x: Any) -> np.ndarray:
    """``e ** x`` elementwise (float64), as the C library's ``exp`` gives it.

    >>> exp(np.array([0.0, 1.0])).tolist()
    [1.0, 2.718281828459045]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    a = np.ascontiguousarray(x, dtype=float)
    out: np.ndarray = pc.exp(pa.array(a.ravel())).to_numpy(zero_copy_only=False).reshape(a.shape)
    return out


def power(x: Any, y: Any) -> np.ndarray:
    """``x ** y`` elementwise (float64, broadcast), as the C library's ``pow`` gives it.

    >>> power(np.array([4.0, 0.5]), -0.5).tolist()
    [0.5, 1.4142135623730951]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    shape = np.broadcast_shapes(xa.shape, ya.shape)

    def arrow(v: np.ndarray) -> Any:  # a scalar stays one (no array of copies)
        return pa.scalar(float(v)) if v.ndim == 0 else pa.array(np.ascontiguousarray(np.broadcast_to(v, shape)).ravel())

    out = pc.power(arrow(xa), arrow(ya))
    if isinstance(out, pa.Scalar):
        return np.full(shape, out.as_py(), dtype=float)
    result: np.ndarray = out.to_numpy(zero_copy_only=False).reshape(shape)
    return result
