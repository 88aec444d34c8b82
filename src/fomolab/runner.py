"""Running an experiment: expand it, skip what is finished, execute the rest.

:func:`run` is the Python entry point behind ``fomolab run``.  It validates the
results folder before writing anything, holds the folder's writer lock for the
whole invocation, verifies the finished runs (recomputing damaged ones),
records the spec, hash and seeds in the manifest and each invocation's
provenance (fomolab version and revision, Python, platform, packages, what it
computed) in the manifest's history, and resumes an interrupted experiment
where it stopped.  A folder that lost its manifest is rebuilt from the spec.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import json
import platform
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from fomolab import __version__
from fomolab.aggregates import write_index
from fomolab.design import RunSpec, assign_points, expand
from fomolab.errors import FomolabError, ResultsError
from fomolab.executor import Outcome, auto_workers, connect_scheduler, run_dask, run_processes, run_serial
from fomolab.spec import Experiment, load_experiment
from fomolab.store import LAYOUT, FolderState, Store, is_disk_full, provenance

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
            + ("; the disk is full: free some space first (finished runs are kept)"
               if any(_DISK_FULL in o.error for o in failed) else "")
        )


#: How an out-of-space error reads in an outcome's message.
_DISK_FULL = "No space left on device"


def plan(experiment: Experiment, registry: list[dict[str, Any]] | None = None) -> list[RunSpec]:
    """All runs of the experiment, in execution order (points numbered by ``registry``)."""
    return expand(experiment, registry=registry)


def run(experiment: Experiment | str | Path, out: str | Path | None = None, *, replicates: int | None = None,
        seed: int | None = None, workers: int | None = None, scheduler: str | None = None,
        progress: Callable[[Outcome, int, int], None] | None = None,
        on_start: Callable[[int, int], None] | None = None, allow_other_version: bool = False):
    """Run an experiment into a results folder and return its :class:`~fomolab.Results`.

    The results returned are exactly those asked for: the spec's (or
    ``replicates``') number of replicates of every arm and point, even when
    the folder holds more (it keeps them; ``Results(out)`` reads them all).
    A spec edited since the folder was written extends it or is refused, by
    the rules of :mod:`fomolab.changes`.

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
    allow_other_version : bool
        Extend a folder that another fomolab version wrote (refused otherwise);
        the manifest's history records both versions.

    Raises
    ------
    SpecError, ResultsError
        Bad input, before anything is written; a folder another process is
        writing (with its pid); a folder of another fomolab version or of a
        spec changed in other ways than extensions (each changed key with
        its old and new value); a full disk.
    RunFailures
        After all other runs finished, if some runs raised.
    """
    from fomolab.results import Results

    if not isinstance(experiment, Experiment):
        experiment = load_experiment(experiment)
    if replicates is not None or seed is not None:
        experiment = experiment.with_overrides(replicates=replicates, seed=seed)
    if scheduler is not None:
        connect_scheduler(scheduler)  # a wrong address fails here, in seconds, before anything is written
    out = Path(out) if out is not None else Path("results") / experiment.name
    # bad folders are refused before anything is written, the lock file included ...
    store = Store.open_for(out, experiment)
    _check_version(store, store.manifest() if store.has_manifest() else {}, allow_other_version)
    if not store.has_manifest() and store.finished():
        _rebuild(store, experiment, store.inspect(checksums=False), allow_other_version)
    with store.lock():  # ... a second writer here, naming the first ...
        started = _now()
        store.check_folder()  # ... and all of it again, now that no one else can write
        store.check_for(experiment)
        old = store.manifest() if store.has_manifest() else {}
        _check_version(store, old, allow_other_version)
        state, runs = _inspect(store, experiment, old)
        notes = {"runs_repaired": len(state.damaged), "runs_adopted": 0, "manifest_rebuilt": False}
        if not old and state.commits:
            old = _rebuild(store, experiment, state, allow_other_version)
            notes["manifest_rebuilt"] = True
            notes["runs_adopted"] = len(state.commits)
            print(f"fomolab: {out}: had no manifest.json; rebuilt it from {experiment.source}, keeping "
                  f"{len(state.commits)} finished runs whose commit records match the spec", file=sys.stderr)
        elif old and old.get("layout", 1) < LAYOUT:
            adopted = _adopt_legacy(store, old, state)
            notes["runs_adopted"] = len(adopted)
        if state.damaged:
            print(f"fomolab: {out}: {state.damage_summary()}; recomputing them", file=sys.stderr)
            store.discard(list(state.damaged))
        _, registry = assign_points(experiment, old.get("points"))
        if runs is None or notes["manifest_rebuilt"]:
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
        computed = 0
        if workers is None:
            workers = auto_workers(todo)
        outcome_kind = "interrupted"
        final: FolderState | None = None
        index: dict[str, Any] | None = None
        try:
            if scheduler is not None:
                executor = run_dask(todo, out.resolve(), scheduler)
            elif workers <= 1 or len(todo) <= 1:
                executor = run_serial(todo, out)
            else:
                executor = run_processes(todo, out, workers)
            for computed, outcome in enumerate(executor, 1):
                seconds += outcome.seconds
                if not outcome.ok:
                    failed.append(outcome)
                if progress is not None:
                    progress(outcome, len(runs) - len(todo) + computed, len(runs))
            outcome_kind = "failed" if failed else "finished"
            # the index of the finished runs' small tables (a no-op when it is current)
            final = store.inspect(checksums=False) if computed else state
            index = write_index(store.path, final.commits)
            store.cache_records(final)  # one file for the next invocation to read, not one per run
        finally:
            manifest["invocations"].append({
                "started": started, "finished": _now(), "outcome": outcome_kind, **_environment(),
                "allow_other_version": allow_other_version,
                "runs_computed": computed, "runs_skipped": len(runs) - len(todo),
                "runs_failed": len(failed), **notes,
                "wall_s": round(time.perf_counter() - start, 4), "run_seconds_total": round(seconds, 4),
                "workers": workers, "scheduler": scheduler,
            })
            try:
                store.write_manifest(manifest)
            except OSError as exc:
                if outcome_kind != "interrupted":
                    raise ResultsError(f"{out}: cannot record this invocation in {out / 'manifest.json'}: "
                                       f"{exc.strerror or exc}"
                                       + ("; free some space and run the same command again (finished runs "
                                          "are kept)" if is_disk_full(exc) else "")) from None
    if failed:
        raise RunFailures(failed, out)
    # what was asked, though the folder may hold more; the state just inspected
    return Results._inspected(out, final, replicates=experiment.replicates, index=index)


def _inspect(store: Store, experiment: Experiment, old: dict[str, Any]) -> tuple[FolderState, list[RunSpec] | None]:
    """The folder's finished runs (and the plan, if it was needed): sizes compared, and checksums too
    when there is work to do.

    When every run of the plan is finished and every partition has the size
    its commit record says, nothing is read (``fomolab check`` verifies the
    checksums); otherwise the checksums of every finished run are verified, so
    a damaged run is recomputed with the others.
    """
    if not store.path.is_dir():
        return FolderState(), None
    state = store.inspect(checksums=False)
    runs = None
    if not state.damaged and old and old.get("layout", 1) >= LAYOUT:
        _, registry = assign_points(experiment, old.get("points"))
        runs = plan(experiment, registry)
        if {r.run_id for r in runs} <= set(state.commits):
            return state, runs
    return store.inspect(checksums=True), runs


def _check_version(store: Store, old: dict[str, Any], allow: bool) -> None:
    """Refuse to extend a folder that another fomolab version wrote, unless allowed."""
    ours = provenance()["fomolab_version"]
    versions = [old.get("fomolab_version")] + [i.get("fomolab_version") for i in old.get("invocations", [])]
    others = sorted({str(v) for v in versions if v and v != ours})
    if others and not allow:
        raise ResultsError(
            f"{store.path}: was written by fomolab {', '.join(others)}; this is fomolab {ours}. Runs computed by "
            "different versions may not be comparable: write to a new folder with --out NEW_DIR, or extend this "
            "one anyway with --allow-other-version (Python: allow_other_version=True; both versions are recorded)"
        )


def _rebuild(store: Store, experiment: Experiment, state: FolderState, allow: bool) -> dict[str, Any]:
    """What a lost manifest said, from the commit records of the finished runs.

    Every committed run must be a run of ``experiment`` (its run id is the hash
    of its scenario, seed and place in the design, so a match proves it); the
    point numbers the folder gave are read from the records.  Returns a
    stand-in for the old manifest: replicates, points, created.
    """
    recs = state.commits
    others = sorted({str(r.get("fomolab_version")) for r in recs.values()} - {provenance()["fomolab_version"]})
    if others and not allow:
        _check_version(store, {"fomolab_version": others[0]}, allow)
    reps = max(experiment.replicates, 1 + max(int(r["replicate"]) for r in recs.values()))
    full = experiment.with_overrides(replicates=reps) if reps != experiment.replicates else experiment
    ids, _ = assign_points(full, None)
    values = {pid: p.values for pid, p in zip(ids, full.points, strict=True)}
    by_id = {r.run_id: r for r in expand(full)}
    foreign = [rid for rid in recs if rid not in by_id]
    if foreign:
        r = recs[foreign[0]]
        raise ResultsError(
            f"{store.path}: has no manifest.json, and {len(foreign)} of its {len(recs)} finished runs are not runs of "
            f"{experiment.source} (e.g. run {foreign[0]}: arm {r.get('arm')!r}, replicate {r.get('replicate')}); "
            "give the spec (and --seed) that wrote the folder to rebuild its manifest"
        )
    number: dict[str, int] = {}
    for rid, rec in recs.items():
        key = json.dumps(values[by_id[rid].point], sort_keys=True, default=str)
        if number.setdefault(key, int(rec["point"])) != int(rec["point"]):
            raise ResultsError(f"{store.path}: commit records give one sweep point two numbers; "
                               "the folder cannot be rebuilt (write to a new folder)")
    registry = {n: json.loads(k) for k, n in number.items()}
    if len(registry) != len(number):
        raise ResultsError(f"{store.path}: commit records give two sweep points one number; "
                           "the folder cannot be rebuilt (write to a new folder)")
    free = (n for n in itertools.count() if n not in registry)
    for pid in dict.fromkeys(ids):
        key = json.dumps(values[pid], sort_keys=True, default=str)
        if key not in number:
            number[key] = n = next(free)
            registry[n] = values[pid]
    return {"replicates": reps, "points": [{"point": n, "values": registry[n]} for n in sorted(registry)],
            "created": min(str(r.get("committed", _now())) for r in recs.values())}


def _adopt_legacy(store: Store, old: dict[str, Any], state: FolderState) -> list[str]:
    """Give commit records to the finished runs of a folder written before they existed.

    Its ``runs`` partition was always moved into place last, so a run with a
    readable ``runs`` partition and the other partitions present is finished.
    """
    import pyarrow.parquet as pq

    adopted, rows = [], {}
    for p in state.uncommitted:
        if p.parent.name != "runs":
            continue
        rid = p.stem
        try:
            if not all((store.path / t / f"{rid}.parquet").is_file() for t in ("shoppers", "events")):
                continue
            for t in ("shoppers", "events"):
                pq.read_metadata(store.path / t / f"{rid}.parquet")
            row = pq.read_table(p, columns=["arm", "point", "replicate", "seed"]).to_pylist()[0]
        except Exception:  # unreadable: not adopted, recomputed
            continue
        adopted.append(rid)
        rows[rid] = row
    store.adopt(adopted, rows, {"fomolab_version": old.get("fomolab_version"), "revision": None})
    state.commits.update({rid: {"run_id": rid, **rows[rid]} for rid in adopted})
    return adopted


def _manifest(experiment: Experiment, runs: list[RunSpec], registry: list[dict[str, Any]],
              old: dict[str, Any]) -> dict[str, Any]:
    seeds = sorted({(r.point, r.replicate, r.seed) for r in runs} |
                   {(s["point"], s["replicate"], s["seed"]) for s in old.get("seeds", [])})
    history = list(old.get("invocations", []))
    if not history and old.get("timings"):  # a folder of an earlier layout: keep what it recorded
        history = [{"fomolab_version": old.get("fomolab_version"), "revision": old.get("git_commit"),
                    "python": old.get("packages", {}).get("python"), "platform": old.get("platform"),
                    "packages": old.get("packages"), **t} for t in old["timings"]]
    return {
        "layout": LAYOUT,
        "fomolab_version": old.get("fomolab_version", __version__),
        "experiment": experiment.name,
        "description": experiment.description,
        "source": experiment.source,
        "spec_hash": experiment.spec_hash,
        "fingerprint": experiment.fingerprint,
        "master_seed": experiment.seed,
        "replicates": max(experiment.replicates, old.get("replicates", 0)),
        "arms": list(experiment.arms),
        "control": experiment.control,
        "runs": len({r.point for r in runs}) * len(experiment.arms) * max(experiment.replicates,
                                                                          old.get("replicates", 0)),
        "swept": experiment.swept,
        "sweep_design": experiment.sweep.design if experiment.sweep else None,
        "points": registry,
        "seeds": [{"point": p, "replicate": r, "seed": s} for p, r, s in seeds],
        "spec": experiment.spec,
        "created": old.get("created", _now()),
        "invocations": history,
    }


def _environment() -> dict[str, Any]:
    """Who is computing: fomolab version and revision, Python, platform, packages."""
    return {**provenance(), "python": sys.version.split()[0], "platform": platform.platform(),
            "packages": _versions()}


def _versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
