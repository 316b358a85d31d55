"""``tamis quality`` end to end with the real fastText on demo text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from corpora import write_config

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("quality") / "pool"
    folder.mkdir()
    table = pq.read_table(DEMO / "corpus" / "part-00002.parquet")
    pq.write_table(table.take(pa.array(range(0, 2500, 2))), folder / "a.parquet",
                   row_group_size=400)
    return folder


def run(run_cli, tmp_path, name, **keys) -> dict:
    base = {"inputs": [str(keys.pop("pool"))], "positives": [str(DEMO / "specialist")],
            "output": str(tmp_path / name), "negatives": 400, "fasttext": {"epoch": 20}}
    config = write_config(tmp_path / f"{name}.yaml", **{**base, **keys})
    code, _, err = run_cli("quality", config, "--workers", "1")
    assert code == 0, err
    assert run_cli("verify", tmp_path / name)[0] == 0
    return json.loads((tmp_path / name / "manifest.json").read_text())


def test_keeps_the_top_share_with_its_diagnostics(tmp_path, pool, run_cli):
    manifest = run(run_cli, tmp_path, "q", pool=pool, keep_top=0.25)
    acc = manifest["accounting"]
    assert acc["rows_in"] == 1250 and acc["rows_kept"] == 313  # ceil(25% of 1,250)
    assert acc["rows_dropped"] == {"below_quality_threshold": 937}
    table = pq.read_table(tmp_path / "q" / "data")
    scores = table.column("quality_score").to_numpy()
    assert scores.min() >= manifest["selector"]["threshold"]
    domains = table.column("domain").to_pylist()
    assert domains.count("python_docs") / len(domains) > 0.6  # the positives' domain
    selector = manifest["selector"]
    assert selector["heldout_accuracy"] > 0.6  # 55 held-out documents: a rough figure
    assert 0 <= selector["hq_pass_share"] <= 1
    assert selector["score_length_spearman"] is not None
    assert sum(selector["score_histogram"]["counts"]) == 1250


def test_exact_and_approximate_thresholds_agree(tmp_path, pool, run_cli):
    exact = run(run_cli, tmp_path, "exact", pool=pool, keep_top=0.3, quantiles="exact")
    approx = run(run_cli, tmp_path, "approx", pool=pool, keep_top=0.3, quantiles="approximate")
    assert approx["selector"]["threshold"] == pytest.approx(exact["selector"]["threshold"],
                                                            abs=0.02)
    assert abs(approx["accounting"]["rows_kept"] - exact["accounting"]["rows_kept"]) <= 25


def test_annotate_only_drops_nothing(tmp_path, pool, run_cli):
    manifest = run(run_cli, tmp_path, "ann", pool=pool, annotate_only=True)
    assert manifest["accounting"]["rows_kept"] == 1250
    assert manifest["accounting"]["rows_dropped"] == {}
    scores = pq.read_table(tmp_path / "ann" / "data").column("quality_score").to_numpy()
    assert np.all((scores >= 0) & (scores <= 1))


def test_length_matching_brings_negatives_to_the_positive_lengths(tmp_path, pool, run_cli):
    plain = run(run_cli, tmp_path, "plain", pool=pool, negatives=200)
    matched = run(run_cli, tmp_path, "matched", pool=pool, negatives=200, length_match=True)
    positive_chars = np.mean([len(t) for t in pq.read_table(DEMO / "specialist")
                              .column("text").to_pylist()])
    assert matched["selector"]["negatives"] > 150
    assert (abs(np.log(matched["selector"]["negative_mean_chars"] / positive_chars))
            < abs(np.log(plain["selector"]["negative_mean_chars"] / positive_chars)))


def test_a_trained_model_scores_another_run_without_training(tmp_path, pool, run_cli):
    first = run(run_cli, tmp_path, "train", pool=pool, keep_top=0.5)
    model = tmp_path / "train" / first["selector"]["model"]
    config = write_config(tmp_path / "reuse.yaml", inputs=[str(pool)], model=str(model),
                          output=str(tmp_path / "reuse"), threshold=first["selector"]["threshold"])
    code, _, err = run_cli("quality", config, "--workers", "1")
    assert code == 0, err
    again = json.loads((tmp_path / "reuse" / "manifest.json").read_text())
    assert again["accounting"]["rows_kept"] == first["accounting"]["rows_kept"]
    a = pq.read_table(tmp_path / "train" / "data").sort_by("id")
    b = pq.read_table(tmp_path / "reuse" / "data").sort_by("id")
    assert a.column("quality_score").equals(b.column("quality_score"))
