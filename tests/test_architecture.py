"""The package's layers: each module imports only from its own layer or those below.

The layers are those of ``docs/ARCHITECTURE.md``; a module missing from the map
fails the test, so a new module is placed in a layer when it is added.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fomolab"

#: Layer of each top-level module or package of ``fomolab``, lowest first.
LAYERS: dict[str, int] = {
    # 0: errors, seeds and small utilities that know nothing of the model
    "errors": 0, "seeds": 0, "_libm": 0, "_frozen": 0, "_optional": 0, "_format": 0, "_terminal": 0, "_side": 0,
    "_spill": 0,
    # 1: the model's concepts: tactics (plugins), stream, population, lineup, market, sweep designs
    "tactics": 1, "stream": 1, "population": 1, "lineup": 1, "market": 1, "sweep": 1, "hawkes": 1, "retention": 1,
    "host": 1, "value": 1,
    # 2: a spec parsed and validated into a frozen Experiment
    "spec": 2,
    # 3: the experiment's design: arms x points x replicates, each with its seed
    "design": 3,
    # 4: simulation of one run, and the model's analytic results
    "engine": 4, "recorder": 4, "theory": 4, "basket": 4,
    # 5: execution and storage: executors, the results store and its tables, derived output folders
    "executor": 5, "aggregates": 5, "store": 5, "results": 5, "outputs": 5, "changes": 5,
    # 6: the runner: expand, skip what is finished, execute the rest, return the Results
    "runner": 6,
    # 7: statistics on any DataFrame (and wrappers for results folders)
    "stats": 7,
    # 8: what a results folder's analysis holds
    "analysis": 8, "attribution": 8, "figure_data": 8, "episode_model": 8,
    # 9: presentation: figures that draw analysis tables, the HTML report
    "plot": 9, "report": 9,
    # 10: interfaces and checks on the whole: command line, self-check, calibration
    "cli": 10, "validation": 10, "fit": 10,
}


def _module_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _imports(tree: ast.AST) -> list[tuple[int, str, list[str]]]:
    """(line, imported fomolab module, imported names) of every import in the file."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] == "fomolab":
            out.append((node.lineno, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name, []) for a in node.names if a.name.split(".")[0] == "fomolab"]
    return out


FILES = sorted(p for p in SRC.rglob("*.py") if p.name != "__init__.py" or p.parent != SRC)


def test_every_module_has_a_layer():
    missing = sorted({_module_of(p) for p in FILES} - set(LAYERS))
    assert not missing, f"place these modules in a layer (tests/test_architecture.py, docs/ARCHITECTURE.md): {missing}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_go_down_the_layers(path):
    here = _module_of(path)
    bad = []
    for line, module, names in _imports(ast.parse(path.read_text(encoding="utf-8"))):
        parts = module.split(".")
        if len(parts) == 1:  # `from fomolab import X`: the package root
            targets = [n for n in names if n != "__version__"]
        else:
            targets = [parts[1]]
        for target in targets:
            if target in LAYERS and LAYERS[target] > LAYERS[here]:
                bad.append(f"line {line}: {here} (layer {LAYERS[here]}) imports {target} (layer {LAYERS[target]})")
            elif target not in LAYERS:
                bad.append(f"line {line}: {here} imports {target!r} from the package root; import it from its module")
    assert not bad, "\n".join(bad)


def test_the_check_sees_an_upward_import(tmp_path):
    tree = ast.parse("def f():\n    from fomolab.report import report\n")
    (line, module, _), = _imports(tree)
    assert (line, module) == (2, "fomolab.report") and LAYERS["report"] > LAYERS["engine"]


def test_the_readme_layout_lists_the_package():
    readme = (SRC.parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Layout", 1)[1].split("```", 2)[1]
    listed = {w.removesuffix(".py").rstrip("/") for w in block.split()
              if w.endswith((".py", "/")) and w != "src/fomolab/"}
    package = {p.name.removesuffix(".py") for p in SRC.iterdir()
               if (p.suffix == ".py" and p.name != "__init__.py") or (p.is_dir() and p.name != "__pycache__")}
    assert package <= listed, f"modules missing from the README's layout: {sorted(package - listed)}"
    folders = {"agents", "experiments", "results", "tests", "benchmarks", "docs"}
    assert listed - package <= folders, f"the README's layout names what is not there: {sorted(listed - package - folders)}"
    assert {m for m in LAYERS if (SRC / m).exists() or (SRC / f"{m}.py").exists()} == set(LAYERS)
