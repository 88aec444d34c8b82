"""A catalogue of malformed specs: each refused with every problem named, nothing written.

Each case edits a valid spec that uses every table (stream with a schedule,
two segments, two products with all five tactics, a market, arms with bases,
removals and overrides, a sweep) and names the problems it must produce, as
``(key path, code)`` pairs.  Through the CLI each must exit 2 with exactly one
line per problem (``file: key.path: rule (got value)``), no traceback, and no
results folder.
"""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import fomolab
from fomolab.cli import main
from fomolab.errors import SPEC_ERROR_CODES, SpecError, show_value
from fomolab.spec import LIMITS, load_experiment

NAN, INF = math.nan, math.inf

BASE: dict[str, Any] = {
    "experiment": {"name": "catalogue", "description": "every table", "seed": 3, "replicates": 2,
                   "control": "control", "common_random_numbers": True},
    "stream": {"duration_s": 3600.0, "arrivals": {"schedule": [
        {"start_s": 0.0, "rate_per_s": 1.0}, {"start_s": 600.0, "rate_per_s": 2.0}]}},
    "population": {"segments": {
        "calm": {"share": 0.6, "impulsiveness": {"beta": [1.5, 9.0]}, "interest": {"mean": 1.0, "cv": 0.5},
                 "dwell": {"mean_s": 400.0, "distribution": "lognormal", "cv": 1.0}, "price_sensitivity": 2.0,
                 "valuation": {"mean": 1.0, "cv": 0.3}},
        "eager": {"share": 0.4, "impulsiveness": {"fixed": 0.8}, "dwell": {"mean_s": 200.0}},
    }},
    "lineup": {
        "gloss": {"price": 20.0, "base_rate_per_s": 5e-4, "stock": 500, "slot_s": [0.0, 1800.0], "tactics": {
            "lightning_sale": {"start_s": 900.0, "end_s": 1200.0, "discount": 0.3, "quota": 100, "gain": 3.0,
                               "arrival_boost": 1.5},
            "countdown_timer": {"urgency": "hyperbolic", "kappa_per_s": 0.02, "deferral": 0.1,
                                "credibility": 1.0, "gain": 2.0},
            "scarcity_cue": {"threshold": 50, "credibility": 0.9, "recheck_s": 60.0, "gain": 2.0},
            "social_proof": {"window_s": 60.0, "saturation": 5, "gain": 1.0},
            "exclusive_code": {"announce_s": 300.0, "expires_s": 600.0, "discount": 0.1, "arrival_boost": 1.2},
        }},
        "serum": {"price": 40.0, "base_rate_per_s": 2.5e-4, "slot_s": [1800.0, 3400.0], "tactics": {
            "countdown_timer": {"start_s": 2000.0, "deadline_s": 2400.0, "resets": True, "until_s": 3000.0},
            "social_proof": {"fabricated_rate_per_s": 0.05},
            "scarcity_cue": {"threshold": 20, "displayed_stock": 30},
        }},
    },
    "market": {"streams": 2, "stagger_s": 60.0, "appeal_spread": 0.5,
               "host": {"kind": "human", "appeal": 0.5, "trust": 1.0, "cost_per_hour": 10.0},
               "virtual_hosts": 1, "virtual_host": {"kind": "virtual", "appeal": 0.0, "trust": 0.9,
                                                   "cost_per_hour": 1.0},
               "choice": {"appeal_weight": 1.0, "offer_weight": 0.5},
               "switching": {"enabled": True, "probability": 0.2}},
    "arms": {
        "control": {"description": "no tactic"},
        "sale": {"tactics": ["gloss.lightning_sale"]},
        "all": {"tactics": ["gloss.*", "serum.*"]},
        "ban": {"base": "all", "remove": ["gloss.countdown_timer"]},
        "cheaper": {"base": "sale", "set": {"lineup.gloss.price": 15.0}},
    },
    "sweep": {"design": "grid", "parameters": {"lineup.gloss.tactics.lightning_sale.discount": [0.1, 0.3]}},
}

G = "lineup.gloss"
S = "lineup.serum"
LS, CT, SC, SP, EC = (f"{G}.tactics.{k}" for k in
                      ("lightning_sale", "countdown_timer", "scarcity_cue", "social_proof", "exclusive_code"))
DEL = object()


def toml_value(v: Any) -> str:
    """A value as TOML (inline tables and arrays; nan and inf as TOML writes them)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return "nan" if math.isnan(v) else ("inf" if v == INF else "-inf") if math.isinf(v) else repr(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def to_toml(spec: dict[str, Any]) -> str:
    """The spec as TOML: one ``[table]`` per top-level key, values inline."""
    lines = []
    for table, body in spec.items():
        if not isinstance(body, dict):
            lines.append(f"{json.dumps(table)} = {toml_value(body)}")
    for table, body in spec.items():
        if isinstance(body, dict):
            lines.append(f"[{json.dumps(table)}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in body.items()]
    return "\n".join(lines) + "\n"


def edit(*changes: tuple[str, Any]) -> dict[str, Any]:
    """BASE with ``(dotted path, value)`` changes (value DEL removes the key); ``\\.`` escapes a dot."""
    spec = copy.deepcopy(BASE)
    for path, value in changes:
        parts = [p.replace("\0", ".") for p in path.replace("\\.", "\0").split(".")]
        node = spec
        for p in parts[:-1]:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        if value is DEL:
            del node[parts[-1]]
        elif isinstance(node, list):
            node[int(parts[-1])] = value
        else:
            node[parts[-1]] = value
    return spec


def case(*changes: tuple[str, Any], expect: list[tuple[str, str]]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    return edit(*changes), expect


def one(path: str, value: Any, code: str, at: str | None = None):
    """One change, one expected problem at ``at`` (default: the changed path)."""
    shown = at if at is not None else path.replace("\\.", ".")
    return case((path, value), expect=[(shown, code)])


def numeric(path: str, *, positive: bool = False, nonneg: bool = False, integer: bool = False,
            low: Any = None, high: Any = None):
    """The standard bad values of a number: nan, inf, -inf, a bool, a string, and out of range."""
    out = {
        "nan": one(path, NAN, "not_finite"),
        "inf": one(path, INF, "not_finite"),
        "-inf": one(path, -INF, "not_finite"),
        "bool": one(path, True, "wrong_type"),
        "str": one(path, "1", "wrong_type"),
    }
    if positive:
        out["zero"] = one(path, 0, "too_small")
    if positive or nonneg:
        out["negative"] = one(path, -1, "too_small")
    if integer:
        out["decimal"] = one(path, 2.5, "wrong_type")
    if low is not None:
        out["below"] = one(path, low, "too_small")
    if high is not None:
        out["above"] = one(path, high, "too_large")
    return out


CASES: dict[str, tuple[dict[str, Any], list[tuple[str, str]]]] = {}


def add(prefix: str, cases: dict[str, Any]) -> None:
    for name, c in cases.items():
        assert f"{prefix}-{name}" not in CASES
        CASES[f"{prefix}-{name}"] = c


# [experiment]
add("experiment.name", {
    "missing": one("experiment.name", DEL, "missing"),
    "int": one("experiment.name", 5, "wrong_type"),
    "space": one("experiment.name", "my experiment", "bad_pattern"),
    "slash": one("experiment.name", "../x", "bad_pattern"),
    "long": one("experiment.name", "x" * 101, "too_long"),
})
add("experiment.seed", {**numeric("experiment.seed", nonneg=True, integer=True),
                        "missing": one("experiment.seed", DEL, "missing")})
add("experiment.replicates", {
    **numeric("experiment.replicates", positive=True, integer=True),
    "whole_decimal": one("experiment.replicates", 3.0, "wrong_type"),
    "trillion": one("experiment.replicates", 10**12, "limit_exceeded"),
    "over_limit": one("experiment.replicates", LIMITS["replicates"] + 1, "limit_exceeded"),
})
add("experiment", {
    "description_int": one("experiment.description", 1, "wrong_type"),
    "control_unknown": one("experiment.control", "contrl", "unknown_name"),
    "control_int": one("experiment.control", 1, "wrong_type"),
    "crn_no": one("experiment.common_random_numbers", "no", "wrong_type"),
    "crn_int": one("experiment.common_random_numbers", 0, "wrong_type"),
    "unknown_key": one("experiment.repliactes", 3, "unknown_key"),
    "not_table": one("experiment", "x", "wrong_type"),
    "missing": one("experiment", DEL, "missing"),
})

# [stream]
add("stream.duration_s", {**numeric("stream.duration_s", positive=True),
                          "missing": one("stream.duration_s", DEL, "missing")})
add("stream.arrivals.rate_per_s", {
    **{k: case(("stream.arrivals.schedule", DEL), ("stream.arrivals.rate_per_s", v),
               expect=[("stream.arrivals.rate_per_s", c)])
       for k, v, c in [("nan", NAN, "not_finite"), ("inf", INF, "not_finite"), ("zero", 0.0, "too_small"),
                       ("negative", -2.0, "too_small"), ("bool", True, "wrong_type"), ("str", "2", "wrong_type")]},
    "and_schedule": one("stream.arrivals.rate_per_s", 1.0, "inconsistent", at="stream.arrivals"),
    "neither": one("stream.arrivals.schedule", DEL, "inconsistent", at="stream.arrivals"),
})
add("stream.arrivals.schedule", {
    "rate_nan": one("stream.arrivals.schedule.1.rate_per_s", NAN, "not_finite",
                    at="stream.arrivals.schedule[1].rate_per_s"),
    "rate_inf": one("stream.arrivals.schedule.0.rate_per_s", INF, "not_finite",
                    at="stream.arrivals.schedule[0].rate_per_s"),
    "rate_negative": one("stream.arrivals.schedule.1.rate_per_s", -1.0, "too_small",
                         at="stream.arrivals.schedule[1].rate_per_s"),
    "rate_bool": one("stream.arrivals.schedule.1.rate_per_s", False, "wrong_type",
                     at="stream.arrivals.schedule[1].rate_per_s"),
    "start_nan": one("stream.arrivals.schedule.1.start_s", NAN, "not_finite",
                     at="stream.arrivals.schedule[1].start_s"),
    "start_not_zero": one("stream.arrivals.schedule.0.start_s", 10.0, "inconsistent", at="stream.arrivals"),
    "not_increasing": one("stream.arrivals.schedule.1.start_s", 0.0, "inconsistent", at="stream.arrivals"),
    "after_end": one("stream.arrivals.schedule.1.start_s", 4000.0, "inconsistent",
                     at="stream.arrivals.schedule[1].start_s"),
    "all_zero": case(("stream.arrivals.schedule.0.rate_per_s", 0.0), ("stream.arrivals.schedule.1.rate_per_s", 0.0),
                     expect=[("stream.arrivals", "inconsistent")]),
    "piece_unknown_key": one("stream.arrivals.schedule.1.rate", 1.0, "unknown_key",
                             at="stream.arrivals.schedule[1].rate"),
    "piece_not_table": one("stream.arrivals.schedule.1", 5, "wrong_type", at="stream.arrivals.schedule[1]"),
    "not_array": one("stream.arrivals.schedule", "x", "wrong_type"),
    "too_many": one("stream.arrivals.schedule", [{"start_s": float(i), "rate_per_s": 1.0}
                                                 for i in range(LIMITS["schedule_pieces"] + 1)], "limit_exceeded"),
})
add("stream", {
    "unknown_key": one("stream.durations", 1.0, "unknown_key"),
    "arrivals_missing": one("stream.arrivals", DEL, "missing"),
    "missing": one("stream", DEL, "missing"),
})

# [population]
SEG = "population.segments.calm"
add("population.segments.share", {
    **{k: v for k, v in numeric(f"{SEG}.share").items() if k != "str"},
    "str": one(f"{SEG}.share", "0.6", "wrong_type"),
    "zero": one(f"{SEG}.share", 0.0, "too_small"),
    "above_one": case((f"{SEG}.share", 1.5), expect=[(f"{SEG}.share", "too_large")]),
    "sum": one(f"{SEG}.share", 0.5, "inconsistent", at="population.segments"),
    "missing": one(f"{SEG}.share", DEL, "missing"),
})
add("population.segments.impulsiveness", {
    "beta_zero": one(f"{SEG}.impulsiveness.beta", [0.0, 1.0], "inconsistent", at=f"{SEG}.impulsiveness"),
    "beta_nan": one(f"{SEG}.impulsiveness.beta", [NAN, 1.0], "not_finite", at=f"{SEG}.impulsiveness.beta[0]"),
    "beta_inf": one(f"{SEG}.impulsiveness.beta", [1.0, INF], "not_finite", at=f"{SEG}.impulsiveness.beta[1]"),
    "beta_three": one(f"{SEG}.impulsiveness.beta", [1.0, 2.0, 3.0], "too_long"),
    "beta_one": one(f"{SEG}.impulsiveness.beta", [1.0], "missing", at=f"{SEG}.impulsiveness.beta[1]"),
    "beta_str": one(f"{SEG}.impulsiveness.beta", "1,2", "wrong_type"),
    "beta_bool": one(f"{SEG}.impulsiveness.beta", [True, 2.0], "wrong_type", at=f"{SEG}.impulsiveness.beta[0]"),
    "both": one(f"{SEG}.impulsiveness.fixed", 0.5, "inconsistent", at=f"{SEG}.impulsiveness"),
    "neither": one(f"{SEG}.impulsiveness.beta", DEL, "inconsistent", at=f"{SEG}.impulsiveness"),
    "fixed_nan": one("population.segments.eager.impulsiveness.fixed", NAN, "not_finite"),
    "fixed_above": one("population.segments.eager.impulsiveness.fixed", 1.5, "too_large"),
    "fixed_negative": one("population.segments.eager.impulsiveness.fixed", -0.1, "too_small"),
    "missing": one(f"{SEG}.impulsiveness", DEL, "missing"),
})
add("population.segments.interest.mean", numeric(f"{SEG}.interest.mean", positive=True))
add("population.segments.interest.cv", numeric(f"{SEG}.interest.cv", nonneg=True))
add("population.segments.dwell.mean_s", {**numeric(f"{SEG}.dwell.mean_s", positive=True),
                                         "missing": one(f"{SEG}.dwell.mean_s", DEL, "missing")})
add("population.segments.dwell", {
    "cv_zero": one(f"{SEG}.dwell.cv", 0.0, "too_small"),
    "cv_nan": one(f"{SEG}.dwell.cv", NAN, "not_finite"),
    "distribution": one(f"{SEG}.dwell.distribution", "weibull", "not_allowed"),
    "distribution_int": one(f"{SEG}.dwell.distribution", 1, "not_allowed"),
    "missing": one(f"{SEG}.dwell", DEL, "missing"),
})
add("population.segments.price_sensitivity", numeric(f"{SEG}.price_sensitivity", nonneg=True))
add("population.segments.valuation", {
    "mean_nan": one(f"{SEG}.valuation.mean", NAN, "not_finite"),
    "mean_zero": one(f"{SEG}.valuation.mean", 0.0, "too_small"),
    "cv_negative": one(f"{SEG}.valuation.cv", -0.1, "too_small"),
    "cv_inf": one(f"{SEG}.valuation.cv", INF, "not_finite"),
})
add("population", {
    "segment_unknown_key": one(f"{SEG}.impulsivness", {"fixed": 0.2}, "unknown_key"),
    "segment_not_table": one(f"{SEG}", 0.6, "wrong_type"),
    "no_segments": one("population.segments", {}, "too_short"),
    "unknown_key": one("population.segmnts", {}, "unknown_key"),
    "profile_unknown": one("population.profile", "mixd", "unknown_name"),
    "profile_int": one("population.profile", 3, "wrong_type"),
    "profile_absolute": one("population.profile", "/etc/passwd.toml", "bad_profile"),
    "profile_dotdot": one("population.profile", "../agents/mixed.toml", "bad_profile"),
    "profile_bad_name": one("population.profile", "mixed profile", "bad_profile"),
    "segment_profile_multi": one(f"{SEG}.profile", "mixed", "inconsistent"),
    "missing": one("population", DEL, "missing"),
})

# [lineup]
add("lineup.price", {**numeric(f"{G}.price", positive=True), "missing": one(f"{G}.price", DEL, "missing")})
add("lineup.base_rate_per_s", numeric(f"{G}.base_rate_per_s", positive=True))
add("lineup.stock", {**numeric(f"{G}.stock", nonneg=True, integer=True),
                     "whole_decimal": one(f"{G}.stock", 500.0, "wrong_type")})
add("lineup.slot_s", {
    "nan": one(f"{G}.slot_s", [NAN, 1800.0], "not_finite", at=f"{G}.slot_s[0]"),
    "inf": one(f"{G}.slot_s", [0.0, INF], "not_finite", at=f"{G}.slot_s[1]"),
    "reversed": one(f"{G}.slot_s", [1800.0, 0.0], "inconsistent", at=G),
    "outside": one(f"{S}.slot_s", [1800.0, 7200.0], "inconsistent"),
    "three": one(f"{G}.slot_s", [0.0, 1.0, 2.0], "too_long"),
    "str": one(f"{G}.slot_s", "0-1800", "wrong_type"),
})
add("lineup", {
    "empty": one("lineup", {}, "too_short"),
    "product_not_table": one("lineup.mascara", 3.0, "wrong_type"),
    "product_unknown_key": one(f"{G}.prize", 3.0, "unknown_key"),
    "tactic_unknown_kind": one(f"{G}.tactics.countdown", {}, "unknown_key"),
    "tactics_not_table": one(f"{S}.tactics", ["countdown_timer"], "wrong_type"),
    "too_many": one("lineup", {f"p{i}": {"price": 1.0, "base_rate_per_s": 1e-4}
                               for i in range(LIMITS["products"] + 1)}, "limit_exceeded"),
})
for tactic, path in [("lightning_sale", LS), ("countdown_timer", CT), ("scarcity_cue", SC),
                     ("social_proof", SP), ("exclusive_code", EC)]:
    add(f"{tactic}.gain", {**numeric(f"{path}.gain", nonneg=True)})
    add(f"{tactic}", {"unknown_key": one(f"{path}.gian", 1.0, "unknown_key"),
                      "not_table": one(path, 1.0, "wrong_type")})
add("lightning_sale", {
    "start_nan": one(f"{LS}.start_s", NAN, "not_finite"),
    "start_negative": one(f"{LS}.start_s", -1.0, "too_small"),
    "end_inf": one(f"{LS}.end_s", INF, "not_finite"),
    "end_before_start": one(f"{LS}.end_s", 800.0, "inconsistent", at=LS),
    "outside_slot_stream": one(f"{LS}.end_s", 4000.0, "inconsistent"),
    "discount_one": one(f"{LS}.discount", 1.0, "too_large"),
    "discount_negative": one(f"{LS}.discount", -0.1, "too_small"),
    "discount_nan": one(f"{LS}.discount", NAN, "not_finite"),
    "discount_str": one(f"{LS}.discount", "30%", "wrong_type"),
    "quota_zero": one(f"{LS}.quota", 0, "too_small"),
    "quota_decimal": one(f"{LS}.quota", 1.5, "wrong_type"),
    "quota_bool": one(f"{LS}.quota", True, "wrong_type"),
    "boost_below_one": one(f"{LS}.arrival_boost", 0.5, "too_small"),
    "boost_nan": one(f"{LS}.arrival_boost", NAN, "not_finite"),
    "boost_inf": one(f"{LS}.arrival_boost", INF, "not_finite"),
    "start_missing": case((f"{LS}.start_s", DEL), expect=[(f"{LS}.start_s", "missing")]),
})
add("countdown_timer", {
    "urgency": one(f"{CT}.urgency", "exponential", "not_allowed"),
    "kappa_nan": one(f"{CT}.kappa_per_s", NAN, "not_finite"),
    "kappa_inf": one(f"{CT}.kappa_per_s", INF, "not_finite"),
    "kappa_zero": one(f"{CT}.kappa_per_s", 0.0, "too_small"),
    "kappa_bool": one(f"{CT}.kappa_per_s", True, "wrong_type"),
    "deferral_above": one(f"{CT}.deferral", 1.5, "too_large"),
    "deferral_nan": one(f"{CT}.deferral", NAN, "not_finite"),
    "resets_str": one(f"{S}.tactics.countdown_timer.resets", "yes", "wrong_type"),
    "resets_int": one(f"{S}.tactics.countdown_timer.resets", 1, "wrong_type"),
    "until_without_reset": one(f"{S}.tactics.countdown_timer.resets", False, "inconsistent",
                               at=f"{S}.tactics.countdown_timer"),
    "until_before_deadline": one(f"{S}.tactics.countdown_timer.until_s", 2200.0, "inconsistent",
                                 at=f"{S}.tactics.countdown_timer"),
    "until_inf": one(f"{S}.tactics.countdown_timer.until_s", INF, "not_finite"),
    "deadline_nan": one(f"{S}.tactics.countdown_timer.deadline_s", NAN, "not_finite"),
    "deadline_missing_no_sale": one(f"{S}.tactics.countdown_timer.deadline_s", DEL, "inconsistent", at=S),
    "credibility_zero": one(f"{CT}.credibility", 0.0, "too_small"),
    "credibility_above": one(f"{CT}.credibility", 1.5, "too_large"),
    "credibility_nan": one(f"{CT}.credibility", NAN, "not_finite"),
    "boost_nan": one(f"{CT}.arrival_boost", NAN, "not_finite"),
    "outside_stream": case((f"{S}.tactics.countdown_timer.until_s", 5000.0),
                           expect=[(f"{S}.tactics.countdown_timer.until_s", "inconsistent")]),
})
add("scarcity_cue", {
    **{f"threshold_{k}": v for k, v in numeric(f"{SC}.threshold", positive=True, integer=True).items()},
    "displayed_zero": one(f"{S}.tactics.scarcity_cue.displayed_stock", 0, "too_small"),
    "displayed_nan": one(f"{S}.tactics.scarcity_cue.displayed_stock", NAN, "not_finite"),
    "displayed_decimal": one(f"{S}.tactics.scarcity_cue.displayed_stock", 30.5, "wrong_type"),
    "credibility_nan": one(f"{SC}.credibility", NAN, "not_finite"),
    "recheck_zero": one(f"{SC}.recheck_s", 0.0, "too_small"),
    "recheck_inf": one(f"{SC}.recheck_s", INF, "not_finite"),
    "needs_stock": one(f"{G}.stock", DEL, "inconsistent", at=SC),
    "threshold_missing": one(f"{SC}.threshold", DEL, "missing"),
})
add("social_proof", {
    "window_zero": one(f"{SP}.window_s", 0.0, "too_small"),
    "window_nan": one(f"{SP}.window_s", NAN, "not_finite"),
    "window_inf": one(f"{SP}.window_s", INF, "not_finite"),
    "saturation_zero": one(f"{SP}.saturation", 0, "too_small"),
    "saturation_decimal": one(f"{SP}.saturation", 1.5, "wrong_type"),
    "fabricated_nan": one(f"{S}.tactics.social_proof.fabricated_rate_per_s", NAN, "not_finite"),
    "fabricated_inf": one(f"{S}.tactics.social_proof.fabricated_rate_per_s", INF, "not_finite"),
    "fabricated_zero": one(f"{S}.tactics.social_proof.fabricated_rate_per_s", 0.0, "too_small"),
    "fabricated_str": one(f"{S}.tactics.social_proof.fabricated_rate_per_s", "often", "wrong_type"),
})
add("exclusive_code", {
    "announce_nan": one(f"{EC}.announce_s", NAN, "not_finite"),
    "announce_negative": one(f"{EC}.announce_s", -5.0, "too_small"),
    "expires_inf": one(f"{EC}.expires_s", INF, "not_finite"),
    "expires_before": one(f"{EC}.expires_s", 200.0, "inconsistent", at=EC),
    "discount_one": one(f"{EC}.discount", 1.0, "too_large"),
    "discount_nan": one(f"{EC}.discount", NAN, "not_finite"),
    "boost_below": one(f"{EC}.arrival_boost", 0.9, "too_small"),
    "outside_stream": one(f"{EC}.expires_s", 3700.0, "inconsistent"),
})

# [market]
add("market.streams", {**numeric("market.streams", positive=True, integer=True, high=1001)})
add("market.stagger_s", {**numeric("market.stagger_s", nonneg=True),
                         "too_far": one("market.stagger_s", 2000.0, "inconsistent")})
add("market.appeal_spread", numeric("market.appeal_spread", nonneg=True))
for host in ("host", "virtual_host"):
    add(f"market.{host}", {
        "appeal_nan": one(f"market.{host}.appeal", NAN, "not_finite"),
        "appeal_inf": one(f"market.{host}.appeal", INF, "not_finite"),
        "appeal_str": one(f"market.{host}.appeal", "high", "wrong_type"),
        "trust_zero": one(f"market.{host}.trust", 0.0, "too_small"),
        "trust_nan": one(f"market.{host}.trust", NAN, "not_finite"),
        "cost_negative": one(f"market.{host}.cost_per_hour", -1.0, "too_small"),
        "cost_nan": one(f"market.{host}.cost_per_hour", NAN, "not_finite"),
        "cost_inf": one(f"market.{host}.cost_per_hour", INF, "not_finite"),
        "kind": one(f"market.{host}.kind", "robot", "not_allowed"),
        "unknown_key": one(f"market.{host}.apeal", 1.0, "unknown_key"),
    })
add("market", {
    "virtual_hosts_over": one("market.virtual_hosts", 3, "inconsistent", at="market"),
    "virtual_hosts_negative": one("market.virtual_hosts", -1, "too_small"),
    "virtual_hosts_decimal": one("market.virtual_hosts", 1.0, "wrong_type"),
    "appeal_weight_nan": one("market.choice.appeal_weight", NAN, "not_finite"),
    "offer_weight_inf": one("market.choice.offer_weight", -INF, "not_finite"),
    "switching_enabled_str": one("market.switching.enabled", "yes", "wrong_type"),
    "switching_probability_above": one("market.switching.probability", 1.5, "too_large"),
    "switching_probability_nan": one("market.switching.probability", NAN, "not_finite"),
    "unknown_key": one("market.apeal_spread", 0.1, "unknown_key"),
    "not_table": one("market", 2, "wrong_type"),
})

# [arms]
add("arms", {
    "empty": one("arms", {}, "too_short"),
    "not_table": one("arms.sale", "gloss.lightning_sale", "wrong_type"),
    "unknown_key": one("arms.sale.tactic", ["gloss.lightning_sale"], "unknown_key"),
    "tactic_unknown": one("arms.sale.tactics", ["gloss.lightning_sal"], "unknown_name"),
    "tactics_str": one("arms.sale.tactics", "gloss.lightning_sale", "wrong_type"),
    "tactics_int": one("arms.sale.tactics", [1], "wrong_type", at="arms.sale.tactics[0]"),
    "remove_unknown": one("arms.ban.remove", ["gloss.scarcity"], "unknown_name"),
    "base_unknown": one("arms.ban.base", "al", "unknown_name"),
    "base_cycle": case(("arms.all.base", "ban"), expect=[("arms.ban.base", "cycle")]),
    "description_int": one("arms.sale.description", 2, "wrong_type"),
    "set_bad_path": one("arms.cheaper.set", {"lineup.gloss.prize": 15.0}, "bad_path",
                        at="arms.cheaper.set.lineup.gloss.prize"),
    "set_unknown_product": one("arms.cheaper.set", {"lineup.glos.price": 15.0}, "bad_path",
                               at="arms.cheaper.set.lineup.glos.price"),
    "set_unknown_table": one("arms.cheaper.set", {"lineups.gloss.price": 15.0}, "bad_path",
                             at="arms.cheaper.set.lineups.gloss.price"),
    "set_nan": one("arms.cheaper.set", {"lineup.gloss.price": NAN}, "not_finite",
                   at="arms.cheaper.set.lineup.gloss.price"),
    "set_inf": one("arms.cheaper.set", {"stream.arrivals.schedule": [{"start_s": 0.0, "rate_per_s": INF}]},
                   "not_finite", at="arms.cheaper.set.stream.arrivals.schedule[0].rate_per_s"),
    "set_str": one("arms.cheaper.set", {"lineup.gloss.price": "cheap"}, "wrong_type",
                   at="arms.cheaper.set → lineup.gloss.price"),
    "set_out_of_range": one("arms.cheaper.set", {"lineup.gloss.tactics.lightning_sale.discount": 1.2}, "too_large",
                            at="arms.cheaper.set → lineup.gloss.tactics.lightning_sale.discount"),
    "set_bool_int": one("arms.cheaper.set", {"lineup.gloss.stock": True}, "wrong_type",
                        at="arms.cheaper.set → lineup.gloss.stock"),
    "set_window_outside": case(("arms.cheaper.set", {"stream.duration_s": 1000.0}), expect=[
        ("arms.cheaper.set → lineup.gloss.slot_s", "inconsistent"),
        ("arms.cheaper.set → " + LS + ".end_s", "inconsistent"),
        ("arms.cheaper.set → lineup.serum.slot_s", "inconsistent")]),
    "set_not_table": one("arms.cheaper.set", ["lineup.gloss.price"], "wrong_type"),
    "too_many": one("arms", {"control": {}, **{f"a{i}": {} for i in range(LIMITS["arms"])}}, "limit_exceeded"),
})

# [sweep]
DISC = "lineup.gloss.tactics.lightning_sale.discount"
add("sweep", {
    "design": one("sweep.design", "random", "not_allowed"),
    "grid_empty": one(f"sweep.parameters.{DISC.replace('.', chr(92) + '.')}", [], "inconsistent", at="sweep"),
    "grid_not_list": one(f"sweep.parameters.{DISC.replace('.', chr(92) + '.')}", 0.2, "wrong_type",
                         at=f"sweep.parameters.{DISC}"),
    "grid_unknown_path": one("sweep.parameters", {"lineup.gloss.tactics.lightning_sale.discont": [0.1]}, "bad_path",
                             at="sweep.parameters.lineup.gloss.tactics.lightning_sale.discont"),
    "grid_nan": one("sweep.parameters", {DISC: [0.1, NAN]}, "not_finite", at=f"sweep.parameters.{DISC}[1]"),
    "grid_bad_value": case(("sweep.parameters", {DISC: [0.1, 1.5]}),
                           expect=[(f"sweep point 1 (lineup.gloss.tactics.lightning_sale.discount = 1.5) → {DISC}",
                                    "too_large")]),
    "grid_str_value": case(("sweep.parameters", {DISC: ["a lot"]}),
                           expect=[(f"sweep point 0 (lineup.gloss.tactics.lightning_sale.discount = 'a lot') → {DISC}",
                                    "wrong_type")]),
    "grid_samples": one("sweep.samples", 4, "inconsistent", at="sweep"),
    "grid_too_big": one("sweep.parameters", {DISC: [0.1] * 400, "lineup.gloss.price": [1.0] * 400},
                        "limit_exceeded", at="sweep"),
    "lhs_samples_missing": one("sweep", {"design": "lhs", "parameters": {DISC: {"low": 0.1, "high": 0.5}}},
                               "inconsistent"),
    "lhs_samples_zero": one("sweep", {"design": "lhs", "samples": 0, "parameters": {DISC: {"low": 0.1, "high": 0.5}}},
                            "too_small", at="sweep.samples"),
    "lhs_samples_bool": one("sweep", {"design": "lhs", "samples": True,
                                      "parameters": {DISC: {"low": 0.1, "high": 0.5}}}, "wrong_type",
                            at="sweep.samples"),
    "lhs_samples_huge": one("sweep", {"design": "lhs", "samples": 10**9,
                                      "parameters": {DISC: {"low": 0.1, "high": 0.5}}}, "limit_exceeded"),
    "lhs_range_reversed": one("sweep", {"design": "lhs", "samples": 4, "parameters": {DISC: {"low": 0.5, "high": 0.1}}},
                              "inconsistent", at=f"sweep.parameters.{DISC}"),
    "lhs_range_nan": one("sweep", {"design": "lhs", "samples": 4, "parameters": {DISC: {"low": NAN, "high": 0.1}}},
                         "not_finite", at=f"sweep.parameters.{DISC}.low"),
    "lhs_range_missing": one("sweep", {"design": "lhs", "samples": 4, "parameters": {DISC: {"low": 0.1}}},
                             "missing", at=f"sweep.parameters.{DISC}.high"),
    "lhs_range_unknown_key": one("sweep", {"design": "lhs", "samples": 4,
                                           "parameters": {DISC: {"low": 0.1, "high": 0.5, "hi": 1}}},
                                 "unknown_key", at=f"sweep.parameters.{DISC}.hi"),
    "lhs_list": one("sweep", {"design": "lhs", "samples": 4, "parameters": {DISC: [0.1, 0.2]}}, "inconsistent"),
    "sobol_not_power": one("sweep", {"design": "sobol", "samples": 6,
                                     "parameters": {DISC: {"low": 0.1, "high": 0.5}}}, "inconsistent"),
    "list_mixed_keys": one("sweep", {"design": "list", "points": [{DISC: 0.1}, {"lineup.gloss.price": 2.0}]},
                           "inconsistent"),
    "list_no_points": one("sweep", {"design": "list"}, "inconsistent"),
    "points_for_grid": one("sweep.points", [{DISC: 0.1}], "inconsistent", at="sweep"),
    "seed_negative": one("sweep.seed", -1, "too_small"),
    "unknown_key": one("sweep.paramters", {}, "unknown_key"),
    "too_many_runs": case(("experiment.replicates", 100_000),
                          ("sweep.parameters", {DISC: [0.1 + i / 1000 for i in range(200)]}),
                          expect=[("experiment.replicates", "limit_exceeded")]),
})

# how much one run would simulate
add("run_size", {
    "rate": one("stream.arrivals.schedule.1.rate_per_s", 1e9, "limit_exceeded", at="stream.arrivals"),
    "duration": one("stream.duration_s", 1e300, "limit_exceeded", at="stream.arrivals"),
    "boosts": case((f"{LS}.arrival_boost", 1e6), (f"{EC}.arrival_boost", 1e6),
                   expect=[("stream.arrivals", "limit_exceeded")]),
    "fabricated": one(f"{S}.tactics.social_proof.fabricated_rate_per_s", 1e6, "limit_exceeded"),
    "timer_restarts": one(f"{S}.tactics.countdown_timer.deadline_s", 2000.000001, "limit_exceeded",
                          at=f"{S}.tactics.countdown_timer"),
})

# several problems in one file, from different tables
add("several", {
    "three_tables": case(("stream.duration_s", NAN), ("experiment.replicates", True), (f"{G}.price", -1.0),
                         expect=[("stream.duration_s", "not_finite"), ("experiment.replicates", "wrong_type"),
                                 (f"{G}.price", "too_small")]),
    "five": case(("experiment.common_random_numbers", "no"), ("market.host.cost_per_hour", INF),
                 (f"{CT}.kappa_per_s", NAN), (f"{SP}.saturation", 0), ("arms.sale.tactic", []),
                 expect=[("experiment.common_random_numbers", "wrong_type"),
                         ("market.host.cost_per_hour", "not_finite"),
                         (f"{CT}.kappa_per_s", "not_finite"), (f"{SP}.saturation", "too_small"),
                         ("arms.sale.tactic", "unknown_key")]),
    "control_and_value": case(("experiment.control", "base"), (f"{G}.stock", -3),
                              expect=[("experiment.control", "unknown_name"), (f"{G}.stock", "too_small")]),
    "arms_and_rules": case(("arms.sale.tactics", ["gloss.flash"]), ("arms.ban.remove", ["serum.timer"]),
                           (f"{LS}.end_s", 4000.0),
                           expect=[(f"{LS}.end_s", "inconsistent"), ("arms.sale.tactics", "unknown_name"),
                                   ("arms.ban.remove", "unknown_name")]),
    "missing_tables": case(("stream", DEL), ("lineup", DEL),
                           expect=[("stream", "missing"), ("lineup", "missing")]),
    "profile_and_value": case(("population.profile", "nope"), ("experiment.seed", -1),
                              expect=[("population.profile", "unknown_name"), ("experiment.seed", "too_small")]),
})


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_base_spec_is_valid(tmp_path, capsys):
    spec = tmp_path / "base.toml"
    spec.write_text(to_toml(BASE))
    exp = load_experiment(spec)
    assert list(exp.arms) == ["control", "sale", "all", "ban", "cheaper"] and len(exp.points) == 2
    assert exp.arms["ban"].tactics == tuple(sorted(
        ["gloss.lightning_sale", "gloss.scarcity_cue", "gloss.social_proof", "gloss.exclusive_code",
         "serum.countdown_timer", "serum.social_proof", "serum.scarcity_cue"]))
    assert run_cli(["validate", str(spec)], capsys)[0] == 0


def test_catalogue_is_large():
    assert len(CASES) >= 200
    codes = {code for _, expect in CASES.values() for _, code in expect}
    assert codes <= set(SPEC_ERROR_CODES)


@pytest.mark.parametrize("name", list(CASES))
def test_malformed_spec(name, tmp_path, capsys, monkeypatch):
    spec_dict, expect = CASES[name]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # a default results/ folder would land here
    spec = tmp_path / f"{name}.toml"
    spec.write_text(to_toml(spec_dict))
    with pytest.raises(SpecError) as exc:
        load_experiment(spec)
    got = [(p.path, p.code) for p in exc.value.errors]
    assert got == expect or sorted(got) == sorted(expect), "\n".join(map(str, exc.value.errors))
    for p in exc.value.errors:
        assert p.file == str(spec)
        assert str(p) == f"{spec}: {p.path}: {p.rule} (got {show_value(p.value)})"
        assert len(show_value(p.value)) <= 80
    lines = [f"fomolab: error: {p}" for p in exc.value.errors]
    out = tmp_path / "out"
    for args in (["validate", str(spec)], ["run", str(spec), "--out", str(out), "--quiet"], ["run", str(spec), "-q"]):
        code, stdout, stderr = run_cli(args, capsys)
        assert code == 2, stderr
        assert stderr.splitlines() == lines
        assert "Traceback" not in stderr and stdout == ""
    assert not out.exists()
    assert list(work.iterdir()) == [], "nothing written"


def test_values_are_shortened(tmp_path, capsys):
    spec = tmp_path / "long.toml"
    spec.write_text(to_toml(edit(("experiment.name", "x" * 500_000))))
    code, _, err = run_cli(["validate", str(spec)], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "experiment.name" in err and len(err) < 400


@pytest.mark.parametrize(("content", "code"), [
    ("[experiment\nname = 1\n", "not_toml"),
    (b"name = '\xff\xfe'\n", "not_toml"),
    ("a = " + "[" * 3000 + "]" * 3000 + "\n", "too_deep"),
    ("a = " + "{b = " * 3000 + "1" + "}" * 3000 + "\n", "too_deep"),
    ("[" + ".".join(["t"] * 500) + "]\nx = 1\n", "too_deep"),
    ("description = '" + "x" * (LIMITS["file_bytes"] + 1) + "'\n", "file_too_large"),
    ("[experiment]\nname = 'x'\nseed = 1979-05-27\n", "wrong_type"),
])
def test_malformed_file(content, code, tmp_path, capsys):
    spec = tmp_path / "bad.toml"
    spec.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SpecError) as exc:
        load_experiment(spec)
    assert exc.value.errors[0].code == code
    rc, _, err = run_cli(["run", str(spec), "--out", str(tmp_path / "out"), "-q"], capsys)
    assert rc == 2 and "Traceback" not in err and str(spec) in err
    assert len(err) < 1000
    assert not (tmp_path / "out").exists()


def test_missing_file(tmp_path, capsys):
    rc, _, err = run_cli(["validate", str(tmp_path / "nope.toml")], capsys)
    assert rc == 2 and "does not exist" in err


def test_not_a_profile_is_refused_without_its_contents(tmp_path, capsys):
    (tmp_path / "secret.toml").write_text('password = "hunter2"\n[segments]\nx = "token-123"\n')
    (tmp_path / "broken.toml").write_text('password = "hunter2\n')
    for name in ("secret.toml", "broken.toml"):
        spec = tmp_path / f"uses_{name}"
        spec.write_text(to_toml(edit(("population", {"profile": name}))))
        with pytest.raises(SpecError) as exc:
            load_experiment(spec)
        assert [(p.path, p.code) for p in exc.value.errors] == [("population.profile", "bad_profile")]
        rc, _, err = run_cli(["validate", str(spec)], capsys)
        assert rc == 2 and "hunter2" not in err and "token-123" not in err and "password" not in err


def test_profile_paths_stay_inside_their_folders(tmp_path):
    outside = tmp_path / "outside.toml"
    outside.write_text((Path(fomolab.__file__).parent / "profiles" / "reference.toml").read_text())
    (tmp_path / "exp").mkdir()
    for name in (str(outside), "../outside.toml", "agents/../../outside.toml", "..\\outside.toml"):
        spec = tmp_path / "exp" / "s.toml"
        spec.write_text(to_toml(edit(("population", {"profile": name}))))
        with pytest.raises(SpecError) as exc:
            load_experiment(spec)
        assert exc.value.errors[0].code == "bad_profile", name


def test_profiles_found_by_name_from_any_folder(tmp_path, monkeypatch, root):
    """Shipped profiles need no agents/ folder; one beside the spec wins over them."""
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "s.toml"
    spec.write_text(to_toml(edit(("population", {"profile": "mixed"}))))
    exp = load_experiment(spec)
    assert sorted(exp.arms["control"].scenario.population.segments) == ["average", "deliberate", "impulsive"]
    # from inside experiments/, the repository's own specs validate
    monkeypatch.chdir(root / "experiments")
    assert main(["validate", "lightning_sale.toml"]) == 0
    # a profile of the user's, in agents/ beside the spec, takes precedence over the shipped one
    (tmp_path / "agents").mkdir()
    (tmp_path / "agents" / "mixed.toml").write_text(
        '[segments.mine]\nshare = 1.0\nimpulsiveness = { fixed = 0.5 }\ndwell = { mean_s = 100.0 }\n')
    assert list(load_experiment(spec).arms["control"].scenario.population.segments) == ["mine"]
    # and a relative path inside the spec's folder
    (tmp_path / "crowds").mkdir()
    (tmp_path / "agents" / "mixed.toml").rename(tmp_path / "crowds" / "c.toml")
    spec.write_text(to_toml(edit(("population", {"profile": "crowds/c.toml"}))))
    assert list(load_experiment(spec).arms["control"].scenario.population.segments) == ["mine"]


def test_subprocess_reports_every_problem(tmp_path):
    """The console entry point, in a fresh interpreter and an empty folder: exit 2, lines, no traceback."""
    spec_dict, expect = CASES["several-five"]
    spec = tmp_path / "five.toml"
    spec.write_text(to_toml(spec_dict))
    work = tmp_path / "empty"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(Path(fomolab.__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "fomolab.cli", "run", str(spec), "-q"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == len(expect) and "Traceback" not in proc.stderr
    for line in lines:
        assert line.startswith(f"fomolab: error: {spec}: ") and "(got " in line
    assert all(any(f": {path}: " in line for line in lines) for path, _ in expect)
    assert list(work.iterdir()) == []


def test_error_pickles_with_every_problem():
    import pickle

    with pytest.raises(SpecError) as exc:
        load_experiment_from(edit(("experiment.seed", -1), (f"{G}.price", NAN)))
    again = pickle.loads(pickle.dumps(exc.value))
    assert str(again) == str(exc.value) and len(exc.value.errors) == 2
    assert [(p.path, p.code) for p in again.errors] == [(p.path, p.code) for p in exc.value.errors]


def load_experiment_from(spec: dict[str, Any]):
    from fomolab.spec import parse_spec

    return parse_spec(spec, source="<test>")


def test_limits_are_inclusive():
    spec = edit(("experiment.replicates", LIMITS["replicates"]))
    spec.pop("sweep")
    assert load_experiment_from(spec).replicates == LIMITS["replicates"]


def test_long_keys_and_lists_are_shortened(tmp_path, capsys):
    """A huge key or a thousand names never make a huge message."""
    spec = tmp_path / "keys.toml"
    spec.write_text(to_toml(edit((f"{G}.{'k' * 100_000}", 1.0),
                                 ("arms", {f"arm_{i}": {} for i in range(999)}))))
    code, _, err = run_cli(["validate", str(spec)], capsys)
    lines = err.splitlines()
    assert code == 2 and len(lines) == 2, lines
    assert all(len(line) < 1000 for line in lines), [len(line) for line in lines]
    assert any("unknown key" in line for line in lines) and any("experiment.control" in line for line in lines)


def test_recorded_specs_of_earlier_versions_stay_readable():
    """A results folder records its resolved spec; one written before strict types is still read."""
    from fomolab.spec import parse_spec

    old = edit((f"{G}.stock", 500.0), ("experiment.replicates", 2.0))
    with pytest.raises(SpecError):
        parse_spec(old, source="manifest.json")
    exp = parse_spec(old, source="manifest.json", resolve=False)
    assert exp.replicates == 2 and exp.arms["sale"].scenario.lineup["gloss"].stock == 500
    with pytest.raises(SpecError) as exc:  # NaN is refused either way
        parse_spec(edit((f"{G}.price", NAN)), source="manifest.json", resolve=False)
    assert exc.value.code == "not_finite"


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


ODD_VALUES = ["x", -1, 0, True, 2.5, 10**18, [], {}, [NAN], {"a": INF}, {"low": 1.0}, ["gloss.*"], [0.0, 1.0], DEL]


def test_any_value_anywhere_gives_spec_errors_only():
    """Every key of the spec, set to each odd value: a SpecError (or a valid spec), never another exception."""
    from fomolab.spec import parse_spec

    refused = 0
    for loc in _paths(BASE):
        for value in ODD_VALUES:
            spec = copy.deepcopy(BASE)
            node = spec
            for part in loc[:-1]:
                node = node[part]
            if value is DEL:
                del node[loc[-1]]
            else:
                node[loc[-1]] = copy.deepcopy(value)
            try:
                parse_spec(spec, source="<odd>")
            except SpecError as exc:
                refused += 1
                problems = exc.errors
            else:
                continue
            assert problems and all(p.code in SPEC_ERROR_CODES for p in problems)
            assert all(len(str(p)) < 1000 for p in problems)
    assert refused > 0.8 * len(_paths(BASE)) * len(ODD_VALUES)
