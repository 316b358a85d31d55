"""``tamis dsir`` (and ``tamis select``) end to end on real demo text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from corpora import write_config

from tamis.pipelines.dsir import key_bins
from tamis.selectors.dsir import HashedNgramSelector, gumbel_keys
from tamis.selectors.precision import tie_keys
from tamis.selectors.sampling import top_by_budget
from tamis.selectors.tokens import count_tokens
from tamis.storage.records import hashed_ids

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"


@pytest.fixture
def pool(tmp_path) -> Path:
    table = pq.read_table(DEMO / "corpus" / "part-00003.parquet").drop_columns(["id"])
    table = table.take(pa.array(range(0, 2400, 3)))  # every domain: rows are sorted by id
    folder = tmp_path / "pool"
    folder.mkdir()
    pq.write_table(table.slice(0, 400), folder / "a.parquet", row_group_size=150)
    pq.write_table(table.slice(400), folder / "b.parquet", row_group_size=150)
    return folder


def test_dsir_job_selects_what_the_selector_selects(tmp_path, pool, run_cli):
    config = write_config(tmp_path / "d.yaml", method="dsir", inputs=[str(pool)],
                          target=[str(DEMO / "specialist")], output=str(tmp_path / "out"),
                          budget={"tokens": 15_000}, seed=4, min_words=20)
    code, _, err = run_cli("select", config, "--workers", "1")
    assert code == 0, err
    assert run_cli("verify", tmp_path / "out")[0] == 0
    # brute force over the whole pool in memory
    texts, ids, tokens = [], [], []
    for path in sorted(pool.iterdir()):
        t = pq.read_table(path)
        texts += t.column("text").to_pylist()
        ids += hashed_ids(path.name, list(range(t.num_rows)))
        tokens += count_tokens(t.column("text")).tolist()
    target = pq.read_table(DEMO / "specialist").column("text").to_pylist()
    selector = HashedNgramSelector(min_tokens=20).fit(target, texts)
    keys = gumbel_keys(selector.score(texts), ids, 4)
    expected = {ids[i] for i in top_by_budget(keys, np.array(tokens), 15_000, tie_keys(ids, 4))}
    table = pq.read_table(tmp_path / "out" / "data")
    assert set(table.column("id").to_pylist()) == expected
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    acc = manifest["accounting"]
    assert acc["rows_in"] == 800 and acc["rows_kept"] == len(expected)
    assert acc["rows_kept"] + sum(acc["rows_dropped"].values()) == 800
    assert acc["rows_dropped"]["too_short"] == int(np.sum(~np.isfinite(keys)))
    assert 14_000 < manifest["outputs"]["tokens"] <= 15_000
    domains = table.column("domain").to_pylist()
    pool_domains = pq.read_table(pool).column("domain").to_pylist()
    share = pool_domains.count("python_docs") / len(pool_domains)
    assert domains.count("python_docs") / len(domains) > 1.5 * share


def test_key_bins_keep_the_order_of_keys():
    keys = np.array([-1e12, -50.0, -1.0, 0.0, 2.0**-16, 0.5, 3.0, 300.0, 1e12, -np.inf])
    bins = key_bins(keys)
    assert np.all(np.diff(bins[:-1]) <= 0) and bins[-1] == 1 << 16
    assert len(set(bins[1:-2].tolist())) == 7  # distinct keys stay apart


def test_select_names_a_method_and_runs_dsir_without_one(tmp_path, pool, run_cli):
    config = write_config(tmp_path / "d.yaml", inputs=[str(pool)], output=str(tmp_path / "d"),
                          target=[str(pool)], budget={"tokens": 2000})
    code, out, _ = run_cli("select", config, "--dry-run")  # no method: the default
    assert code == 0 and "tamis dsir: dry run" in out
    config = write_config(tmp_path / "u.yaml", method="uniform", inputs=[str(pool)],
                          output=str(tmp_path / "u"), budget={"rows": 10})
    code, out, _ = run_cli("select", config, "--dry-run")
    assert code == 0 and "tamis sample: dry run" in out
    config = write_config(tmp_path / "x.yaml", method="random", inputs=[str(pool)])
    code, _, err = run_cli("select", config)
    assert code == 2
    assert ("'method' must be one of uniform, crisp, hybrid, dsir, relevance, mmr, got "
            "'random'") in err


def test_a_budget_over_the_eligible_pool_has_no_cut_off_bin():
    from tamis.pipelines.topk import KEY, RELATIVE, _boundary
    from tamis.selectors.sampling import Cutoff
    from tamis.storage.records import ROW, SRC

    table = pa.table({KEY: [-np.inf, -np.inf, 3.0], "id": ["a", "b", "c"], SRC: [0, 0, 0],
                      ROW: [0, 1, 2], "n_tokens": [5, 5, 5]})
    assert list(_boundary(table, Cutoff(bin=1 << 16, remaining=0), RELATIVE, 0)) == []
