"""Shared by the known-answer tests: where R's printed numbers come from, and
how closely a figure must match one."""

from __future__ import annotations

SURV_EX = "therneau/survival tests/Examples/survival-Ex.Rout.save (commit 0457202d)"
CANCER = "therneau/survival tests/cancer.Rout.save (commit 08139b13)"


def close_to_printed(got: float, printed: str) -> None:
    """Assert ``got`` rounds to R's printed value: |got - v| <= half a unit of its last digit."""
    v = float(printed)
    s = printed.lstrip("-")
    decimals = len(s.split(".")[1]) if "." in s else 0
    assert abs(got - v) <= 0.5 * 10.0 ** (-decimals) + 1e-12, (got, printed)
ZPH = "therneau/survival tests/zph.Rout.save (commit a2533a92)"
DOWEIGHT = "therneau/survival tests/doweight.Rout.save (commit a2533a92)"
CANCER_A2 = "therneau/survival tests/cancer.Rout.save (commit a2533a92)"
SURV_EX_A2 = "therneau/survival tests/Examples/survival-Ex.Rout.save (commit a2533a92)"
SURVRM2 = "cran/survRM2 inst/doc/survRM2-vignette3-2.html (version 1.0-4, commit 044089fc)"
BLADDER = "therneau/survival tests/bladder.Rout.save (commit a2533a92)"
R_SAS = "therneau/survival tests/r_sas.Rout.save (commit a2533a92)"
TESTCI = "therneau/survival tests/testci.Rout.save (commit a2533a92)"
FINEGRAY = "therneau/survival tests/finegray.Rout.save (commit a2533a92)"
COMPETE = "cran/survival inst/doc/compete.pdf (survival 3.8-6, commit e4f35ec): vignette 'compete'"
