"""Bad configs get one line before any work; the trainer-side reader refuses altered shards;
degenerate results are warned about in the manifest and on the console."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from reliability.faults import config, demo_rows, manifest, sample_config

from tamis.storage.errors import VerifyError
from tamis.storage.manifest import ManifestReader


@pytest.mark.parametrize("overrides,message", [
    (["budget.rows=[1,"], "the value is not valid YAML"),
    (["budget.rows"], "expected key=value"),
    (["=3"], "expected key=value"),
    (["budget..rows=3"], "expected key=value"),
    (["budgt.rows=3"], "unknown key 'budgt'"),
    (["budget.rows=many"], "'budget.rows' must be a whole number"),
    (["budget.rows=-5"], "must be positive"),
    (["seed=1.5"], "'seed' must be a whole number"),
    (["inputs=[]"], "'inputs' must name at least one"),
    (["on_corrupt=ignore"], "'on_corrupt' must be one of 'stop', 'skip'"),
    (["on_duplicate_id=drop"], "'on_duplicate_id' must be one of"),
    (["budget=3"], "'budget' must be a section (a mapping of keys), got 3"),
])
def test_bad_settings_get_one_line(tmp_path, cli, pool, overrides, message):
    argv = [x for o in overrides for x in ("--set", o)]
    code, _, err = cli("sample", sample_config(tmp_path, [pool]), *argv, "--dry-run")
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1


def test_set_replaces_the_alternative_of_a_budget(tmp_path, cli, pool):
    cfg = sample_config(tmp_path, [pool], budget={"tokens": 5000})
    code, out, _ = cli("sample", cfg, "--set", "budget.rows=50", "--dry-run")
    assert code == 0 and "~50 rows" in out


def test_the_readme_example_of_set_works(tmp_path, cli):
    example = Path(__file__).resolve().parents[2] / "examples" / "sample.yaml"
    code, _, err = cli("sample", example, "--set", "budget.rows=500", "--set",
                       f"output={tmp_path / 'o'}", "--dry-run")
    assert code == 0, err


def test_conflicting_keys_are_an_error(tmp_path, cli, pool):
    cfg = config(tmp_path / "q.yaml", inputs=[str(pool)], positives=[str(pool / "a.parquet")],
                 output=str(tmp_path / "q"), keep_top=0.2, threshold=0.5)
    code, _, err = cli("quality", cfg, "--dry-run")
    assert code == 2 and "'keep_top' and 'threshold' cannot both be set" in err


def test_a_config_that_is_not_yaml_gets_one_line(tmp_path, cli):
    bad = tmp_path / "bad.yaml"
    bad.write_text("inputs: [unclosed\n")
    code, _, err = cli("sample", bad)
    assert code == 2 and "not valid YAML" in err


def test_help_lists_every_key_with_its_default(cli, capsys):
    from tamis.runners.cli import main

    with pytest.raises(SystemExit):
        main(["dsir", "--help"])
    out = capsys.readouterr().out
    for key, default in [("budget.tokens", "none"), ("ngrams", "2"), ("on_corrupt", "stop"),
                         ("num_buckets", "10,000")]:
        line = next(line for line in out.splitlines() if line.strip().startswith(key + " "))
        assert default in line, line


def _selected(tmp_path, cli, pool) -> Path:
    assert cli("sample", sample_config(tmp_path, [pool]), "--workers", "1")[0] == 0
    return tmp_path / "out"


def test_the_reader_refuses_a_shard_with_a_flipped_byte(tmp_path, cli, pool):
    out = _selected(tmp_path, cli, pool)
    shard = out / manifest(out)["outputs"]["shards"][0]["path"]
    data = bytearray(shard.read_bytes())
    data[len(data) // 3] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(VerifyError, match="sha256 differs from the manifest's"):
        list(ManifestReader(str(out)).records())
    with pytest.raises(VerifyError, match=shard.name):
        ManifestReader(str(out)).sample(5)
    code, _, err = cli("verify", out)
    assert code == 1 and "sha256" in err


def test_the_reader_names_a_missing_or_truncated_shard(tmp_path, cli, pool):
    out = _selected(tmp_path, cli, pool)
    shard = out / manifest(out)["outputs"]["shards"][0]["path"]
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(VerifyError, match="bytes, the manifest says"):
        list(ManifestReader(str(out), verify=False).records())
    shard.unlink()
    with pytest.raises(VerifyError, match=f"{shard.name}: missing"):
        list(ManifestReader(str(out)).records())


def test_the_reader_reads_intact_shards_with_or_without_checksums(tmp_path, cli, pool):
    out = _selected(tmp_path, cli, pool)
    checked = list(ManifestReader(str(out)).records(columns=["id"]))
    fast = list(ManifestReader(str(out), verify=False).records(columns=["id"]))
    assert checked == fast and len(checked) == 100


def _quality(tmp_path, cli, positives: Path, **keys) -> tuple[dict, str]:
    cfg = config(tmp_path / "q.yaml", inputs=[str(tmp_path / "pool")],
                 positives=[str(positives)], output=str(tmp_path / "q"), **keys)
    code, _, err = cli("quality", cfg, "--workers", "1")
    assert code == 0, err
    return manifest(tmp_path / "q"), err


def test_a_classifier_that_learned_nothing_is_flagged(tmp_path, cli, pool):
    # Positives drawn like the pool: there is nothing to learn.
    pq.write_table(demo_rows(120, start=300), tmp_path / "like-pool.parquet")
    m, err = _quality(tmp_path, cli, tmp_path / "like-pool.parquet", holdout=0.3,
                      fasttext={"epoch": 1})
    warnings = " ".join(m["warnings"])
    assert "at chance" in warnings or "barely separates" in warnings, m["warnings"]
    assert "warning:" in err


def test_a_tiny_positive_set_is_flagged(tmp_path, cli, pool):
    pq.write_table(demo_rows(3, start=300), tmp_path / "three.parquet")
    m, _ = _quality(tmp_path, cli, tmp_path / "three.parquet")
    assert any("too few to measure" in w for w in m["warnings"]), m["warnings"]


def test_ties_that_keep_more_than_asked_say_how_much(tmp_path, cli):
    import pyarrow as pa

    same = tmp_path / "same"
    same.mkdir()
    text = demo_rows(1, start=50).column("text")[0].as_py()
    pq.write_table(pa.table({"id": [f"s{i}" for i in range(200)], "text": [text] * 200}),
                   same / "a.parquet")  # one text 200 times: every score ties
    pq.write_table(demo_rows(40, start=300), tmp_path / "hq.parquet")
    cfg = config(tmp_path / "q.yaml", inputs=[str(same)], positives=[str(tmp_path / "hq.parquet")],
                 output=str(tmp_path / "q"), keep_top=0.1)
    assert cli("quality", cfg, "--workers", "1")[0] == 0
    m = manifest(tmp_path / "q")
    assert m["accounting"]["rows_kept"] == 200
    assert any("ties at the cut-off score keep 100.0% of the pool, not the 10.0% asked "
               "(180 rows more)" in w for w in m["warnings"]), m["warnings"]


def test_a_short_budget_is_flagged(tmp_path, cli, pool):
    cfg = sample_config(tmp_path, [pool], budget={"rows": 5000})
    code, _, err = cli("sample", cfg, "--workers", "1")
    assert code == 0
    m = manifest(tmp_path / "out")
    assert any("of its budget of 5,000" in w for w in m["warnings"]), m["warnings"]
    assert "budget is short by 4,760 rows" in err


def test_a_full_budget_is_not_flagged(tmp_path, cli, pool):
    assert cli("sample", sample_config(tmp_path, [pool]), "--workers", "1")[0] == 0
    assert manifest(tmp_path / "out")["warnings"] == []
