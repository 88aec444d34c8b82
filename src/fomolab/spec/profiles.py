"""Population profiles: named audiences a spec refers to (``profile = "mixed"``).

A profile is a TOML file with an optional ``description`` and
``[segments.NAME]`` tables, each a segment of viewers (see
:mod:`fomolab.population`).  A segment of a profile or of a spec may itself
start from a one-segment profile (``profile = "impulsive"``) and change some
of its keys.

Where profiles are found, in order:

1. an ``agents/`` folder in the spec's folder;
2. an ``agents/`` folder beside the spec's folder (``experiments/`` and
   ``agents/`` side by side, as in fomolab's own repository);
3. the profiles shipped with fomolab (``fomolab/profiles/*.toml``, read with
   :mod:`importlib.resources`, so they are found from any folder and any
   installation).

A bare name (``"mixed"``) is looked up as ``NAME.toml`` in each of them; a
path (``"my_agents/crowd.toml"``) is read relative to the spec's folder (or,
from inside a profile, the profile's folder), then in each of them.  A path
may not leave those folders: an absolute path or one with ``..`` is refused,
and a file that is not a profile is refused without showing what it holds.
"""

from __future__ import annotations

import copy
import re
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath
from typing import Any

from fomolab.spec.limits import LIMITS, loads
from fomolab.spec.problems import Problems, suggest

__all__ = ["packaged_profiles", "profile_dirs", "resolve_population", "find_profile"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_PROFILE_KEYS = ("description", "segments")


def packaged_profiles() -> Traversable:
    """The folder of the profiles shipped with fomolab."""
    return resources.files("fomolab").joinpath("profiles")


def profile_dirs(base_dir: Path | None) -> list[Path | Traversable]:
    """Folders searched for population profiles, in order.

    >>> profile_dirs(None)[-1].joinpath("mixed.toml").is_file()
    True
    """
    dirs: list[Path | Traversable] = []
    if base_dir is not None:
        dirs += list(dict.fromkeys([Path(base_dir) / "agents", Path(base_dir).parent / "agents"]))
    dirs.append(packaged_profiles())
    return dirs


def _known(dirs: list[Path | Traversable]) -> list[str]:
    names: set[str] = set()
    for d in dirs:
        try:
            if d.is_dir():
                names.update(p.name[:-5] for p in d.iterdir() if p.name.endswith(".toml") and p.is_file())
        except OSError:
            continue
    return sorted(names)


def _relative(name: str) -> PurePosixPath | None:
    """``name`` as a relative path inside a folder, or None if it would leave it."""
    text = name.replace("\\", "/")
    path = PurePosixPath(text)
    if path.is_absolute() or re.match(r"^[A-Za-z]:", text) or ".." in path.parts or not path.parts:
        return None
    return path


def find_profile(name: Any, here: Path | Traversable | None, base_dir: Path | None, problems: Problems,
                 where: str, source: str, *, in_profile: bool = False) -> tuple[Traversable, Traversable] | None:
    """The file of profile ``name`` and its folder, or None with the problem added.

    Parameters
    ----------
    name : object
        What the spec gives as ``profile``.
    here : Path or Traversable, optional
        Folder of the file that names the profile (the spec's or a profile's):
        a relative path starts there, and a profile's bare names are looked up
        there first.
    base_dir : Path, optional
        The spec's folder (its ``agents/`` folders are searched).
    problems : Problems
        The collector.
    where : str
        Key path of the ``profile`` key, for messages.
    source : str
        The file that names the profile, for messages.
    in_profile : bool
        ``name`` is given inside a profile (not the spec).
    """
    if not isinstance(name, str):
        problems.add(where, name, "must be the name or path of a profile (a string)", "wrong_type", file=source)
        return None
    dirs = profile_dirs(base_dir)
    is_path = _is_path(name)
    first = [here] if here is not None and (is_path or in_profile) else []
    search = first + [d for d in dirs if d not in first]
    if is_path:
        rel = _relative(name)
        if rel is None or not name.endswith(".toml"):
            problems.add(where, name, "a profile path must be relative, stay inside the spec's folder (no '..') "
                         "and end in .toml; or give the name of a profile in "
                         f"{_describe(dirs)}", "bad_profile", file=source)
            return None
        parts = rel.parts
    else:
        if not _NAME.match(name):
            problems.add(where, name, "a profile name has letters, digits, '_', '.' and '-' only "
                         "(or give a relative path ending in .toml)", "bad_profile", file=source)
            return None
        parts = (f"{name}.toml",)
    for d in search:
        c = d.joinpath(*parts)
        try:
            if c.is_file():
                return c, (c.parent if hasattr(c, "parent") else d)
        except OSError:
            continue
    known = _known(dirs)
    problems.add(where, name, f"unknown population profile{suggest(name.removesuffix('.toml'), known)}; "
                 f"profiles are TOML files in {_describe(dirs)} (known: {', '.join(known) or 'none'})",
                 "unknown_name", file=source)
    return None


def _is_path(name: str) -> bool:
    return name.endswith(".toml") or "/" in name or "\\" in name


def _describe(dirs: list[Path | Traversable]) -> str:
    out = [str(d) for d in dirs[:-1]]
    return ", ".join(out + ["the profiles shipped with fomolab"])


def _read_profile(file: Traversable, name: str, problems: Problems, where: str, source: str) -> dict[str, Any] | None:
    """The profile's tables, or None (with a problem that shows nothing of the file)."""
    def refuse(why: str, code: str = "bad_profile") -> None:
        problems.add(where, name, f"{file} is not a population profile: {why}", code, file=source)

    try:
        data = file.read_bytes()
    except OSError as exc:
        refuse(f"it cannot be read ({exc.strerror or type(exc).__name__})", "file_not_found")
        return None
    if len(data) > LIMITS["file_bytes"]:
        refuse(f"it is larger than {LIMITS['file_bytes']:,} bytes")
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        refuse("it is not UTF-8 text")
        return None
    inner = Problems(str(file))
    prof = loads(text, str(file), inner, "profile", show_line=False)
    if prof is None:
        refuse("it is not TOML a profile can be read from" if inner.items[0].code == "not_toml"
               else "its tables nest too deeply")
        return None
    extra = [k for k in prof if k not in _PROFILE_KEYS]
    segs = prof.get("segments")
    if extra or not isinstance(segs, dict) or not segs or not all(isinstance(s, dict) for s in segs.values()) \
            or not isinstance(prof.get("description", ""), str):
        refuse("a profile holds [segments.NAME] tables and an optional description, and nothing else")
        return None
    return prof


def resolve_population(pop: Any, source: str, base_dir: Path | None, problems: Problems,
                       where: str = "population", here: Path | Traversable | None = None,
                       seen: tuple[str, ...] = ()) -> Any:
    """Inline profiles: a population or segment naming ``profile`` gets its segments.

    Returns the population table with every profile's segments inlined (the
    table is returned as it is when it is not one; pydantic names that
    problem).  Problems are added to ``problems``; the population returned
    then is incomplete.
    """
    if not isinstance(pop, dict):
        return pop
    pop = dict(pop)
    segments = pop.get("segments", {})
    if not isinstance(segments, dict):
        return pop
    in_profile = here is not None
    here = here if here is not None else (Path(base_dir) if base_dir is not None else None)
    resolved: dict[str, Any] = {}
    if "profile" in pop:
        subs = _profile_segments(pop["profile"], source, base_dir, here, problems, f"{where}.profile".lstrip("."),
                                 seen, in_profile)
        if subs is not None:
            resolved.update(subs)
    for seg_name, seg in segments.items():
        if isinstance(seg, dict) and "profile" in seg:
            seg = dict(seg)
            name = seg.pop("profile")
            path = f"{where}.segments.{seg_name}.profile".lstrip(".")
            subs = _profile_segments(name, source, base_dir, here, problems, path, seen, in_profile)
            if subs is None:
                continue
            if len(subs) != 1:
                problems.add(path, name, f"a segment can inherit from a one-segment profile only; "
                             f"'{name}' has {len(subs)} segments", "inconsistent", file=source)
                continue
            base = copy.deepcopy(next(iter(subs.values())))
            base.update(seg)
            seg = base
        if isinstance(seg, dict) and isinstance(resolved.get(seg_name), dict):
            seg = {**resolved[seg_name], **seg}
        resolved[seg_name] = seg
    pop["segments"] = resolved
    return pop


def _profile_segments(name: Any, source: str, base_dir: Path | None, here: Any, problems: Problems,
                      where: str, seen: tuple[str, ...], in_profile: bool) -> dict[str, Any] | None:
    """The resolved segments of profile ``name`` (None with the problem added)."""
    if isinstance(name, str) and name in seen:
        problems.add(where, name, f"profiles refer to each other in a cycle: {' -> '.join(seen + (name,))}", "cycle",
                     file=source)
        return None
    found = find_profile(name, here, base_dir, problems, where, source, in_profile=in_profile)
    if found is None:
        return None
    file, folder = found
    prof = _read_profile(file, name, problems, where, source)
    if prof is None:
        return None
    inner = resolve_population({"segments": prof["segments"]}, str(file), base_dir, problems,
                               where="", here=folder, seen=seen + (name,))
    return copy.deepcopy(inner["segments"])
