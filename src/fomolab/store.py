"""The store: a results folder of Parquet partitions, commit records and a manifest.

The picture: a lab notebook that is never torn, kept by one writer at a time.
Each run is written as its own partition (one Parquet file per table, named by
the run id), staged in ``.staging/`` and moved into place with atomic renames;
then, last, its *commit record* ``commits/<run_id>.json`` is written, holding
the size and SHA-256 of every partition and the fomolab version and revision
that computed it.  A run is finished exactly when its commit record exists and
its partitions still match it.  A crash leaves at worst staged files and
uncommitted partitions, which readers ignore and the next run overwrites;
finished runs are never touched, and damaged ones (a partition deleted,
truncated or replaced) are found and recomputed by the next ``fomolab run``.
A run with nothing left to compute compares sizes only (one ``stat`` per
partition; a partition overwritten with the same size is found by
``fomolab check``, which reads every checksum, and by the next run with
work to do, which verifies them all before computing), and takes the commit
records from the writer's cache while the commit folder is unchanged.

One writer at a time: a writer holds an exclusive ``flock`` on ``DIR/.lock``
for its whole invocation (the kernel releases it when the process dies, however
it dies); a second writer is refused at once with the holder's pid.  A new
folder is built as a hidden sibling ``.DIR.creating-<uuid>`` (locked, with its
manifest) and renamed into place, so a kill at any moment leaves no folder or
a folder that resumes; a stranded sibling is removed by the next writer.

A folder belongs to one experiment: its ``manifest.json`` records the resolved
spec and its fingerprint.  Opening the folder for a spec with another
spec is refused, with the keys that differ and their old and new values;
descriptions may change, and replicates, sweep points and arms may be added
(:mod:`fomolab.changes` has the rules).  Readers (:class:`~fomolab.Results`, ``analyze``,
``report``) take no lock and never write into the run partitions.

Layout::

    DIR/manifest.json                   the experiment and the history of invocations
    DIR/.lock                           the writer's lock (pid and host of the last writer)
    DIR/commits/<run_id>.json           commit record of each finished run
    DIR/runs/<run_id>.parquet           one row per run
    DIR/shoppers/<run_id>.parquet       one row per viewer visit
    DIR/events/<run_id>.parquet         one row per event
    DIR/streams/<run_id>.parquet        marketplace runs: one row per stream
    DIR/stream_series/<run_id>.parquet  marketplace runs: per stream and minute
    DIR/products/<run_id>.parquet       the run's stored facts: products, tactics switched on, tactic windows
    DIR/tactics/<run_id>.parquet
    DIR/windows/<run_id>.parquet
    DIR/exposure/<run_id>.parquet       the run's stored aggregates (fomolab.aggregates): person-time,
    DIR/sales/<run_id>.parquet          purchases and spend per segment (and product) and minute, and
    DIR/purchase_times/<run_id>.parquet each buyer's time to first purchase
    DIR/failures/<run_id>.parquet       runs that raised (removed once they succeed)
    DIR/index/                          the runs and aggregate tables of all finished runs, one file each
                                        (derived, rewritten by the writer; see fomolab.aggregates), and
                                        commits.json, the commit records (Store.cache_records)
    DIR/.staging/                       partitions being written
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fomolab.aggregates import AGGREGATE_TABLES, INDEX, RECORDS, aggregate
from fomolab.errors import ResultsError
from fomolab.spec import Experiment

if TYPE_CHECKING:  # the recorder imports pandas, which re-running a finished folder does not need
    from fomolab.recorder import Tables

__all__ = ["Store", "FolderState", "TABLES", "MARKET_TABLES", "LAYOUT", "spec_differences", "provenance",
           "is_disk_full"]

#: Tables of every run.
TABLES = ("shoppers", "events", "runs")
#: Tables only a marketplace run has.
MARKET_TABLES = ("streams", "stream_series")
#: The run's stored facts, as ``fomolab.recorder.FACT_TABLES`` names them (not imported: it imports pandas).
FACT_TABLES = ("products", "tactics", "windows", "product_results")
#: Folders of a results folder that hold one file per run.
RUN_FOLDERS = (*TABLES, *MARKET_TABLES, *FACT_TABLES, *AGGREGATE_TABLES, "failures", "commits")
MANIFEST = "manifest.json"
LOCK = ".lock"
STAGING = ".staging"
COMMITS = "commits"
#: Version of the folder layout (the manifest's ``layout``): 2 has commit records.
LAYOUT = 2
#: Version of the commit record format.
COMMIT_FORMAT = 1
#: What fomolab itself puts at the top of a folder (anything else is the user's).
KNOWN_TOP = {MANIFEST, LOCK, STAGING, INDEX, *RUN_FOLDERS, "analysis", "report"}
_RUN_ID = re.compile(r"^[0-9a-f]{20}$")
_CREATING = ".creating-"
_BORN = ".born-"
#: Rows per Parquet row group (pyarrow's default): big tables are converted and written one group at a time.
ROW_GROUP_ROWS = 1 << 20
#: Attempts to take the writer lock, 10 ms apart, before a writer is refused.
LOCK_TRIES = 20


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is an out-of-space (or out-of-quota) error."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


@lru_cache(maxsize=1)
def provenance() -> dict[str, Any]:
    """The fomolab version and code revision of the running package.

    The version is ``fomolab.__version__``; the revision is the VCS commit the
    installed distribution was built from, as pip records it in
    ``direct_url.json`` (``pip install git+https://...@REV``), or None when the
    installation does not record one (a wheel, an sdist, a local or editable
    install).  The surrounding directory is never asked (it may be any
    repository).
    """
    from importlib import metadata

    from fomolab import __version__

    revision = None
    try:
        text = metadata.distribution("fomolab").read_text("direct_url.json")
        if text:
            revision = json.loads(text).get("vcs_info", {}).get("commit_id")
    except (metadata.PackageNotFoundError, ValueError, AttributeError):
        revision = None
    return {"fomolab_version": __version__, "revision": revision}


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


@dataclass
class FolderState:
    """What a results folder holds, as :meth:`Store.inspect` found it.

    Attributes
    ----------
    commits : dict
        Sound finished runs: run id -> commit record.
    damaged : dict
        Committed runs whose partitions no longer match their commit record (or
        whose record is unreadable): run id -> reason.
    uncommitted : list of Path
        Partitions without a commit record (an interrupted write); ignored by
        readers, overwritten by the next run.
    foreign : list of Path
        Files in the table folders that fomolab did not write; ignored by readers.
    stranded : list of Path
        Hidden ``.DIR.creating-*`` siblings left by a writer killed while it
        created the folder; removed by the next writer.
    checksums : bool
        Whether the partitions' checksums were verified (else only their sizes).
    records : str or None
        A digest of the commit directory's state (each record's name, size,
        modification time and inode) when every record was readable and no run
        is damaged, else None: the key under which the writer caches the
        records (:meth:`Store.cache_records`).
    records_cached : bool
        Whether the commit records were taken from that cache.
    """

    commits: dict[str, dict[str, Any]] = field(default_factory=dict)
    damaged: dict[str, str] = field(default_factory=dict)
    uncommitted: list[Path] = field(default_factory=list)
    foreign: list[Path] = field(default_factory=list)
    stranded: list[Path] = field(default_factory=list)
    checksums: bool = False
    records: str | None = None
    records_cached: bool = False

    def damage_summary(self) -> str:
        """How many runs are damaged and why, in one phrase."""
        why: dict[str, int] = {}
        for reason in self.damaged.values():
            kind = reason.split(":", 1)[0]
            why[kind] = why.get(kind, 0) + 1
        parts = [f"{n} {k}" for k, n in sorted(why.items(), key=lambda kv: -kv[1])]
        n = len(self.damaged)
        return f"{n} finished run{'s' * (n != 1)} damaged ({', '.join(parts)})"


class _Lock:
    """An exclusive ``flock`` on a lock file, holding the holder's pid and host."""

    def __init__(self, file: Path, folder: Path) -> None:
        self.file = file
        self.folder = folder
        self.fd: int | None = None

    def acquire(self) -> None:
        import fcntl

        fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(LOCK_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
                if attempt < LOCK_TRIES - 1:  # a reader's probe (`fomolab check`) holds it for an instant
                    time.sleep(0.01)
        else:
            os.close(fd)
            raise ResultsError(
                f"{self.folder}: is being written by another fomolab process ({holder(self.file)}); "
                "one writer at a time: wait for it to finish (or stop it) and run the command again, "
                "or write to another folder with --out"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}).encode())
        except OSError:  # a full disk: give the lock back
            os.close(fd)
            raise
        self.fd = fd

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


def holder(lock_file: Path) -> str:
    """Who holds (or last held) a lock file, for messages: ``pid 123 on host``."""
    for _ in range(20):  # the holder writes its pid just after taking the lock
        try:
            info = json.loads(lock_file.read_text() or "{}")
        except (OSError, ValueError):
            info = {}
        if info.get("pid"):
            return f"pid {info['pid']} on {info.get('host', '?')}, since {info.get('since', '?')}"
        time.sleep(0.01)
    return "pid unknown"


def writer_active(path: Path) -> str | None:
    """The holder of a folder's writer lock if a writer is running now, else None (writes nothing)."""
    import fcntl

    lock = Path(path) / LOCK
    try:
        fd = os.open(lock, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return holder(lock)
    finally:
        os.close(fd)
    return None


class Store:
    """A results folder, opened for one experiment."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock: _Lock | None = None
        self._creating: Path | None = None  # the hidden sibling a new folder is built in

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # -- opening ------------------------------------------------------------
    @classmethod
    def open_for(cls, path: str | Path, experiment: Experiment) -> Store:
        """Check that ``path`` can hold ``experiment`` (writing nothing, taking no lock).

        Raises
        ------
        ResultsError
            If the folder holds another experiment, or files that are not a
            fomolab results folder.
        """
        store = cls(path)
        store.check_folder()
        try:
            store.check_for(experiment)
        except ResultsError:
            busy = writer_active(store.path)
            if busy:  # the folder is another experiment's, being written now: say who holds it
                raise ResultsError(f"{store.path}: is being written by another fomolab process ({busy}); "
                                   "one writer at a time: write to another folder with --out") from None
            raise
        return store

    def check_folder(self) -> None:
        """Refuse a path that is a file, or a folder with files that are not fomolab's."""
        if self.path.exists() and not self.path.is_dir():
            raise ResultsError(f"{self.path}: is a file, not a results folder; choose another --out")
        if self.path.is_dir() and not self.has_manifest() and not self.looks_like_results():
            raise ResultsError(
                f"{self.path}: is not empty and has no {MANIFEST}, so it is not a fomolab results "
                f"folder; choose an empty or new folder with --out"
            )

    def check_for(self, experiment: Experiment) -> None:
        """Refuse a folder that holds another experiment (see :mod:`fomolab.changes` for what may change).

        Descriptive keys never block; more replicates, sweep points and arms
        that leave the finished runs as they are extend the folder; any other
        change is refused, naming each changed key with its old and new value.
        """
        if self.has_manifest():
            from fomolab.changes import compare

            old = self.manifest()
            verdict = compare(old.get("spec", {}), old.get("points"), experiment)
            if not verdict.allowed:
                shown = "; ".join(verdict.refused[:20])
                more = f"; and {len(verdict.refused) - 20} more" if len(verdict.refused) > 20 else ""
                raise ResultsError(
                    f"{self.path}: holds results of a different experiment "
                    f"({old.get('experiment', '?')}, spec {str(old.get('spec_hash', '?'))[:12]}); "
                    f"what changed: {shown or 'the spec'}{more}. Finished results are never overwritten: "
                    "write to a new folder with --out NEW_DIR (a folder takes more replicates, sweep points "
                    "and arms, and edited descriptions; nothing else)"
                )

    def has_manifest(self) -> bool:
        """Whether the folder has a manifest."""
        return (self.path / MANIFEST).is_file()

    def looks_like_results(self) -> bool:
        """Whether everything in the folder is fomolab's (an empty folder too).

        A folder that lost its manifest still qualifies: its manifest can be
        rebuilt from the spec (``fomolab run SPEC --out DIR``).
        """
        if not self.path.is_dir():
            return True
        for p in self.path.iterdir():
            if p.name in KNOWN_TOP or p.name.startswith(f".{MANIFEST}."):
                continue
            return False
        return True

    # -- the writer's lock ----------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[Store]:
        """Hold the folder's writer lock for the ``with`` block.

        For a folder that does not exist yet, the lock is taken in a hidden
        sibling ``.DIR.creating-<uuid>`` that :meth:`create` renames into
        place (the lock moves with it).  Stranded siblings of dead writers
        are removed.

        Raises
        ------
        ResultsError
            If another process is writing the folder (with its pid), or the
            folder cannot be created.
        """
        if self._lock is not None:
            raise ResultsError(f"{self.path}: this Store already holds the writer lock")
        try:
            if self.path.is_dir():
                lock = _Lock(self.path / LOCK, self.path)
                lock.acquire()
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.clean_stranded()
                # locked before it is visible as a sibling being created, so that no other
                # writer takes it for a stranded one
                tag = uuid.uuid4().hex[:12]
                born = self.path.parent / f".{self.path.name}{_BORN}{tag}"
                born.mkdir()
                self._creating = born
                lock = _Lock(born / LOCK, self.path)
                lock.acquire()
                self._creating = self.path.parent / f".{self.path.name}{_CREATING}{tag}"
                os.rename(born, self._creating)
        except OSError as exc:
            self._discard_creating()
            what = "lock" if self.path.is_dir() else "create"
            raise ResultsError(f"{self.path}: cannot {what} the results folder: {exc.strerror or exc}"
                               + ("; free some space and run the command again" if is_disk_full(exc) else "")
                               ) from None
        self._lock = lock
        try:
            yield self
        finally:
            self._discard_creating()
            lock.release()
            self._lock = None

    def _discard_creating(self) -> None:
        if self._creating is not None:
            shutil.rmtree(self._creating, ignore_errors=True)
            self._creating = None

    def stranded(self) -> list[Path]:
        """Hidden siblings of this folder left by writers killed while creating it."""
        parent = self.path.parent
        if not parent.is_dir():
            return []
        name = glob_escape(self.path.name)
        return sorted([*parent.glob(f".{name}{_CREATING}*"), *parent.glob(f".{name}{_BORN}*")])

    def clean_stranded(self) -> None:
        """Remove the stranded siblings whose writer is dead (its lock is free)."""
        import fcntl
        for p in self.stranded():
            if _BORN in p.name:  # being locked right now, or stranded in that instant long ago
                with contextlib.suppress(OSError):
                    if time.time() - p.stat().st_mtime > 60:
                        shutil.rmtree(p, ignore_errors=True)
                continue
            try:
                fd = os.open(p / LOCK, os.O_RDWR)
            except OSError:
                continue  # not one of ours: a creating sibling is locked from birth
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue  # a live writer is creating it now
            else:
                shutil.rmtree(p, ignore_errors=True)
            finally:
                os.close(fd)

    def create(self, manifest: dict[str, Any]) -> None:
        """Create the folder (atomically, if new) with ``manifest``, or write the manifest.

        Must be called with the lock held.  A new folder is complete with its
        manifest before it appears under its name.
        """
        if self._lock is None:
            raise ResultsError(f"{self.path}: Store.create needs the writer lock (use `with store.lock():`)")
        if self._creating is None:
            for name in (*TABLES, COMMITS, "failures", STAGING):
                (self.path / name).mkdir(exist_ok=True)
            self.write_manifest(manifest)
            return
        tmp = self._creating
        try:
            for name in (*TABLES, COMMITS, "failures", STAGING):
                (tmp / name).mkdir(exist_ok=True)
            _write_json(tmp / MANIFEST, manifest)
        except OSError as exc:
            raise ResultsError(f"{self.path}: cannot create the results folder: {exc.strerror or exc}"
                               + ("; nothing was kept: free some space and run the command again"
                                  if is_disk_full(exc) else "")) from None
        try:
            os.rename(tmp, self.path)
        except OSError:
            other = holder(self.path / LOCK) if (self.path / LOCK).exists() else "unknown"
            raise ResultsError(
                f"{self.path}: was created by another fomolab process ({other}) at the same time; "
                "one writer at a time: run the command again once it has finished (it resumes that folder), "
                "or write to another folder with --out"
            ) from None
        self._creating = None

    # -- manifest -----------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        """The folder's manifest."""
        try:
            manifest: dict[str, Any] = json.loads((self.path / MANIFEST).read_text())
        except FileNotFoundError:
            raise ResultsError(f"{self.path}: no {MANIFEST}; not a fomolab results folder "
                               "(run `fomolab run` first)") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ResultsError(f"{self.path / MANIFEST}: is not valid JSON ({exc}); it can be rebuilt from the "
                               f"spec: remove it and run `fomolab run SPEC --out {self.path}`") from None
        return manifest

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Write the manifest atomically."""
        _write_json(self.path / MANIFEST, manifest)

    # -- runs ---------------------------------------------------------------
    def finished(self) -> set[str]:
        """Run ids that have a commit record (not verified: see :meth:`inspect`)."""
        try:
            with os.scandir(self.path / COMMITS) as it:
                return {e.name[:-5] for e in it if e.name.endswith(".json") and _RUN_ID.match(e.name[:-5])}
        except (FileNotFoundError, NotADirectoryError):
            return set()

    def commit_record(self, run_id: str) -> dict[str, Any]:
        """A run's commit record (``ValueError`` or ``OSError`` if unreadable)."""
        with open(os.path.join(self.path, COMMITS, f"{run_id}.json"), encoding="utf-8") as f:
            rec = json.load(f)
        if not isinstance(rec, dict) or rec.get("run_id") != run_id or not isinstance(rec.get("partitions"), dict):
            raise ValueError("not a commit record of this run")
        return rec

    def inspect(self, checksums: bool = False) -> FolderState:
        """Verify every commit record against its partitions.

        Parameters
        ----------
        checksums : bool
            Also recompute each partition's SHA-256 (reads every byte); else
            only sizes are compared (one ``stat`` per partition).
        """
        state = FolderState(checksums=checksums, stranded=self.stranded())
        listing: dict[str, dict[str, os.DirEntry[str]]] = {}  # one directory scan per table folder
        for name in RUN_FOLDERS:
            try:
                with os.scandir(self.path / name) as it:
                    listing[name] = {e.name: e for e in it}
            except (FileNotFoundError, NotADirectoryError):
                continue
        entries = listing.get(COMMITS, {})
        rids = sorted(n[:-5] for n in entries if n.endswith(".json") and _RUN_ID.match(n[:-5]))
        fingerprint = _fingerprint(entries, rids)  # taken before the records are read
        cached = None if checksums or fingerprint is None else self._cached_records(fingerprint)
        state.records_cached = cached is not None
        for rid in rids:
            try:
                rec = cached[rid] if cached is not None else self.commit_record(rid)
            except (OSError, ValueError, UnicodeDecodeError, KeyError):
                state.damaged[rid] = "commit record unreadable"
                continue
            reason = self._verify(rid, rec, checksums, listing)
            if reason:
                state.damaged[rid] = reason
            else:
                state.commits[rid] = rec
        committed = set(state.commits) | set(state.damaged)
        for name, entries in listing.items():
            d = self.path / name
            ext = ".json" if name == COMMITS else ".parquet"
            for fname, e in entries.items():
                if not (e.is_file() and fname.endswith(ext) and _RUN_ID.match(fname[:-len(ext)])):
                    state.foreign.append(d / fname)
                elif name not in (COMMITS, "failures") and fname[:-len(ext)] not in committed:
                    state.uncommitted.append(d / fname)
        state.foreign.sort()
        state.uncommitted.sort()
        state.records = fingerprint if not state.damaged else None
        return state

    def _cached_records(self, fingerprint: str) -> dict[str, dict[str, Any]] | None:
        """The commit records the writer cached under ``fingerprint``, or None if the cache is of another state."""
        try:
            with open(self.path / INDEX / RECORDS, encoding="utf-8") as f:
                cache = json.load(f)
        except (OSError, ValueError, UnicodeDecodeError):
            return None
        if not isinstance(cache, dict) or cache.get("format") != COMMIT_FORMAT \
                or cache.get("fingerprint") != fingerprint or not isinstance(cache.get("records"), dict):
            return None
        records: dict[str, dict[str, Any]] = cache["records"]
        for rid, rec in records.items():
            if not isinstance(rec, dict) or rec.get("run_id") != rid or not isinstance(rec.get("partitions"), dict):
                return None
        return records

    def cache_records(self, state: FolderState) -> None:
        """Cache the commit records of ``state`` in ``DIR/index/`` for the next :meth:`inspect` (the writer).

        One file instead of one per run; :meth:`inspect` uses it only while
        the commit directory is as it was when the records were read (each
        record's name, size, modification time and inode; a writer replaces
        a record, never edits it), and never when it verifies checksums.
        Nothing is written for a state with damaged runs, or one read from
        the cache.  Best effort: the cache is derived data.
        """
        if self._lock is None:
            raise ResultsError(f"{self.path}: Store.cache_records needs the writer lock (use `with store.lock():`)")
        if state.records is None or state.records_cached or state.damaged:
            return
        with contextlib.suppress(OSError):
            (self.path / INDEX).mkdir(exist_ok=True)
            _write_json(self.path / INDEX / RECORDS, {"format": COMMIT_FORMAT, "fingerprint": state.records,
                                                      "records": state.commits}, indent=None)

    def _verify(self, run_id: str, rec: dict[str, Any], checksums: bool,
                listing: dict[str, dict[str, os.DirEntry[str]]]) -> str:
        for table, info in rec["partitions"].items():
            name = f"{run_id}.parquet"
            entry = listing.get(table, {}).get(name)
            try:
                if entry is None:
                    raise FileNotFoundError(name)
                size = entry.stat().st_size
            except OSError:
                return f"partition missing: {table}/{name}"
            if size != info.get("bytes"):
                return (f"partition size differs: {table}/{name} has {size} bytes, "
                        f"its commit record {info.get('bytes')}")
            if checksums and _digest(self.path / table / name) != info.get("sha256"):
                return f"partition checksum differs: {table}/{name}"
        return ""

    def discard(self, run_ids: set[str] | list[str]) -> None:
        """Forget runs (remove their commit records) so that they are computed again."""
        for rid in run_ids:
            (self.path / COMMITS / f"{rid}.json").unlink(missing_ok=True)

    def write_run(self, run_id: str, tables: Tables) -> None:
        """Write one run's tables, then its commit record (last).

        Partitions are staged, checksummed and moved into place with atomic
        renames; the commit record is written only once all of them are in
        place.  An existing commit record of the run is removed first, so a
        run being rewritten is never taken as finished.
        """
        stage = self.path / STAGING / f"{run_id}.{uuid.uuid4().hex[:8]}"
        stage.mkdir(parents=True)
        first: dict[str, Any] = {}
        try:
            parts: dict[str, dict[str, Any]] = {}
            named = list(tables.parts())  # the stored aggregates too, before ``runs`` (moved into place last)
            for name, df in [*named[:-1], *aggregate(tables).items(), named[-1]]:
                f = stage / f"{name}.parquet"
                write_parquet(df, f)
                parts[name] = {"bytes": f.stat().st_size, "sha256": _digest(f)}
                if name == "runs":
                    first = df.iloc[0].to_dict() if len(df) else {}
            (self.path / COMMITS).mkdir(exist_ok=True)
            self.discard([run_id])
            for name in parts:
                (self.path / name).mkdir(exist_ok=True)
                os.replace(stage / f"{name}.parquet", self.path / name / f"{run_id}.parquet")
            record = {
                "format": COMMIT_FORMAT, "run_id": run_id,
                **{k: _plain(first.get(k)) for k in ("arm", "point", "replicate", "seed")},
                "committed": _now(), **provenance(), "partitions": parts,
            }
            tmp = stage / "commit.json"
            _write_json(tmp, record, indent=None)
            os.replace(tmp, self.path / COMMITS / f"{run_id}.json")  # the run is finished from here on
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        failed = self.path / "failures" / f"{run_id}.parquet"
        failed.unlink(missing_ok=True)

    def adopt(self, run_ids: list[str], rows: dict[str, dict[str, Any]], origin: dict[str, Any]) -> None:
        """Write commit records for runs whose partitions exist but have none.

        For folders written before commit records existed: their ``runs``
        partition was moved in last, so a run with one is finished.
        ``rows`` gives each run's arm, point, replicate and seed; ``origin``
        the version and revision recorded for it.
        """
        (self.path / COMMITS).mkdir(exist_ok=True)
        for rid in run_ids:
            parts = {}
            for name in (*TABLES[:-1], *MARKET_TABLES, "runs"):
                p = self.path / name / f"{rid}.parquet"
                if p.is_file():
                    parts[name] = {"bytes": p.stat().st_size, "sha256": _digest(p)}
            record = {"format": COMMIT_FORMAT, "run_id": rid, **rows[rid], "committed": _now(), **origin,
                      "adopted": True, "partitions": parts}
            _write_json(self.path / COMMITS / f"{rid}.json", record, indent=None)

    def write_failure(self, run_id: str, row: dict[str, Any]) -> None:
        """Record a run that raised (replaced if it fails again).

        Best effort: if the record cannot be written (a full disk), the run is
        still not finished and is retried next time; the parent learns of the
        failure from the run's outcome.
        """
        import pandas as pd

        tmp = self.path / STAGING / f"{run_id}.failure.{uuid.uuid4().hex[:8]}.parquet"
        try:
            pd.DataFrame([row]).to_parquet(tmp, index=False)
            os.replace(tmp, self.path / "failures" / f"{run_id}.parquet")
        except OSError:
            tmp.unlink(missing_ok=True)

    def clean_staging(self) -> None:
        """Remove what interrupted writers left behind."""
        shutil.rmtree(self.path / STAGING, ignore_errors=True)
        (self.path / STAGING).mkdir(exist_ok=True)


def _fingerprint(entries: dict[str, os.DirEntry[str]], rids: list[str]) -> str | None:
    """A digest of the commit records' names, sizes, modification times and inodes (None if one vanished)."""
    h = hashlib.sha256()
    for rid in rids:
        try:
            st = entries[f"{rid}.json"].stat()
        except OSError:
            return None
        h.update(f"{rid} {st.st_size} {st.st_mtime_ns} {st.st_ino}\n".encode())
    return h.hexdigest()


def write_parquet(table: Any, path: Path, rows: int = ROW_GROUP_ROWS) -> None:
    """Write a DataFrame or :class:`~fomolab.recorder.Columns` to Parquet, one row group of ``rows`` at a time.

    Each row group is converted to Arrow on its own, so a big table is never
    held whole in Arrow (nor, for ``Columns``, in pandas).  With pyarrow's own
    row-group size the file is the one ``pyarrow.parquet.write_table`` writes
    for the whole table.  Conversion uses one thread: runs are already
    parallel across workers.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fomolab.recorder import Columns

    if isinstance(table, Columns):
        frames: Iterator[Any] = table.frames(rows)
    elif len(table) <= rows or any(dt == np.dtype(object) for dt in table.dtypes):  # text: typed from the whole table
        frames = iter([table])
    else:
        frames = (table.iloc[k:k + rows] for k in range(0, len(table), rows))
    writer = None
    try:
        for df in frames:
            part = pa.Table.from_pandas(df, preserve_index=False, nthreads=1)
            if writer is None:
                writer = pq.ParquetWriter(path, part.schema)
            writer.write_table(part, row_group_size=rows)
            del part
    finally:
        if writer is not None:
            writer.close()


def _plain(v: Any) -> Any:
    """A numpy scalar as a plain Python value (for JSON)."""
    return v.item() if hasattr(v, "item") else v


def _write_json(path: Path, obj: Any, indent: int | None = 2) -> None:
    """Write JSON atomically (a temporary file beside it, then a rename)."""
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex}"
    try:
        tmp.write_text(json.dumps(obj, indent=indent, sort_keys=False, default=str))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def glob_escape(name: str) -> str:
    """``name`` with glob metacharacters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def spec_differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted paths where two resolved specs differ, with both values.

    >>> spec_differences({"a": {"b": 1, "c": 2}}, {"a": {"b": 1, "c": 3}})
    ['a.c: 2 -> 3']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            p = f"{path}.{k}" if path else str(k)
            if k not in new:
                out.append(f"{p}: removed")
            elif k not in old:
                out.append(f"{p}: added")
            else:
                out += spec_differences(old[k], new[k], p)
        return out
    return [] if old == new else [f"{path}: {old!r} -> {new!r}"]
