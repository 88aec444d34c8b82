"""The simulation's exponentials and powers are the C library's, so its tables do not depend on the CPU.

numpy's float64 ``exp`` (AVX-512F) and ``power`` (SVML, AVX-512 SKX) differ
from the C library in the last bit for a few percent of arguments.  The
first tests check :mod:`fomolab._libm` against :func:`math.exp` and
:func:`math.pow` value by value; the last one simulates the golden specs
whose tables go through those functions with numpy's AVX-512 kernels
switched off (``NPY_DISABLE_CPU_FEATURES``) and on, and requires the same
digests: on a CPU with AVX-512 it fails if any simulated number still comes
from numpy's own kernels (on one without, numpy calls the C library
either way and there is nothing to compare).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fomolab import _libm

ROOT = Path(__file__).resolve().parents[1]


def _arguments() -> np.ndarray:
    rng = np.random.default_rng(20261202)
    return np.concatenate([rng.normal(0, 1, 100_000), rng.uniform(-700, 700, 50_000), rng.normal(0, 1e-8, 1_000),
                           [0.0, -0.0, 1.0, -1.0, 709.0, -745.0, 710.0, -746.0, np.inf, -np.inf, np.nan]])


def test_exp_is_the_c_librarys_value_by_value() -> None:
    x = _arguments()
    got = _libm.exp(x)
    want = np.array([math.inf if v > 709.8 else math.exp(v) for v in x])  # (math.exp raises past the range)
    assert got.dtype == np.float64 and got.shape == x.shape
    assert np.array_equal(got, want, equal_nan=True)
    assert _libm.exp(x[:151_000].reshape(-1, 100)).shape == (1_510, 100)  # shape kept


def test_power_is_the_c_librarys_value_by_value() -> None:
    rng = np.random.default_rng(7)
    base = np.concatenate([rng.uniform(0, 3, 50_000), [0.0, 1.0, 2.0, np.inf, np.nan]])
    expo = np.concatenate([rng.uniform(-4, 4, 50_000), [-1.5, -0.0, 0.5, -2.0, 0.0]])
    assert np.array_equal(_libm.power(base, expo), [math.pow(a, b) if not (a == 0 and b < 0) else math.inf
                                                   for a, b in zip(base, expo, strict=True)], equal_nan=True)
    # a scalar with an array either way (the learning factor c ** exposures, the price factor keep ** -beta)
    k = rng.integers(0, 12, 1_000)
    assert np.array_equal(_libm.power(0.8, k), [math.pow(0.8, v) for v in k])
    assert np.array_equal(_libm.power(base[:1_000], -0.7), [math.pow(v, -0.7) for v in base[:1_000]],
                          equal_nan=True)
    assert _libm.power(2.0, 3.0).shape == () and float(_libm.power(2.0, 3.0)) == 8.0
    assert _libm.power(np.ones((2, 3)), np.arange(3.0)).shape == (2, 3)


#: The golden specs whose simulated numbers pass through exponentials and powers: valuations (every spec's
#: surplus), a deceptive variant's learning, Hawkes bursts, a marketplace's choices, price cuts with sensitive
#: viewers.
SPECS = ["valuations", "deceptive", "bursts", "marketplace", "lightning_quota"]
DIGESTS = """
import json, sys
from pathlib import Path
import tests.golden as g
print(json.dumps(g.compute([Path("tests/golden/specs") / f"{s}.toml" for s in sys.argv[1:]]), sort_keys=True))
"""
AVX512 = "X86_V4 AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"


def _digests(disable: str | None) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]))
    env.pop("NPY_DISABLE_CPU_FEATURES", None)
    if disable:
        env["NPY_DISABLE_CPU_FEATURES"] = disable
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", DIGESTS, *SPECS], cwd=ROOT, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_tables_do_not_depend_on_numpys_avx512_kernels() -> None:
    from numpy._core._multiarray_umath import __cpu_features__ as features

    present = [f for f in AVX512.split() if features.get(f)]
    if not present:
        pytest.skip("this CPU has no AVX-512: numpy computes exp and power with the C library here anyway")
    assert _digests(None) == _digests(" ".join(present))
