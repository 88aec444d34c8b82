"""Old argument names, kept working for one release with a :class:`DeprecationWarning`.

When an argument of a public function is renamed, the function is decorated
with :func:`renamed_kwargs`, which maps each old keyword to its new name (and,
where the meaning changed, a conversion of the value).  A call with the old
name still works and warns once per call site; a call with both names is a
:class:`TypeError`, as Python raises for an argument given twice.  The
wrapper keeps the new signature, so ``help()``, IDEs and
``inspect.signature`` show only the new names.

>>> import warnings
>>> @renamed_kwargs({"level": "conf_level"})
... def width(conf_level: float = 0.95) -> float:
...     return conf_level
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     width(level=0.9)
0.9
>>> print(caught[0].message)  # doctest: +NORMALIZE_WHITESPACE
width(): argument 'level' is deprecated and will be removed in fomolab 0.3;
use 'conf_level' instead
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

__all__ = ["REMOVED_IN", "Rename", "deprecated_attribute", "renamed_kwargs", "warn_deprecated"]

#: The release in which the deprecated names go away.
REMOVED_IN = "0.3"

F = TypeVar("F", bound=Callable[..., Any])


class Rename:
    """An old keyword's new name and, optionally, how its value translates.

    Parameters
    ----------
    new : str
        The new keyword.
    convert : callable, optional
        Maps an old value to the new one (e.g. ``alpha`` to ``conf_level =
        1 - alpha``).  Without it the value passes unchanged.
    how : str, optional
        Said in the warning after the new name (e.g. ``"= 1 - alpha"``).
    """

    def __init__(self, new: str, convert: Callable[[Any], Any] | None = None, how: str = "") -> None:
        self.new = new
        self.convert = convert
        self.how = how

    def __repr__(self) -> str:
        return f"Rename({self.new!r})"


def warn_deprecated(message: str, stacklevel: int = 3) -> None:
    """Issue a :class:`DeprecationWarning` that points at the caller's caller."""
    warnings.warn(message, DeprecationWarning, stacklevel=stacklevel)


def renamed_kwargs(renames: Mapping[str, str | Rename]) -> Callable[[F], F]:
    """Decorate a function so that old keyword names still work, with a warning.

    Parameters
    ----------
    renames : mapping
        ``{old name: new name}`` or ``{old name: Rename(new, convert, how)}``.

    Returns
    -------
    callable
        A decorator.  The decorated function carries the table as
        ``__renamed_kwargs__`` (``{old: new}``), so tests can check every
        old name of every function.

    Raises
    ------
    TypeError
        At decoration time, if a new name is not a parameter of the function
        or an old name still is; at call time, if both names are given.
    """
    table = {old: (r if isinstance(r, Rename) else Rename(r)) for old, r in renames.items()}

    def decorate(fn: F) -> F:
        params = inspect.signature(fn).parameters
        positional = [n for n, p in params.items()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        for old, r in table.items():
            if r.new not in params:
                raise TypeError(f"{fn.__qualname__}() has no parameter {r.new!r} to rename {old!r} to")
            if old in params:
                raise TypeError(f"{fn.__qualname__}() still has a parameter {old!r}: it cannot be an old name")

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old in [k for k in kwargs if k in table]:
                r = table[old]
                given_positionally = r.new in positional and positional.index(r.new) < len(args)
                if r.new in kwargs or given_positionally:
                    raise TypeError(f"{fn.__qualname__}() got both {old!r} (its old name) and "
                                    f"{r.new!r}: pass only {r.new!r}")
                value = kwargs.pop(old)
                how = f" ({r.new} {r.how})" if r.how else ""
                warn_deprecated(f"{fn.__qualname__}(): argument {old!r} is deprecated and will be removed "
                                f"in fomolab {REMOVED_IN}; use {r.new!r} instead{how}")
                kwargs[r.new] = r.convert(value) if r.convert is not None else value
            return fn(*args, **kwargs)

        wrapper.__renamed_kwargs__ = {old: r.new for old, r in table.items()}  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def deprecated_attribute(old: str, new: str) -> property:
    """A read-only property ``old`` that warns and returns attribute ``new``.

    Examples
    --------
    >>> class Fit:
    ...     event = "bought"
    ...     outcome = deprecated_attribute("outcome", "event")
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     Fit().outcome
    'bought'
    """

    def get(self: Any) -> Any:
        warn_deprecated(f"{type(self).__name__}.{old} is deprecated and will be removed in fomolab "
                        f"{REMOVED_IN}; use .{new} instead")
        return getattr(self, new)

    return property(get, doc=f"Deprecated alias of :attr:`{new}` (removed in fomolab {REMOVED_IN}).")
