"""Errors and warnings of fomolab, all in one place.

Every error derives from :class:`FomolabError` and also from the nearest
built-in exception, so an ordinary ``except ValueError`` still catches a bad
spec.  Each message names the thing that is wrong, the rule it breaks, the
value it had, and where possible a fix.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "FomolabError",
    "SpecProblem",
    "SpecError",
    "SPEC_ERROR_CODES",
    "show_value",
    "ResultsError",
    "DataError",
    "MissingExtraError",
    "EnvelopeError",
    "OrderError",
    "SchedulerError",
    "StatisticalWarning",
    "DeprecatedKeyWarning",
    "ConvergenceWarning",
]


class FomolabError(Exception):
    """Base class of every error fomolab raises on purpose."""


#: The kinds of spec problems, by their stable code (``SpecProblem.code``).
SPEC_ERROR_CODES: dict[str, str] = {
    "file_not_found": "the spec or profile file does not exist",
    "file_too_large": "the file is larger than a spec may be",
    "not_toml": "the file is not UTF-8 TOML",
    "too_deep": "tables or arrays nest deeper than a spec may",
    "unknown_key": "a key that the table does not have",
    "missing": "a required key is not given",
    "wrong_type": "a value of the wrong type (a string for a number, a bool for an integer, ...)",
    "not_finite": "NaN or infinity, where only finite numbers are allowed",
    "too_small": "a number below its lower bound",
    "too_large": "a number above its upper bound",
    "too_short": "an array or table with too few entries",
    "too_long": "an array, table or string with too many entries",
    "not_allowed": "a value that is not one of the allowed choices",
    "bad_pattern": "a name with characters that are not allowed",
    "limit_exceeded": "a size limit of fomolab (replicates, points, arms, runs, ...)",
    "unknown_name": "a name that refers to nothing (an arm, a tactic, a profile, a product)",
    "bad_path": "a dotted path (in an arm's set or a sweep) that addresses no parameter",
    "bad_profile": "a profile path outside the profile folders, or a file that is not a profile",
    "cycle": "arms or profiles that build on each other in a cycle",
    "inconsistent": "keys that contradict each other (a rule that spans several keys)",
    "invalid": "any other broken rule",
}

#: Longest shown value, in characters (also the longest word of a key path or rule).
MAX_SHOWN = 80
#: Longest rule shown, in characters.
MAX_RULE = 400

_repr = reprlib.Repr()
_repr.maxstring = MAX_SHOWN
_repr.maxother = MAX_SHOWN
_repr.maxlist = _repr.maxtuple = _repr.maxdict = _repr.maxset = 8
_repr.maxlevel = 3


class _Missing:
    def __repr__(self) -> str:
        return "nothing"


#: The value of a problem whose key is not given.
MISSING = _Missing()


def show_value(value: object) -> str:
    """A value as shown in a message: its repr, at most :data:`MAX_SHOWN` characters.

    >>> show_value(0.5)
    '0.5'
    >>> len(show_value("x" * 10_000)) <= 80
    True
    """
    text = _repr.repr(value)
    if len(text) > MAX_SHOWN:
        text = text[: MAX_SHOWN - 3] + "..."
    return text


def _shorten_words(text: str) -> str:
    """``text`` with each word (a run without spaces) of more than :data:`MAX_SHOWN` characters shortened."""
    if len(text) <= MAX_SHOWN:
        return text
    return re.sub(rf"\S{{{MAX_SHOWN + 1},}}", lambda m: m.group(0)[: MAX_SHOWN - 3] + "...", text)


@dataclass(frozen=True)
class SpecProblem:
    """One problem of a spec: where it is, what it had, the rule it breaks.

    Attributes
    ----------
    file : str
        The spec or profile file (``"<spec>"`` for an in-memory spec).
    path : str
        Dotted key path of the offending entry (``""`` for the file itself);
        array items as ``[i]``.
    value : object
        The offending value (:data:`MISSING` for a key that is not given).
    rule : str
        What the value should have been, and a fix where one is known.
    code : str
        The kind of problem, one of :data:`SPEC_ERROR_CODES`: stable across
        versions, for tools and tests to match.
    """

    file: str
    path: str
    value: object
    rule: str
    code: str = "invalid"

    def __str__(self) -> str:
        path, rule = _shorten_words(self.path), _shorten_words(self.rule)
        if len(rule) > MAX_RULE:
            rule = rule[: MAX_RULE - 3] + "..."
        where = f"{self.file}: {path}" if path else self.file
        return f"{where}: {rule} (got {show_value(self.value)})"


class SpecError(FomolabError, ValueError):
    """An experiment spec or population profile that cannot be used.

    It holds every problem found in the spec (``errors``); ``str()`` gives one
    line per problem, each ``file: key.path: rule (got value)``.  The
    attributes ``file``, ``path``, ``value``, ``rule`` and ``code`` are those
    of the first problem.

    Parameters
    ----------
    file : str
        The spec or profile file (or ``"<spec>"`` for an in-memory spec).
    path : str
        The dotted key path of the offending entry (``""`` for the file itself).
    value : object
        The offending value.
    rule : str
        What the value should have been, and a fix where one is known.
    code : str, optional
        The kind of problem (see :data:`SPEC_ERROR_CODES`).

    Examples
    --------
    >>> err = SpecError.of([SpecProblem("a.toml", "x", -1, "must be > 0", "too_small"),
    ...                     SpecProblem("a.toml", "y", "no", "must be true or false", "wrong_type")])
    >>> print(err)
    a.toml: x: must be > 0 (got -1)
    a.toml: y: must be true or false (got 'no')
    >>> [p.code for p in err.errors]
    ['too_small', 'wrong_type']
    """

    def __init__(self, file: str, path: str, value: object, rule: str, code: str = "invalid") -> None:
        self._set([SpecProblem(str(file), path, value, rule, code)])

    def _set(self, problems: list[SpecProblem]) -> None:
        if not problems:
            raise ValueError("a SpecError needs at least one problem")
        self.errors: list[SpecProblem] = list(problems)
        first = self.errors[0]
        self.file, self.path, self.value, self.rule, self.code = (
            first.file, first.path, first.value, first.rule, first.code)
        self.args = ("\n".join(str(p) for p in self.errors),)

    @classmethod
    def of(cls, problems: Iterable[SpecProblem]) -> SpecError:
        """A SpecError holding several problems (at least one)."""
        err = cls.__new__(cls)
        err._set(list(problems))
        return err

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):  # pickles with all its problems (errors cross process boundaries)
        return (_spec_error_of, (self.errors,))


def _spec_error_of(problems: list[SpecProblem]) -> SpecError:
    return SpecError.of(problems)


class ResultsError(FomolabError, ValueError):
    """A results folder that cannot be read, extended or written to."""


class DataError(FomolabError, ValueError):
    """A DataFrame handed to :mod:`fomolab.stats` that does not fit the request."""


class MissingExtraError(FomolabError, ImportError):
    """An optional dependency is not installed; the message names the extra that installs it.

    >>> print(MissingExtraError("matplotlib", "report", "figures"))
    matplotlib is not installed (needed for figures): pip install 'fomolab[report]' (or 'fomolab[all]')
    """

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(f"{package} is not installed (needed for {purpose}): "
                         f"pip install 'fomolab[{extra}]' (or 'fomolab[all]')", name=package)


class EnvelopeError(FomolabError, AssertionError):
    """A purchase hazard exceeded the thinning envelope its tactics declare (a plugin bug).

    Checked when ``FOMOLAB_CHECK_BOUNDS=1`` (the test suite sets it).
    """


class OrderError(FomolabError, AssertionError):
    """The engine decided a candidate purchase after the clock had passed it (an engine bug).

    Checked when ``FOMOLAB_CHECK_BOUNDS=1`` (the test suite sets it), where
    walks admit candidates while they run.
    """


class SchedulerError(FomolabError, ConnectionError):
    """A Dask scheduler address that is malformed or where no scheduler answers."""


class StatisticalWarning(UserWarning):
    """A statistic was computed, but a property of the data makes it fragile."""


class ConvergenceWarning(StatisticalWarning):
    """A model fit did not converge, or converged to the edge of its space."""


class DeprecatedKeyWarning(FutureWarning):
    """A spec uses a key's former name; it is read with the same meaning (the message names the new key)."""
