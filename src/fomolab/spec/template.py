"""Lineup templates: many products in consecutive slots, from one table.

The picture: a marathon stream shows 380 lipstick shades one after another,
each for a minute or so, at a handful of prices, some with a lightning sale
and a countdown.  Writing 380 ``[lineup.NAME]`` tables by hand is a 3,000-line
spec; a ``[lineup_template]`` table writes them::

    [lineup_template]
    count = 380                       # products
    name = "shade{n:03d}"             # n = 1, 2, ..., count
    slot_s = 66.0                     # each product's slot; consecutive from first_slot_s
    price = { cycle = [59.0, 79.0, 99.0] }
    base_rate_per_s = { uniform = [2e-4, 6e-4] }
    stock = { choice = [40, 80, "unlimited"] }

    [lineup_template.tactics.lightning_sale]   # every 10th product, from the 3rd
    every = 10
    offset = 2
    start_s = 20.0                    # seconds after the product's slot starts
    end_s = 50.0
    discount = { cycle = [0.2, 0.3] }

A value is a constant, or a table that makes one value per product:

``{ cycle = [a, b, ...] }``
    the values in turn (product ``n`` gets item ``(n - 1) mod len``; a
    tactic's field goes round the products that carry the tactic);
``{ choice = [a, b, ...] }``
    drawn uniformly, independently for each product;
``{ uniform = [lo, hi] }``
    a uniform draw in ``[lo, hi)``, with ``round = DIGITS`` optionally;
``{ integers = [lo, hi] }``
    a whole number drawn uniformly in ``lo..hi`` (both included).

A stock of ``"unlimited"`` is an unlimited stock.  Which products carry a
tactic: ``every`` (default 1) and ``offset`` (default 0), products ``n`` with
``(n - 1 - offset) mod every == 0``; or ``share``, each product independently
with that probability.  A tactic's time fields (``Tactic.time_fields``) are
seconds after its product's slot starts.

Draws come from ``numpy.random.SeedSequence(seed)``, one stream per key, with
``seed`` the template's own (default: the experiment's master seed): the
lineup is the same in every arm and replicate, and adding a key changes no
other key's draws.  The template is expanded into ``[lineup]`` before the
spec is validated (products written in ``[lineup]`` are kept, before the
template's); the resolved spec that results folders record holds the expanded
lineup.
"""

from __future__ import annotations

import zlib
from typing import Any, TypeGuard

from fomolab.spec.limits import LIMITS
from fomolab.spec.problems import Problems

__all__ = ["TEMPLATE_KEY", "GENERATORS", "expand_template"]

#: The spec's table that holds a lineup template.
TEMPLATE_KEY = "lineup_template"
#: The ways a value may vary across products.
GENERATORS = ("cycle", "choice", "uniform", "integers")
_PRODUCT_KEYS = ("price", "base_rate_per_s", "stock")
_LAYOUT_KEYS = ("count", "name", "first_slot_s", "slot_s", "gap_s", "seed", "tactics")
_SELECT_KEYS = ("every", "offset", "share")
#: Spawn-key element of the template's draws (distinct from :data:`fomolab.seeds.PURPOSES`).
_PURPOSE = 100


def _is_number(x: Any) -> TypeGuard[float]:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _is_int(x: Any) -> TypeGuard[int]:
    return isinstance(x, int) and not isinstance(x, bool)


def _rng(seed: int, path: str) -> Any:
    import numpy as np

    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_PURPOSE, zlib.crc32(path.encode()))))


class _Expander:
    """Expands one template, adding each problem at the template key that causes it."""

    def __init__(self, template: dict[str, Any], seed: int, problems: Problems) -> None:
        self.t, self.seed, self.problems = template, seed, problems
        self.count = 0

    def add(self, key: str, value: Any, rule: str, code: str = "invalid") -> None:
        self.problems.add(f"{TEMPLATE_KEY}.{key}" if key else TEMPLATE_KEY, value, rule, code)

    def values(self, key: str, spec: Any, n: int | None = None) -> list[Any] | None:
        """``n`` values (default: one per product) from ``spec`` (a constant or a generator table);
        None if broken."""
        n = self.count if n is None else n
        if not isinstance(spec, dict):
            return [spec] * n
        kinds = [k for k in spec if k in GENERATORS]
        extra = [k for k in spec if k not in (*GENERATORS, "round")]
        if len(kinds) != 1 or extra:
            self.add(key, spec, f"a varying value is a table with exactly one of {', '.join(GENERATORS)} "
                     "(and 'round' with uniform), e.g. { cycle = [59.0, 79.0] }",
                     "unknown_key" if extra else "invalid")
            return None
        kind = kinds[0]
        arg = spec[kind]
        where = f"{key}.{kind}"
        if not isinstance(arg, list) or not arg:
            self.add(where, arg, "must be a non-empty array", "wrong_type")
            return None
        if "round" in spec and (kind != "uniform" or not _is_int(spec["round"]) or not 0 <= spec["round"] <= 12):
            self.add(f"{key}.round", spec["round"], "'round' goes with uniform: a whole number of digits in 0..12")
            return None
        if kind == "cycle":
            return [arg[k % len(arg)] for k in range(n)]
        rng = _rng(self.seed, key)
        if kind == "choice":
            return [arg[int(i)] for i in rng.integers(0, len(arg), n)]
        if len(arg) != 2 or not all(_is_number(x) for x in arg) or arg[1] < arg[0]:
            self.add(where, arg, "must be [lo, hi], two numbers with lo <= hi", "invalid")
            return None
        if kind == "integers":
            if not all(_is_int(x) for x in arg):
                self.add(where, arg, "must be [lo, hi], two whole numbers", "wrong_type")
                return None
            return [int(x) for x in rng.integers(arg[0], arg[1] + 1, n)]
        out = [float(x) for x in rng.uniform(arg[0], arg[1], n)]
        return [round(x, spec["round"]) for x in out] if "round" in spec else out

    def layout(self, duration_s: Any) -> tuple[list[str], list[list[float]]] | None:
        """The products' names and slots; None (with problems) if the layout is broken."""
        t = self.t
        count = t.get("count")
        if not _is_int(count) or not 1 <= count <= LIMITS["products"]:
            self.add("count", count if "count" in t else "(not given)",
                     f"the number of products: a whole number in 1..{LIMITS['products']:,} (a limit of fomolab)",
                     "missing" if "count" not in t else "limit_exceeded" if _is_int(count) and count > 0
                     else "invalid")
            return None
        self.count = count
        ok = True
        name = t.get("name", "p{n:03d}")
        names: list[str] = []
        if not isinstance(name, str):
            self.add("name", name, "must be a string with {n}, e.g. \"shade{n:03d}\"", "wrong_type")
            ok = False
        else:
            try:
                names = [name.format(n=k + 1) for k in range(count)]
            except (KeyError, IndexError, ValueError) as exc:
                self.add("name", name, f"must be a format string of n alone, e.g. \"shade{{n:03d}}\" ({exc})")
                ok = False
            if names and len(set(names)) != count:
                self.add("name", name, "must give each product its own name: put {n} in it", "inconsistent")
                ok = False
        nums = {}
        for key, default, lo in (("first_slot_s", 0.0, 0.0), ("gap_s", 0.0, 0.0), ("slot_s", None, None)):
            v = t.get(key, default)
            if v is None:
                self.add(key, "(not given)", "each product's slot length in seconds", "missing")
                ok = False
            elif not _is_number(v) or (v < lo if lo is not None else v <= 0):
                self.add(key, v, "must be a number >= 0" if lo is not None else "must be a number > 0",
                         "wrong_type" if not _is_number(v) else "too_small")
                ok = False
            else:
                nums[key] = float(v)
        if not ok:
            return None
        step = nums["slot_s"] + nums["gap_s"]
        slots = [[nums["first_slot_s"] + k * step, nums["first_slot_s"] + k * step + nums["slot_s"]]
                 for k in range(count)]
        if _is_number(duration_s) and slots[-1][1] > duration_s * (1 + 1e-12):
            self.add("slot_s", t["slot_s"], f"{count} slots of {nums['slot_s']:g} s (gap {nums['gap_s']:g} s, "
                     f"from {nums['first_slot_s']:g} s) end at {slots[-1][1]:g} s, after the stream's end "
                     f"(duration_s = {duration_s:g})", "inconsistent")
            return None
        slots[-1][1] = min(slots[-1][1], float(duration_s)) if _is_number(duration_s) else slots[-1][1]
        return names, slots

    def chosen(self, kind: str, table: dict[str, Any]) -> list[bool] | None:
        """Which products carry tactic ``kind``."""
        where = f"tactics.{kind}"
        n = self.count
        if "share" in table:
            share = table["share"]
            if "every" in table or "offset" in table:
                self.add(f"{where}.share", share, "give either share or every/offset, not both", "inconsistent")
                return None
            if not _is_number(share) or not 0 <= share <= 1:
                self.add(f"{where}.share", share, "must be a probability in [0, 1]", "invalid")
                return None
            return [bool(x) for x in _rng(self.seed, f"{where}.share").random(n) < share]
        every, offset = table.get("every", 1), table.get("offset", 0)
        if not _is_int(every) or every < 1:
            self.add(f"{where}.every", every, "must be a whole number >= 1", "invalid")
            return None
        if not _is_int(offset) or not 0 <= offset < every:
            self.add(f"{where}.offset", offset, f"must be a whole number in 0..every - 1 (every = {every})",
                     "invalid")
            return None
        return [(k - offset) % every == 0 for k in range(n)]

    def expand(self, duration_s: Any) -> dict[str, dict[str, Any]] | None:
        from fomolab.tactics import KINDS

        t = self.t
        for key in t:
            if key not in (*_LAYOUT_KEYS, *_PRODUCT_KEYS):
                self.add(key, t[key], f"is not a key of [{TEMPLATE_KEY}] (keys: "
                         f"{', '.join((*_LAYOUT_KEYS, *_PRODUCT_KEYS))})", "unknown_key")
        made = self.layout(duration_s)
        if made is None:
            return None
        names, slots = made
        before = self.problems.attempts
        cols: dict[str, list[Any]] = {}
        for key in _PRODUCT_KEYS:
            if key in t:
                vals = self.values(key, t[key])
                if vals is not None:
                    if key == "stock":
                        vals = [None if v == "unlimited" else v for v in vals]
                    cols[key] = vals
        tactics = t.get("tactics", {})
        per_tactic: dict[str, tuple[list[bool], dict[str, list[Any]]]] = {}
        if not isinstance(tactics, dict):
            self.add("tactics", tactics, "must be a table of tactics ([lineup_template.tactics.KIND])", "wrong_type")
            tactics = {}
        for kind, table in tactics.items():
            if kind not in KINDS:
                self.add(f"tactics.{kind}", table, f"is not a tactic (tactics: {', '.join(KINDS)})", "unknown_name")
                continue
            if not isinstance(table, dict):
                self.add(f"tactics.{kind}", table, "must be a table", "wrong_type")
                continue
            chosen = self.chosen(kind, table)
            fields: dict[str, list[Any]] = {}
            for key, spec in table.items():
                if key in _SELECT_KEYS:
                    continue
                # one value per product that carries the tactic: a cycle goes round them
                vals = self.values(f"tactics.{kind}.{key}", spec, sum(chosen) if chosen is not None else 0)
                if vals is not None:
                    fields[key] = vals
            if chosen is not None:
                per_tactic[kind] = (chosen, fields)
        if self.problems.attempts > before:
            return None
        out: dict[str, dict[str, Any]] = {}
        rank = dict.fromkeys(per_tactic, 0)  # products so far that carry each tactic
        for k, name in enumerate(names):
            prod: dict[str, Any] = {key: vals[k] for key, vals in cols.items() if vals[k] is not None}
            prod["slot_s"] = slots[k]
            tac: dict[str, Any] = {}
            for kind, (chosen, fields) in per_tactic.items():
                if not chosen[k]:
                    continue
                times = KINDS[kind].time_fields
                r = rank[kind]
                rank[kind] += 1
                tac[kind] = {key: _shift(vals[r], slots[k][0]) if key in times else vals[r]
                             for key, vals in fields.items()}
            if tac:
                prod["tactics"] = tac
            out[name] = prod
        return out


def _shift(value: Any, dt: float) -> Any:
    """A time field given relative to the slot's start, in stream seconds."""
    if _is_number(value):
        return value + dt
    if isinstance(value, list) and all(_is_number(x) for x in value):
        return [x + dt for x in value]
    return value  # not a time: validation names it at the product


def expand_template(raw: dict[str, Any], problems: Problems) -> list[str]:
    """Replace ``raw[TEMPLATE_KEY]`` by the products it makes, added to ``raw["lineup"]`` (in place).

    Returns the names of the products made.  Problems are added at the
    template's keys; the raw spec is left as it was if there are any (and
    the list is empty).
    """
    if TEMPLATE_KEY not in raw:
        return []
    template = raw[TEMPLATE_KEY]
    if not isinstance(template, dict):
        problems.add(TEMPLATE_KEY, template, "must be a table", "wrong_type")
        return []
    exp = raw.get("experiment")
    seed = template.get("seed", exp.get("seed") if isinstance(exp, dict) else None)
    if not _is_int(seed) or seed < 0:
        problems.add(f"{TEMPLATE_KEY}.seed", seed, "must be a whole number >= 0 (default: experiment.seed)",
                     "invalid")
        return []
    stream = raw.get("stream")
    duration = stream.get("duration_s") if isinstance(stream, dict) else None
    made = _Expander(template, seed, problems).expand(duration if _is_number(duration) and duration > 0 else None)
    if made is None:
        return []
    before = problems.attempts
    _check_products(made, duration, problems)
    if problems.attempts > before:
        return []
    lineup = raw.get("lineup", {})
    if not isinstance(lineup, dict):
        return []  # validation names it
    clash = [n for n in made if n in lineup]
    if clash:
        problems.add(f"{TEMPLATE_KEY}.name", template.get("name", "p{n:03d}"),
                     f"makes products already in [lineup]: {', '.join(clash[:5])}"
                     f"{' ...' if len(clash) > 5 else ''}; give the template another name", "inconsistent")
        return []
    if len(lineup) + len(made) > LIMITS["products"]:
        problems.add(f"{TEMPLATE_KEY}.count", template.get("count"),
                     f"with the {len(lineup)} products of [lineup], at most {LIMITS['products']:,} products "
                     "(a limit of fomolab)", "limit_exceeded")
        return []
    del raw[TEMPLATE_KEY]
    raw["lineup"] = {**lineup, **made}
    return list(made)


def _check_products(made: dict[str, dict[str, Any]], duration: Any, problems: Problems) -> None:
    """Validate each product the template made; a problem is named at the template key that made it,
    once (at the first product that breaks it)."""
    import json

    from pydantic import ValidationError

    from fomolab.lineup import Product, fill_defaults
    from fomolab.spec.problems import translate

    for name, prod in made.items():
        data = fill_defaults({name: prod}, duration)[name]
        try:
            if problems.strict:
                Product.model_validate_json(json.dumps(data), strict=True)
            else:
                Product.model_validate(data)
        except ValidationError as exc:
            scratch = Problems(problems.source, strict=problems.strict)
            translate(exc, data, Product, scratch)
            for p in scratch.items:
                problems.add(f"{TEMPLATE_KEY}.{p.path}" if p.path else TEMPLATE_KEY, p.value,
                             f"{p.rule} (product {name}, the first the template makes with it)", p.code)


def lineup_rows(lineup: dict[str, Any], names: tuple[str, ...] | list[str]) -> list[tuple[str, ...]]:
    """Rows of the expanded lineup for ``fomolab validate``: product, slot, price, rate, stock, tactics.

    ``lineup`` is the resolved spec's ``lineup`` table (``Experiment.spec``).
    """
    rows: list[tuple[str, ...]] = []
    for name in names:
        p = lineup[name]
        a, b = p["slot_s"]
        stock = p.get("stock")
        rows.append((name, f"{a:g}-{b:g}", f"{p['price']:g}", f"{p['base_rate_per_s']:.3g}",
                     "unlimited" if stock is None else str(stock), ", ".join(p.get("tactics", {})) or "-"))
    return rows
