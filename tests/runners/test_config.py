from __future__ import annotations

import pytest

from tamis.runners.config import apply_overrides, config_hash, load, read_yaml
from tamis.runners.jobs.sample import SampleConfig
from tamis.runners.sections import Budget
from tamis.storage.errors import ConfigError

BASE = {"inputs": ["data"], "output": "out", "budget": {"rows": 10}}


def test_loads_with_defaults_and_nested_sections():
    config = load(SampleConfig, BASE)
    assert config.inputs == ("data",)
    assert config.budget == Budget(rows=10)
    assert (config.budget.unit, config.budget.amount) == ("rows", 10)
    assert config.text_column == "text" and config.seed == 0


def test_unknown_key_names_the_key_and_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"unknown key 'bugdet' \(did you mean 'budget'\?\); "
                                          r"allowed: inputs, text_column, id_column, "
                                          r"on_corrupt, on_duplicate_id, output"):
        load(SampleConfig, {**BASE, "bugdet": 3})
    with pytest.raises(ConfigError, match=r"unknown key 'budget.row' \(did you mean 'rows'"):
        load(SampleConfig, {**BASE, "budget": {"row": 3}})


@pytest.mark.parametrize("key,value,message", [
    ("seed", "x", "'seed' must be a whole number, got 'x'"),
    ("seed", True, "'seed' must be a whole number"),
    ("allocation", "fair", "'allocation' must be one of 'proportional', 'equal', got 'fair'"),
    ("inputs", 3, "'inputs' must be a list"),
    ("inputs", [], "'inputs' must name at least one"),
    ("budget", {"rows": 1, "tokens": 2}, "exactly one of 'rows' or 'tokens', got rows, tokens"),
    ("budget", {}, "exactly one of 'rows' or 'tokens', got neither"),
    ("budget", {"tokens": -5}, "'budget.tokens' must be positive"),
    ("text_column", 5, "'text_column' must be text"),
])
def test_bad_values_are_named(key, value, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(SampleConfig, {**BASE, key: value})


def test_missing_required_key():
    with pytest.raises(ConfigError, match="missing key 'budget'"):
        load(SampleConfig, {"inputs": ["a"], "output": "o"})


def test_overrides_parse_yaml_values_and_create_sections():
    data = apply_overrides(BASE, ["budget.rows=25", "seed=3", "stratify_by=domain",
                                  "inputs=[a, b]"])
    config = load(SampleConfig, data)
    assert (config.budget.rows, config.seed, config.stratify_by) == (25, 3, "domain")
    assert config.inputs == ("a", "b")
    assert BASE["budget"] == {"rows": 10}  # the original is untouched
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_overrides(BASE, ["seed"])
    with pytest.raises(ConfigError, match="'seed' is not a section"):
        apply_overrides(BASE | {"seed": 1}, ["seed.x=1"])


def test_hash_depends_on_content_only():
    a = load(SampleConfig, BASE)
    b = load(SampleConfig, dict(reversed(list(BASE.items()))))
    assert config_hash(a) == config_hash(b)
    assert config_hash(a) != config_hash(load(SampleConfig, {**BASE, "seed": 1}))


def test_read_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_yaml(str(tmp_path / "none.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: [a\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(str(bad))
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        read_yaml(str(scalar))


def test_yaml_values_of_other_types_are_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("inputs: [a]\noutput: 2024-01-01\nbudget: {rows: 1}\n")
    data = apply_overrides(read_yaml(str(path)), ["seed=18446744073709551616"])
    with pytest.raises(ConfigError, match="'output' must be text, got datetime.date"):
        load(SampleConfig, data)


def test_config_files_that_are_not_yaml_text_are_named(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, not a YAML file"):
        read_yaml(str(tmp_path))
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"inputs: [caf\xe9]\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        read_yaml(str(latin))


def test_select_refuses_a_method_that_is_not_a_name():
    from tamis.runners.jobs import select

    with pytest.raises(ConfigError, match="'method' must be one of"):
        select({"method": ["dsir"]})
