"""``tamis sample`` end to end on the local Beam runner, from the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from corpora import make_rows, write_config, write_parquet

from tamis.selectors.sampling import allocate, row_keys
from tamis.selectors.tokens import count_tokens
from tamis.storage.records import hashed_ids

pytestmark = pytest.mark.slow


def tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def read_shards(out: Path) -> pa.Table:
    manifest = json.loads((out / "manifest.json").read_text())
    return pa.concat_tables([pq.read_table(out / s["path"]) for s in manifest["outputs"]["shards"]])


def without_timestamp(path: Path) -> dict:
    manifest = json.loads(path.read_text())
    assert manifest.pop("created_at")
    return manifest


@pytest.fixture
def config(tmp_path, corpus):
    return write_config(tmp_path / "job.yaml", inputs=[str(corpus)], output=str(tmp_path / "out"),
                        budget={"tokens": 1500}, stratify_by="domain", seed=11, num_shards=3)


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path, config, run_cli):
    before = tree(tmp_path)
    code, out, err = run_cli("sample", config, "--dry-run", "--workers", "2")
    assert code == 0, err
    assert tree(tmp_path) == before
    assert "dry run" in out and "3 files, 360 rows" in out
    assert "budget: 1,500 tokens, stratified by 'domain' (proportional), seed 11" in out
    assert "3 shard(s)" in out
    for stage in ("SampleUniform", "ReadForHistogram", "Histogram", "Select", "WriteShards",
                  "WriteManifest"):
        assert f"  {stage}\n" in out + "\n"


def test_run_writes_shards_and_a_manifest_that_verifies(tmp_path, config, run_cli):
    code, _, err = run_cli("sample", config, "--workers", "1")
    assert code == 0, err
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        f"part-0000{i}-of-00003.parquet" for i in range(3)]
    code, stdout, _ = run_cli("verify", out)
    assert code == 0 and "OK" in stdout
    manifest = json.loads((out / "manifest.json").read_text())
    acc = manifest["accounting"]
    assert acc["rows_in"] == 360 and acc["rows_rejected"] == {}
    assert acc["rows_kept"] + acc["rows_dropped"]["not_sampled"] == 360
    assert manifest["outputs"]["tokens"] <= 1500
    assert manifest["outputs"]["tokens"] > 1500 - 40  # stops within a row or two per stratum
    assert all(len(i["sha256"]) == 64 for i in manifest["inputs"])
    strata = manifest["mixture"]["by_stratum"]
    assert set(strata) == {"alpha", "beta"}
    for s in strata.values():
        assert abs(s["pool_share"] - s["selected_share"]) < 0.02  # proportional
    table = read_shards(out)
    assert table.schema.names == ["id", "text", "domain", "score", "n_tokens", "weight",
                                  "n_samples"]
    assert set(table.column("n_samples").to_pylist()) == {1}


def test_flipping_one_byte_of_a_shard_fails_verify(tmp_path, config, run_cli):
    assert run_cli("sample", config, "--workers", "1")[0] == 0
    shard = sorted((tmp_path / "out" / "data").iterdir())[1]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    code, _, err = run_cli("verify", tmp_path / "out")
    assert code == 1
    assert f"data/{shard.name}: sha256 is" in err


def test_selection_matches_a_brute_force_reference(tmp_path, corpus, config, run_cli):
    assert run_cli("sample", config, "--workers", "1")[0] == 0
    rows = []
    for path in sorted(corpus.iterdir()):
        table = pq.read_table(path)
        ids = hashed_ids(path.name, list(range(table.num_rows)))
        tokens = count_tokens(table.column("text")).tolist()
        rows += [(i, t, d) for i, t, d in zip(ids, tokens, table.column("domain").to_pylist(),
                                              strict=True)]
    keys = row_keys([r[0] for r in rows], seed=11)
    labels = ["alpha", "beta"]
    sizes = [sum(r[1] for r in rows if r[2] == lab) for lab in labels]
    expected = set()
    for lab, budget in zip(labels, allocate(sizes, 1500, "proportional"), strict=True):
        used = 0
        for _, i, t in sorted((int(k), r[0], r[1]) for k, r in zip(keys, rows, strict=True)
                              if r[2] == lab):
            if used + t > budget:
                break
            used += t
            expected.add(i)
    assert set(read_shards(tmp_path / "out").column("id").to_pylist()) == expected


def test_reruns_and_worker_counts_give_identical_outputs(tmp_path, config, run_cli):
    out = tmp_path / "out"
    assert run_cli("sample", config, "--workers", "1")[0] == 0
    first = {p: (out / p).read_bytes() for p in tree(out) if (out / p).is_file()}
    first_manifest = without_timestamp(out / "manifest.json")
    for workers in ("2",):  # a rerun, on another number of workers
        code, _, err = run_cli("sample", config, "--workers", workers, "--overwrite")
        assert code == 0, err
        again = {p: (out / p).read_bytes() for p in tree(out) if (out / p).is_file()}
        assert again.keys() == first.keys()
        for name in first:
            if name != "manifest.json":
                assert again[name] == first[name], f"{name} differs with {workers} worker(s)"
        assert without_timestamp(out / "manifest.json") == first_manifest


def test_every_row_is_accounted_for_with_bad_rows_of_several_kinds(tmp_path, run_cli):
    data = tmp_path / "in"
    good = make_rows(40)
    bad = [{"text": None, "domain": "alpha", "score": 1.0},
           {"text": "", "domain": "beta", "score": 1.0},
           {"text": " \n\t ", "domain": "alpha", "score": 1.0}]
    write_parquet(data / "a.parquet", good[:20] + bad, row_group_size=7)
    pq.write_table(pa.table({"text": [1, 2, 3], "domain": ["alpha"] * 3, "score": [0.0] * 3}),
                   data / "b.parquet")
    lines = [json.dumps(r) for r in good[20:]] + [
        "{broken json", json.dumps({"text": 7, "domain": "beta"}), json.dumps([1, 2]),
        json.dumps({"domain": "beta"}), json.dumps({"text": "x", "score": "high"})]
    (data / "c.jsonl").write_text("\n".join(lines) + "\n")
    config = write_config(tmp_path / "job.yaml", inputs=[str(data)], output=str(tmp_path / "out"),
                          budget={"rows": 25})
    code, _, err = run_cli("sample", config, "--workers", "1")
    assert code == 0, err
    assert "b.parquet: column 'text' is int64, not text" in err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    acc = manifest["accounting"]
    assert acc["rows_in"] == 40 + 3 + 3 + 5
    assert acc["rows_rejected"] == {"null_text": 2, "empty_text": 2, "non_string_text": 4,
                                    "invalid_json": 1, "not_an_object": 1, "bad_value": 1}
    assert acc["rows_kept"] == 25 and acc["rows_dropped"] == {"not_sampled": 15}
    assert run_cli("verify", tmp_path / "out")[0] == 0
    rejects = pa.concat_tables(pq.read_table(tmp_path / "out" / r["path"])
                               for r in manifest["outputs"]["rejects"])
    by_source = {}
    for r in rejects.to_pylist():
        by_source.setdefault(r["source"], []).append((r["row"], r["reason"]))
    assert by_source["a.parquet"] == [(20, "null_text"), (21, "empty_text"), (22, "empty_text")]
    assert [reason for _, reason in by_source["b.parquet"]] == ["non_string_text"] * 3
    assert by_source["c.jsonl"] == [(20, "invalid_json"), (21, "non_string_text"),
                                    (22, "not_an_object"), (23, "null_text"), (24, "bad_value")]


@pytest.mark.parametrize("change,message", [
    ({"inputs": ["missing-folder"]}, "input .*missing-folder does not exist"),
    ({"text_column": "body"}, "part-0.parquet: no column 'body'"),
    ({"stratify_by": "topic"}, "part-0.parquet: no column 'topic'"),
    ({"budgte": 3}, "unknown key 'budgte'"),
])
def test_bad_configs_and_inputs_stop_before_any_work(tmp_path, corpus, run_cli, change, message):
    keys = {"inputs": [str(corpus)], "output": str(tmp_path / "out"), "budget": {"rows": 5}}
    config = write_config(tmp_path / "job.yaml", **{**keys, **change})
    code, out, err = run_cli("sample", config)
    assert code == 2
    assert err.startswith("tamis: error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_output_folder_is_protected_and_beam_flags_are_checked(tmp_path, config, run_cli):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    code, _, err = run_cli("sample", config, "--workers", "1")
    assert code == 2 and "is not empty" in err
    code, _, err = run_cli("sample", config, "--workers", "1", "--overwrite")
    assert code == 2 and "holds notes.txt, which tamis did not write" in err
    code, _, err = run_cli("sample", config, "--no_such_flag=1", "--dry-run")
    assert code == 2 and "unknown option --no_such_flag" in err


def test_a_budget_larger_than_the_pool_keeps_everything_and_says_so(tmp_path, corpus, run_cli):
    config = write_config(tmp_path / "job.yaml", inputs=[str(corpus)],
                          output=str(tmp_path / "out"), budget={"rows": 10_000})
    code, _, err = run_cli("sample", config, "--workers", "1")
    assert code == 0
    assert "exceeds the pool's 360 rows" in err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["accounting"]["rows_kept"] == 360


def test_equal_allocation_balances_strata_and_weights_undo_it(tmp_path, corpus, run_cli):
    config = write_config(tmp_path / "job.yaml", inputs=[str(corpus)],
                          output=str(tmp_path / "out"), budget={"rows": 100},
                          stratify_by="domain", allocation="equal")
    assert run_cli("sample", config, "--workers", "1")[0] == 0
    table = read_shards(tmp_path / "out")
    domains = table.column("domain").to_pylist()
    assert domains.count("alpha") == domains.count("beta") == 50
    weights = dict(zip(domains, table.column("weight").to_pylist(), strict=True))
    assert weights["alpha"] == pytest.approx(240 / 360 / 0.5)
    assert weights["beta"] == pytest.approx(120 / 360 / 0.5)
