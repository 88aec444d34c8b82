"""Packaging: one version source, the license, optional extras and their error messages, CI settings."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from importlib import metadata

import pytest

import fomolab
from fomolab.errors import FomolabError, MissingExtraError

from helpers import ROOT, experiment, make_spec

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: Modules that come only with extras.
OPTIONAL = ("matplotlib", "cycler", "jinja2", "dask", "distributed", "SALib")


def _python(code: str, *, block: tuple[str, ...] = (), env: dict[str, str | None] | None = None,
            ) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter in which the ``block``ed modules cannot be imported.

    ``env`` sets variables (None removes one)."""
    prelude = "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in block)
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    environ = {**os.environ, **(env or {}), "PYTHONPATH": path}
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=300,
                          cwd=ROOT, env={k: v for k, v in environ.items() if v is not None})


def test_version_comes_from_package_metadata():
    assert fomolab.__version__ == metadata.version("fomolab") == PYPROJECT["project"]["version"]
    init = (ROOT / "src/fomolab/__init__.py").read_text()
    assert PYPROJECT["project"]["version"] not in init, "the version is written only in pyproject.toml"


def test_license_file_matches_metadata():
    text = (ROOT / "LICENSE").read_text()
    assert PYPROJECT["project"]["license"] == "MIT" and text.startswith("MIT License")
    assert "fomolab developers" in text and "LICENSE" in PYPROJECT["project"]["license-files"]


def test_extras_cover_the_optional_modules_and_test_installs_all():
    extras = PYPROJECT["project"]["optional-dependencies"]
    core = " ".join(PYPROJECT["project"]["dependencies"]).lower()
    for name in ("matplotlib", "jinja2", "dask", "salib"):
        assert name not in core, f"{name} belongs in an extra, not the core dependencies"
    assert set(extras) >= {"dask", "report", "sobol", "all", "test"}
    assert extras["all"] == ["fomolab[dask,report,sobol]"] and "fomolab[all]" in extras["test"]
    tasks = (ROOT / "tasks.py").read_text()
    assert 'setup("all")' in tasks and 'setup("test")' in tasks


def test_stats_and_simulator_work_without_the_extras(tmp_path):
    """fomolab.stats and a run need none of matplotlib, jinja2, Dask or SALib."""
    code = f"""
import pandas as pd
import fomolab
from fomolab import stats
from helpers import experiment, make_spec
df = pd.DataFrame({{"t": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "e": [1, 0, 1, 1, 0, 1], "g": list("aabbab")}})
km = stats.kaplan_meier(df, "t", "e")
res = fomolab.run(experiment(make_spec(experiment={{"replicates": 1}})), {str(tmp_path / 'out')!r})
print("ok", type(km).__name__, len(res.runs))
"""
    out = _python(code, block=OPTIONAL)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok ")


@pytest.mark.parametrize("module", ["matplotlib", "cycler"])
def test_figures_without_report_extra_name_it(module, tmp_path):
    res_dir = tmp_path / "res"
    fomolab.run(experiment(make_spec(experiment={"replicates": 1})), res_dir)
    code = f"""
from fomolab.cli import main
sys.exit(main(["report", {str(res_dir)!r}]))
"""
    out = _python(code, block=(module,))
    assert out.returncode != 0
    assert "pip install 'fomolab[report]'" in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_missing_extra_is_a_fomolab_import_error(monkeypatch):
    from fomolab import plot

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingExtraError, match=r"matplotlib is not installed .*fomolab\[report\]") as exc, \
            plot.style():
        pass
    assert isinstance(exc.value, FomolabError) and isinstance(exc.value, ImportError)
    assert exc.value.extra == "report" and exc.value.name == "matplotlib"


def test_dask_cluster_without_dask_extra_names_it(monkeypatch, tmp_path):
    from fomolab.executor import run_dask

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingExtraError, match=r"fomolab\[dask\]"):
        next(run_dask([], tmp_path, "tcp://127.0.0.1:1"))


def test_saltelli_design_without_sobol_extra_names_it(monkeypatch):
    spec = make_spec(lineup={"item": {"stock": 10}}, sweep={
        "design": "saltelli", "samples": 4, "parameters": {"lineup.item.price": {"low": 5.0, "high": 15.0}}})
    monkeypatch.setitem(sys.modules, "SALib", None)
    with pytest.raises(MissingExtraError, match=r"needed for Saltelli.*fomolab\[sobol\]"):
        experiment(spec)


def test_sobol_indices_without_sobol_extra_names_it(monkeypatch):
    from fomolab.stats import sobol_indices

    monkeypatch.setitem(sys.modules, "SALib", None)
    with pytest.raises(MissingExtraError, match=r"needed for Sobol indices.*fomolab\[sobol\]"):
        sobol_indices(ROOT / "no-such-folder")


def test_hypothesis_is_derandomized_in_ci():
    code = "import conftest\nfrom hypothesis import settings\nd = settings.default\n" \
           "print(d.derandomize, d.deadline, d.print_blob)"
    ci = _python(code, env={"CI": "true"})
    assert ci.returncode == 0, ci.stderr
    assert ci.stdout.split() == ["True", "None", "True"]
    local = _python(code, env={"CI": None, "HYPOTHESIS_PROFILE": None})
    assert local.returncode == 0, local.stderr
    assert local.stdout.split()[0] == "False"
