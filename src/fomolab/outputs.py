"""Derived output folders: what ``analyze`` and ``report`` write, and nothing else.

The picture: a printer that only ever replaces its own printouts.  A derived
folder (``RESULTS/analysis``, ``RESULTS/report`` or the ``--out`` a user
gives) is built in a temporary folder beside its target and then renamed into
place, so a reader sees the old folder or the new one, never half of one.
Every folder written here carries a marker file, :data:`MARKER`, naming its
kind, the results folder it was drawn from and the files written; a folder is
replaced only when it carries a marker of the same kind and holds nothing but
the files that marker lists.  So no command deletes a file it did not create.

Refused, with a :class:`~fomolab.errors.ResultsError` and nothing written or
deleted:

* a target that is a results folder (it has ``manifest.json`` or run
  partitions), the results folder itself or any folder that contains it;
* a target inside one of the results folder's partition folders;
* a target that is a file or a symbolic link;
* a non-empty folder without this kind's marker, or one that holds files the
  marker does not list (they were put there by someone else).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import tempfile
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path

from fomolab.errors import ResultsError

__all__ = ["MARKER", "KINDS", "write_output", "check_target"]

#: The marker file of every folder this module writes.
MARKER = ".fomolab-output.json"
#: The kinds of derived folder, each with what makes one.
KINDS = {"analysis": "fomolab analyze", "report": "fomolab report"}
#: Folders and files that make a folder a results folder.
_RESULTS_SIGNS = ("manifest.json", ".lock", "runs", "shoppers", "events", "streams", "stream_series", "failures",
                  "commits", ".staging")
#: Partition folders of a results folder, where no derived output may go.
_PARTITIONS = ("runs", "shoppers", "events", "streams", "stream_series", "failures", "commits", ".staging")


def _is_within(path: Path, folder: Path) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it (both resolved)."""
    return path == folder or folder in path.parents


def _marker(folder: Path) -> dict | None:
    """The folder's marker, or None when it has none (or an unreadable one)."""
    try:
        data = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        return None
    return data


def _files(folder: Path) -> set[str]:
    """Every file and link below ``folder``, as POSIX paths relative to it."""
    out = set()
    for root, dirs, files in os.walk(folder):
        rel = Path(root).relative_to(folder)
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            out.add((rel / name).as_posix())
    return out


def check_target(target: str | Path, kind: str, results: str | Path) -> Path:
    """Check that ``kind`` output of the results folder ``results`` may be written to ``target``.

    Parameters
    ----------
    target : path
        The folder to write (created or replaced).
    kind : {"analysis", "report"}
        What is written.
    results : path
        The results folder the output is drawn from.

    Returns
    -------
    pathlib.Path
        The target, as given.

    Raises
    ------
    ResultsError
        If writing there could overwrite results or files fomolab did not write
        (see the module's docstring); nothing is written or deleted.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {sorted(KINDS)}: {kind!r}")
    target = Path(target)
    res = Path(results).resolve()
    where = target.resolve()
    what = KINDS[kind]
    if _is_within(res, where):
        raise ResultsError(
            f"{target}: is the results folder {res} or a folder that contains it; {what} never writes "
            f"over results: choose a new folder for --out (default: {res / kind})")
    for part in _PARTITIONS:
        if _is_within(where, res / part):
            raise ResultsError(f"{target}: is inside the results folder's {part}/ partitions; choose another "
                               f"folder for --out (default: {res / kind})")
    if target.is_symlink():
        raise ResultsError(f"{target}: is a symbolic link; {what} writes a real folder: choose another --out")
    if not target.exists():
        return target
    if not target.is_dir():
        raise ResultsError(f"{target}: is a file, not a folder; choose another folder for --out")
    signs = [s for s in _RESULTS_SIGNS if (target / s).exists()]
    if signs:
        raise ResultsError(
            f"{target}: is a results folder (it has {', '.join(signs)}); {what} never writes over results: "
            f"choose a new folder for --out")
    present = _files(target)
    if not present:
        return target
    marker = _marker(target)
    if marker is None:
        raise ResultsError(
            f"{target}: is not empty and was not written by {what} (no {MARKER}); nothing is deleted: "
            f"choose a new or empty folder for --out, or move its files away (a folder written by "
            f"fomolab 0.1 has no marker: delete it once)")
    if marker.get("kind") != kind:
        raise ResultsError(
            f"{target}: holds fomolab {marker.get('kind')!r} output, not {kind!r}; choose another folder "
            f"for --out")
    foreign = sorted(present - set(marker["files"]) - {MARKER})
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise ResultsError(
            f"{target}: holds files that {what} did not write ({shown}); nothing is deleted: move them "
            f"away, or choose another folder for --out")
    return target


def write_output(target: str | Path, kind: str, results: str | Path, fill: Callable[[Path], None]) -> Path:
    """Write a derived folder atomically: ``fill(tmp)`` builds it, a rename puts it in place.

    Parameters
    ----------
    target : path
        The folder to create or replace (see :func:`check_target`).
    kind : {"analysis", "report"}
        What is written; recorded in the folder's marker.
    results : path
        The results folder the output is drawn from; recorded in the marker.
    fill : callable
        ``fill(folder)`` writes the output's files into ``folder`` (a fresh,
        empty folder beside the target).

    Returns
    -------
    pathlib.Path
        The target.

    Raises
    ------
    ResultsError
        As :func:`check_target`, before anything is written.

    Notes
    -----
    A folder that replaced an older one is deleted file by file, only the files
    its marker lists; anything else found there is left in place with a warning.
    """
    target = check_target(target, kind, results)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; output is for reading
        fill(tmp)
        files = sorted(_files(tmp))
        marker = {"kind": kind, "written_by": KINDS[kind], "results": str(Path(results).resolve()),
                  "written": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"), "files": files}
        from fomolab import __version__

        marker["fomolab_version"] = __version__
        (tmp / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        check_target(target, kind, results)  # again: the folder may have changed while we built ours
        old = None
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:12]}"
            os.rename(target, old)
        os.rename(tmp, target)
    except BaseException:
        _remove(tmp, None)
        raise
    if old is not None:
        _remove(old, _marker(old) or {"files": []})
    return target


def _remove(folder: Path, marker: dict | None) -> None:
    """Delete the files of a folder this module built (all, or the marker's), then its empty folders."""
    if not folder.exists():
        return
    listed = None if marker is None else set(marker["files"]) | {MARKER}
    for root, dirs, files in os.walk(folder, topdown=False):
        for name in files + [d for d in dirs if (Path(root) / d).is_symlink()]:
            path = Path(root) / name
            if listed is None or path.relative_to(folder).as_posix() in listed:
                path.unlink(missing_ok=True)
        for d in dirs:
            with contextlib.suppress(OSError):  # not empty: it holds files we did not write
                (Path(root) / d).rmdir()
    try:
        folder.rmdir()
    except OSError:
        warnings.warn(f"{folder}: left in place: it holds files fomolab did not write", RuntimeWarning,
                      stacklevel=3)
