"""The self-check's packaged scenarios: each parses, and a value set by a path the file lacks fails."""

from __future__ import annotations

import re
from importlib import resources

import pytest

from fomolab.validation._sim import experiment, scenario

NAMES = sorted(p.name.removesuffix(".toml")
               for p in resources.files("fomolab.validation").joinpath("scenarios").iterdir()
               if p.name.endswith(".toml"))


def test_the_scenarios_are_shipped():
    assert {"reference_flash", "planted", "few_replicates", "elasticity"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_each_scenario_parses_and_opens_with_a_comment(name):
    text = resources.files("fomolab.validation").joinpath("scenarios", f"{name}.toml").read_text("utf-8")
    assert text.startswith("# ")
    assert experiment(scenario(name)).name


def test_overrides_set_existing_values_and_refuse_a_missing_one():
    sp = scenario("elasticity", **{"stream.arrivals.schedule.0.rate_per_s": 4.0, "experiment.replicates": 3})
    assert sp["stream"]["arrivals"]["schedule"][0]["rate_per_s"] == 4.0 and sp["experiment"]["replicates"] == 3
    assert scenario("elasticity")["stream"]["arrivals"]["schedule"][0]["rate_per_s"] == 0.25  # a fresh copy
    with pytest.raises(KeyError, match=re.escape("elasticity.toml has no value at 'experiment.replicate'")):
        scenario("elasticity", **{"experiment.replicate": 3})
