"""Running an experiment: expand it, skip what is finished, execute the rest.

:func:`run` is the Python entry point behind ``fomolab run``.  It validates the
results folder before writing anything, records provenance in the manifest
(spec, hash, seeds, package versions, git commit, timings), and resumes an
interrupted experiment where it stopped.
"""

from __future__ import annotations

import datetime as _dt
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from fomolab import __version__
from fomolab.design import RunSpec, assign_points, expand
from fomolab.errors import FomolabError
from fomolab.executor import Outcome, auto_workers, run_dask, run_processes, run_serial
from fomolab.spec import Experiment, load_experiment
from fomolab.store import Store

__all__ = ["run", "plan", "RunFailures"]

PACKAGES = ("numpy", "scipy", "pandas", "pyarrow", "simpy", "pydantic", "statsmodels")


class RunFailures(FomolabError, RuntimeError):
    """Some runs raised; they are recorded in the ``failures`` table and retried next time."""

    def __init__(self, failed: list[Outcome], out: Path) -> None:
        self.failed = failed
        first = failed[0]
        super().__init__(
            f"{len(failed)} run(s) failed (first: arm {first.arm!r}, replicate {first.replicate}: "
            f"{first.error}); see {out / 'failures'}; running the same command again retries them"
        )


def plan(experiment: Experiment, registry: list[dict[str, Any]] | None = None) -> list[RunSpec]:
    """All runs of the experiment, in execution order (points numbered by ``registry``)."""
    return expand(experiment, registry=registry)


def run(experiment: Experiment | str | Path, out: str | Path | None = None, *, replicates: int | None = None,
        seed: int | None = None, workers: int | None = None, scheduler: str | None = None, progress: Callable[[Outcome, int, int], None] | None = None,
        on_start: Callable[[int, int], None] | None = None):
    """Run an experiment into a results folder and return its :class:`~fomolab.Results`.

    Parameters
    ----------
    experiment : Experiment or path
        The experiment, or the path of its spec.
    out : path, optional
        Results folder; default ``results/<experiment name>``.
    replicates, seed : int, optional
        Override the spec's number of replicates or master seed.
    workers : int or None
        1 runs serially in this process; more uses a pool of local processes;
        None picks one per core, as many as the work pays for (a small
        experiment runs serially: starting a worker costs about a second).
    scheduler : str, optional
        Address of a Dask distributed scheduler (``tcp://HOST:PORT``); runs go
        to its workers, which must see the results folder.
    progress : callable, optional
        Called as ``progress(outcome, done, total)`` after each run.
    on_start : callable, optional
        Called as ``on_start(to_run, total)`` before the first run.

    Raises
    ------
    SpecError, ResultsError
        Bad input, before anything is written.
    RunFailures
        After all other runs finished, if some runs raised.
    """
    from fomolab.results import Results

    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    if replicates is not None or seed is not None:
        experiment = experiment.with_overrides(replicates=replicates, seed=seed)
    out = Path(out) if out is not None else Path("results") / experiment.name
    store = Store.open_for(out, experiment)
    old = store.manifest() if (store.path / "manifest.json").is_file() else {}
    _, registry = assign_points(experiment, old.get("points"))
    runs = plan(experiment, registry)
    manifest = _manifest(experiment, runs, registry, old)
    store.create(manifest)
    store.clean_staging()
    done = store.finished()
    todo = [r for r in runs if r.run_id not in done]
    if on_start is not None:
        on_start(len(todo), len(runs))
    start = time.perf_counter()
    failed: list[Outcome] = []
    seconds = 0.0
    if workers is None:
        workers = auto_workers(todo)
    if scheduler is not None:
        executor = run_dask(todo, out.resolve(), scheduler)
    elif workers <= 1 or len(todo) <= 1:
        executor = run_serial(todo, out)
    else:
        executor = run_processes(todo, out, workers)
    for k, outcome in enumerate(executor, 1):
        seconds += outcome.seconds
        if not outcome.ok:
            failed.append(outcome)
        if progress is not None:
            progress(outcome, len(runs) - len(todo) + k, len(runs))
    wall = time.perf_counter() - start
    manifest["timings"].append({
        "finished": _now(), "runs_computed": len(todo), "runs_skipped": len(runs) - len(todo),
        "runs_failed": len(failed), "wall_s": round(wall, 4), "run_seconds_total": round(seconds, 4),
        "workers": workers, "scheduler": scheduler,
    })
    store.write_manifest(manifest)
    if failed:
        raise RunFailures(failed, out)
    return Results(out)


def _manifest(experiment: Experiment, runs: list[RunSpec], registry: list[dict[str, Any]],
              old: dict[str, Any]) -> dict[str, Any]:
    seeds = sorted({(r.point, r.replicate, r.seed) for r in runs} |
                   {(s["point"], s["replicate"], s["seed"]) for s in old.get("seeds", [])})
    return {
        "fomolab_version": __version__,
        "experiment": experiment.name,
        "description": experiment.description,
        "source": experiment.source,
        "spec_hash": experiment.spec_hash,
        "fingerprint": experiment.fingerprint,
        "master_seed": experiment.seed,
        "replicates": max(experiment.replicates, old.get("replicates", 0)),
        "arms": list(experiment.arms),
        "control": experiment.control,
        "runs": len(runs),
        "swept": experiment.swept,
        "sweep_design": experiment.sweep.design if experiment.sweep else None,
        "points": registry,
        "seeds": [{"point": p, "replicate": r, "seed": s} for p, r, s in seeds],
        "spec": experiment.spec,
        "packages": {"python": sys.version.split()[0], "fomolab": __version__, **_versions()},
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "created": old.get("created", _now()),
        "timings": old.get("timings", []),
    }


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if res.returncode != 0:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                           capture_output=True, text=True, timeout=5).stdout.strip()
    return res.stdout.strip() + ("-dirty" if dirty else "")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
