"""Problems of a spec: collected, then raised together as one SpecError.

Validation does not stop at the first broken rule: each stage adds the
problems it finds to a :class:`Problems` collector, and the spec is refused
with all of them at once.  pydantic's errors are translated from their
structured form (the error ``type`` and its ``ctx``), never from pydantic's
English ``msg``, so a pydantic upgrade leaves the messages and codes as
they are.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from fomolab.errors import MISSING, SpecError, SpecProblem

__all__ = ["Problems", "format_path", "suggest", "translate", "value_at"]

#: Most problems listed; the rest are counted in one last line.
MAX_PROBLEMS = 50


class Problems:
    """A collector of the problems of one spec.

    Problems are kept in the order found; a second problem at the same key
    path with the same code is dropped (a value broken at the top is not
    reported again by every arm that inherits it).
    """

    def __init__(self, source: str, *, strict: bool = True) -> None:
        self.source = source
        #: validate in pydantic's strict mode (see :func:`fomolab.spec.parse.parse_spec`)
        self.strict = strict
        self.items: list[SpecProblem] = []
        self._seen: set[tuple[str, str, str]] = set()
        #: problems added, duplicates included (a stage compares it before and after)
        self.attempts = 0

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, path: str, value: Any, rule: str, code: str, *, file: str | None = None,
            key: str | None = None, same_as: str | Sequence[str] | None = None) -> None:
        """Add a problem at ``path``.

        ``key`` (default ``path``) identifies duplicates; a problem is also
        dropped when one with key ``same_as`` (or one of them) and the same
        code was added (an arm that repeats a problem of the spec's own
        scenario, or of the arm it builds on).
        """
        self.attempts += 1
        file = file if file is not None else self.source
        ident = (file, key if key is not None else path, code)
        alike = [same_as] if isinstance(same_as, str) else list(same_as or ())
        if ident in self._seen or any((file, k, code) in self._seen for k in alike):
            return
        self._seen.add(ident)
        self.items.append(SpecProblem(file, path, value, rule, code))

    def extend(self, problems: Iterable[SpecProblem]) -> None:
        for p in problems:
            self.add(p.path, p.value, p.rule, p.code, file=p.file)

    def covers(self, path: str) -> bool:
        """True if a problem was found at ``path`` or at a key above or below it."""
        return any(_related(path, p.path) for p in self.items)

    def raise_if_any(self) -> None:
        """Raise one :class:`SpecError` holding every problem found so far."""
        if not self.items:
            return
        items = self.items
        if len(items) > MAX_PROBLEMS:
            extra = len(items) - MAX_PROBLEMS
            items = items[:MAX_PROBLEMS] + [SpecProblem(
                self.source, "", f"{extra} more", f"{extra} more problems are not listed; fix these first",
                "invalid")]
        raise SpecError.of(items)


def format_path(loc: Sequence[Any]) -> str:
    """A key path as written in messages: ``a.b[2].c``.

    >>> format_path(["stream", "arrivals", "schedule", 1, "rate_per_s"])
    'stream.arrivals.schedule[1].rate_per_s'
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def value_at(data: Any, loc: Sequence[Any]) -> Any:
    """The value at ``loc`` in nested dicts and lists, or :data:`MISSING`."""
    node = data
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, (list, tuple)) and isinstance(part, int) and -len(node) <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        else:
            return MISSING
    return node


def suggest(word: Any, options: Iterable[Any]) -> str:
    """``"; did you mean 'x'?"`` for the nearest option, or ``""``."""
    close = difflib.get_close_matches(str(word), [str(o) for o in options], n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


# --------------------------------------------------------------------------
# pydantic's errors, from their types
# --------------------------------------------------------------------------

_TYPE_RULES = {
    "int_type": "must be a whole number (an integer, not a decimal or true/false)",
    "int_from_float": "must be a whole number (an integer, not a decimal)",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "dict_type": "must be a table",
    "list_type": "must be an array",
    "tuple_type": "must be an array",
    "none_required": "must not be given",
}

_BOUNDS = {
    "greater_than": ("too_small", "must be greater than {gt}"),
    "greater_than_equal": ("too_small", "must be greater than or equal to {ge}"),
    "less_than": ("too_large", "must be less than {lt}"),
    "less_than_equal": ("too_large", "must be less than or equal to {le}"),
}


def _tag_matches(tag: str, tp: Any) -> bool:
    if tag.startswith("function-") and tag.endswith("]"):
        tag = tag[:-1].rsplit(", ", 1)[-1]  # function-after[_ordered(), Range]: the model Range
    origin = typing.get_origin(tp)
    if origin is not None:
        return tag.startswith(f"{getattr(origin, '__name__', '')}[")
    return tag == getattr(tp, "__name__", "")


def clean_loc(model: Any, loc: Sequence[Any]) -> tuple[list[Any], list[tuple[int, Any]]]:
    """pydantic's ``loc`` without union-member tags, and where those tags were.

    The tags (``list[any]``, ``Range``, ``function-after[...]``) are found by
    walking the model's types, so a product named ``Range`` stays a key.
    Returns the cleaned loc and, per union, ``(position in the cleaned loc,
    the member type)``.
    """
    from fomolab.spec.paths import child_type

    out: list[Any] = []
    unions: list[tuple[int, Any]] = []
    tp: Any = model
    for part in loc:
        args = [a for a in typing.get_args(tp) if a is not type(None)] \
            if typing.get_origin(tp) in (typing.Union, types.UnionType) else []
        if len(args) > 1 and isinstance(part, str):
            match = next((a for a in args if _tag_matches(part, a)), None)
            if match is not None:
                unions.append((len(out), match))
                tp = match
                continue
        if tp is None and isinstance(part, str) and part.startswith(("function-", "lax-", "json-", "constrained-")):
            continue
        out.append(part)
        tp = child_type(tp, part) if tp is not None else None
    return out, unions


def translate(exc: ValidationError, data: Any, model: type[BaseModel], problems: Problems,
              prefix: str = "", loc_prefix: Sequence[Any] = (), key_prefix: str | None = None,
              skip: Sequence[str] = (), same_prefix: str | Sequence[str] | None = None,
              derived: dict[str, str] | None = None) -> None:
    """Add each of pydantic's errors of ``model.model_validate(data)`` to ``problems``.

    Parameters
    ----------
    exc : ValidationError
        pydantic's errors.
    data : object
        What was validated (the values shown are taken from it).
    model : type
        The model validated (for the valid keys of a table with an unknown one).
    problems : Problems
        The collector.
    prefix : str
        Text before each key path (``"arms.flash.set → "``).
    loc_prefix : sequence
        Keys of ``data`` within the spec, prepended to each path.
    key_prefix : str, optional
        Duplicate key of each problem is ``key_prefix + path``; default ``prefix``.
    skip : sequence of str
        Key paths already reported: an error at, above or below one is a
        consequence and is left out.
    same_prefix : str, optional
        A problem is dropped when one with key ``same_prefix + path`` was added.
    derived : dict, optional
        ``{path: source path}`` of keys filled from other keys: an error at
        (or above) a filled key whose source has an error is left out.
    """
    from fomolab.spec.paths import keys_at

    by_path: dict[str, list[Any]] = {}
    for err in exc.errors(include_url=False):
        loc, unions = clean_loc(model, err["loc"])
        if unions:
            # a union (``list | Range``): keep the member that fits the given value's shape
            at, member = unions[-1]
            given = value_at(data, loc[:at])
            is_model = isinstance(member, type) and issubclass(member, BaseModel)
            if (isinstance(given, dict) and not is_model) or (isinstance(given, list) and is_model):
                continue
        path = format_path(loc)
        if any(_related(path, s) for s in skip):
            continue
        by_path.setdefault(path, []).append({**err, "loc": loc})
    if derived:
        broken = list(by_path) + list(skip)

        def consequence(path: str) -> bool:
            return any((d == path or d.startswith((path + ".", path + "[")))
                       and any(_related(src, b) for b in broken if b != path)
                       for d, src in derived.items())

        by_path = {p: e for p, e in by_path.items() if not consequence(p)}
    for errs in by_path.values():
        # several type errors at one key (members of a union): one message
        for err in errs[:1] if all(e["type"] in _TYPE_RULES for e in errs) else errs:
            loc = list(err["loc"])
            value = value_at(data, loc)
            if value is MISSING and err["type"] != "missing":
                value = err.get("input", MISSING)
            code, rule = _rule(err, model, loc, value, keys_at)
            if isinstance(value, dict) and code in ("inconsistent", "invalid"):
                # a table's rule: show its plain values, not its sub-tables
                value = {k: v for k, v in value.items() if not isinstance(v, dict)} or value
            full = format_path([*loc_prefix, *loc])
            problems.add(prefix + full, value, rule, code,
                         key=(key_prefix if key_prefix is not None else prefix) + full,
                         same_as=[s + full for s in _listed(same_prefix)])


def _listed(x: str | Sequence[str] | None) -> list[str]:
    return [] if x is None else [x] if isinstance(x, str) else list(x)


def _related(path: str, other: str) -> bool:
    """``path`` is ``other``, or a key above or below it."""
    if not other:
        return True
    return (path == other or path.startswith((other + ".", other + "["))
            or other.startswith((path + ".", path + "[")) or path == "")


def _rule(err: dict[str, Any], model: type[BaseModel], loc: list[Any], value: Any, keys_at: Any) -> tuple[str, str]:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        keys = keys_at(model, loc[:-1]) or []
        rule = f"unknown key '{loc[-1]}'{suggest(loc[-1], keys)}"
        if keys:
            rule += f" (valid keys: {', '.join(keys)})"
        return "unknown_key", rule
    if kind == "missing":
        return "missing", "a required key is missing"
    if kind in ("finite_number",):
        return "not_finite", "must be a finite number (not nan or inf)"
    if kind in _TYPE_RULES:
        if kind == "int_type" and isinstance(value, float) and value.is_integer():
            return "wrong_type", f"must be a whole number written without a decimal point (write {int(value)})"
        return "wrong_type", _TYPE_RULES[kind]
    if kind in _BOUNDS:
        code, text = _BOUNDS[kind]
        return code, text.format(**{k: _num(v) for k, v in ctx.items()})
    if kind == "literal_error":
        return "not_allowed", f"must be one of {ctx.get('expected', 'the allowed values')}"
    if kind in ("too_short", "too_long"):
        n = ctx.get("min_length" if kind == "too_short" else "max_length")
        actual = ctx.get("actual_length")
        if kind == "too_short":
            return "too_short", f"must have at least {n} entr{'y' if n == 1 else 'ies'} (it has {actual})"
        return "too_long", f"must have at most {n} entr{'y' if n == 1 else 'ies'} (it has {actual})"
    if kind == "string_too_long":
        return "too_long", f"must be at most {ctx.get('max_length')} characters long"
    if kind == "string_too_short":
        return "too_short", f"must be at least {ctx.get('min_length')} characters long"
    if kind == "string_pattern_mismatch":
        return "bad_pattern", (f"must match the pattern {ctx.get('pattern')} (letters, digits and "
                               "'_', '.', '-', starting with a letter or digit)")
    if kind == "value_error":
        # fomolab's own rules (model validators): the text is fomolab's, not pydantic's
        error = ctx.get("error")
        return "inconsistent", str(error) if error is not None else "breaks a rule of its table"
    return "invalid", f"is not valid here (pydantic error type '{kind}')"


def _num(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v)) if abs(v) < 1e15 else repr(v)
    return str(v)
