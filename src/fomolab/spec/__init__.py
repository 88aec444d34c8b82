"""Experiment specs: TOML in, a frozen and validated :class:`Experiment` out.

A spec states a stream, a lineup, a population and the arms to compare.  It is
parsed, its population profile resolved, and validated once; nothing
downstream re-checks or mutates it.  Every problem of a spec is reported at
once, in one :class:`~fomolab.errors.SpecError` whose ``errors`` list each
problem's file, key path, value, rule and code (``file: key.path: rule (got
value)``), with the nearest valid key for a typo.

Layout of a spec (see ``docs/MODEL.md`` for every parameter)::

    [experiment]      name, description, seed, replicates, control
    [stream]          duration_s, [stream.arrivals] rate_per_s | schedule
    [population]      profile = "mixed" (a shipped profile, or one in agents/)
                      and/or segments
    [lineup.NAME]     price, base_rate_per_s, stock, slot_s,
                      [lineup.NAME.tactics.KIND] the tactic's parameters
    [arms.NAME]       tactics = ["NAME.KIND", "*.social_proof", ...],
                      set = {"dotted.path" = value}  (overrides for this arm)

The package's modules, one job each:

==============  ==============================================================
``models``      the tables as models; :class:`Experiment`, :class:`Arm`, ...
``parse``       the stages from TOML to an :class:`Experiment`
``limits``      sizes a spec may have; reading TOML safely
``profiles``    where population profiles are found, and inlining them
``paths``       dotted paths (``set``, sweeps) into the scenario tables
``rules``       rules that span several keys
``problems``    collecting problems; pydantic's errors by their types
==============  ==============================================================
"""

from __future__ import annotations

from fomolab.spec.limits import LIMITS
from fomolab.spec.models import SCENARIO_KEYS, Arm, ArmSpec, Experiment, Header, Point, Scenario, SpecModel
from fomolab.spec.parse import load_experiment, parse_spec
from fomolab.spec.paths import leaf_paths
from fomolab.spec.profiles import profile_dirs

__all__ = ["Header", "ArmSpec", "Scenario", "SpecModel", "Arm", "Point", "Experiment", "load_experiment",
           "parse_spec", "LIMITS", "SCENARIO_KEYS", "leaf_paths", "profile_dirs"]
