"""``tamis quality`` end to end with the real fastText on demo text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from corpora import write_config

from tamis.runners.cli import main

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
    assert (abs(np.log(matched["selector"]["negative_mean_length"] / positive_chars))
            < abs(np.log(plain["selector"]["negative_mean_length"] / positive_chars)))


def test_a_trained_model_scores_another_run_without_training(tmp_path, pool, run_cli):
    first = run(run_cli, tmp_path, "train", pool=pool, keep_top=0.5)
    model = tmp_path / "train" / first["selector"]["model"]
    config = write_config(tmp_path / "reuse.yaml", inputs=[str(pool)], model=str(model),
                          output=str(tmp_path / "reuse"), threshold=first["selector"]["threshold"])
    code, _, err = run_cli("quality", config, "--workers", "1")
    assert code == 0, err
    again = json.loads((tmp_path / "reuse" / "manifest.json").read_text())
    assert again["accounting"]["rows_kept"] == first["accounting"]["rows_kept"]
    about = json.loads((tmp_path / "train" / "models" / "quality.json").read_text())
    assert about["heldout_accuracy"] == first["selector"]["heldout_accuracy"]
    assert about["fasttext"]["word_ngrams"] == 2 and about["negatives"] == 400
    assert again["selector"]["heldout_accuracy"] == about["heldout_accuracy"]
    a = pq.read_table(tmp_path / "train" / "data").sort_by("id")
    b = pq.read_table(tmp_path / "reuse" / "data").sort_by("id")
    assert a.column("quality_score").equals(b.column("quality_score"))


@pytest.fixture(scope="module")
def caches(tmp_path_factory, pool) -> dict:
    """LSI caches of the pool (its longest documents rejected by embed) and the positives."""
    root = tmp_path_factory.mktemp("quality-emb")
    lengths = sorted(len(t) for t in pq.read_table(pool).column("text").to_pylist())
    cut = lengths[-4]  # the three longest documents are rejected as too_long
    config = write_config(root / "pool.yaml", inputs=[str(pool)], output=str(root / "pool-emb"),
                          embedder="lsi", lsi={"dim": 32}, max_doc_chars=cut)
    assert main(["embed", str(config), "--workers", "1"]) == 0
    model = next((root / "pool-emb" / "models").glob("lsi-*.npz"))
    config = write_config(root / "hq.yaml", inputs=[str(DEMO / "specialist")],
                          output=str(root / "hq-emb"), embedder="lsi",
                          lsi={"dim": 32, "model": str(model)})
    assert main(["embed", str(config), "--workers", "1"]) == 0
    return {"classifier": "embedding", "embeddings": str(root / "pool-emb"),
            "positive_embeddings": str(root / "hq-emb"), "positives": []}


def test_embedding_classifier_keeps_the_top_share_and_rejects_rows_without_vectors(
        tmp_path, pool, caches, run_cli):
    manifest = run(run_cli, tmp_path, "emb", pool=pool, keep_top=0.25, **caches)
    acc, selector = manifest["accounting"], manifest["selector"]
    assert acc["rows_in"] == 1250 and acc["rows_rejected"] == {"no_embedding": 3}
    assert acc["rows_kept"] == 312  # ceil(25% of the 1,247 rows with a vector)
    assert acc["rows_dropped"] == {"below_quality_threshold": 1247 - 312}
    assert selector["classifier"] == "embedding" and selector["model"] == "models/quality.npz"
    assert selector["heldout_accuracy"] > 0.8 and selector["length_unit"] == "model tokens"
    table = pq.read_table(tmp_path / "emb" / "data")
    domains = table.column("domain").to_pylist()
    assert domains.count("python_docs") / len(domains) > 0.8
    rejects = pq.read_table(tmp_path / "emb" / "rejects")
    assert set(rejects.column("reason").to_pylist()) == {"no_embedding"}
    texts = {r["id"]: r["text"] for r in pq.read_table(pool).to_pylist()}
    rejected = [len(texts[i]) for i in rejects.column("id").to_pylist()]
    assert min(rejected) > max(len(texts[i]) for i in table.column("id").to_pylist())


def test_embedding_scores_match_the_saved_logistic_model(tmp_path, pool, caches, run_cli):
    from tamis.selectors.quality import EmbeddingLogistic
    from tamis.storage.cache import open_cache, read_documents

    manifest = run(run_cli, tmp_path, "emb", pool=pool, annotate_only=True, **caches)
    with open(tmp_path / "emb" / "models" / "quality.npz", "rb") as f:
        model = EmbeddingLogistic.load(f)
    cache = open_cache(caches["embeddings"])
    vectors = {}
    for entry in cache.shards:
        ids, x, _ = read_documents(cache.shard_path(entry))
        vectors.update(zip(ids, x, strict=True))
    table = pq.read_table(tmp_path / "emb" / "data")
    ids = table.column("id").to_pylist()
    expected = model.score(np.stack([vectors[i] for i in ids]))
    np.testing.assert_allclose(table.column("quality_score").to_numpy(), expected, rtol=1e-12)
    assert manifest["accounting"]["rows_kept"] == 1247
    about = json.loads((tmp_path / "emb" / "models" / "quality.json").read_text())
    assert about["classifier"] == "embedding" and about["logistic"]["C"] == model.C_

    config = write_config(tmp_path / "reuse.yaml", inputs=[str(pool)], classifier="embedding",
                          embeddings=caches["embeddings"], output=str(tmp_path / "reuse"),
                          model=str(tmp_path / "emb" / "models" / "quality.npz"),
                          annotate_only=True)
    assert run_cli("quality", config, "--workers", "2")[0] == 0
    again = pq.read_table(tmp_path / "reuse" / "data").sort_by("id")
    assert again.column("quality_score").equals(table.sort_by("id").column("quality_score"))


@pytest.mark.parametrize("keys, message", [
    ({"classifier": "embedding"}, "needs 'embeddings'"),
    ({"classifier": "embedding", "embeddings": "x", "positives": []},
     "needs 'positive_embeddings'"),
    ({"model": "m.npz"}, "a fastText model is a .bin file"),
    ({"logistic": {"Cs": [1.0, -1.0]}}, "'logistic.Cs' must be positive"),
])
def test_classifier_settings_are_checked(tmp_path, pool, run_cli, keys, message):
    base = {"inputs": [str(pool)], "positives": [str(DEMO / "specialist")],
            "output": str(tmp_path / "out")}
    config = write_config(tmp_path / "bad.yaml", **{**base, **keys})
    code, _, err = run_cli("quality", config)
    assert code != 0 and message in err and "Traceback" not in err


def test_quality_filters_an_earlier_selection_and_keeps_its_weights(tmp_path, pool, run_cli):
    sampled = write_config(tmp_path / "s.yaml", inputs=[str(pool)], output=str(tmp_path / "s"),
                           budget={"rows": 600}, stratify_by="domain", allocation="equal")
    assert run_cli("sample", sampled, "--workers", "1")[0] == 0
    upstream = pq.read_table(tmp_path / "s" / "data")
    weights = dict(zip(upstream.column("id").to_pylist(), upstream.column("weight").to_pylist(),
                       strict=True))
    assert len(set(weights.values())) > 1  # equal allocation: strata weigh differently
    manifest = run(run_cli, tmp_path, "q", pool=tmp_path / "s" / "data", keep_top=0.5)
    assert manifest["accounting"]["rows_in"] == 600
    table = pq.read_table(tmp_path / "q" / "data")
    assert table.column_names.count("weight") == 1 and "__in_weight" not in table.column_names
    for i, w, n in zip(table.column("id").to_pylist(), table.column("weight").to_pylist(),
                       table.column("n_samples").to_pylist(), strict=True):
        assert w == pytest.approx(weights[i]) and n == 1
    # the tokens are counted again, not taken from the input
    assert table.column("n_tokens").to_pylist() == [
        upstream.filter(pa.compute.equal(upstream.column("id"), i)).column("n_tokens")[0]
        .as_py() for i in table.column("id").to_pylist()]


def test_a_pool_without_usable_text_stops_with_one_clear_line(tmp_path, run_cli):
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["", "  "]}), tmp_path / "pool.parquet")
    config = write_config(tmp_path / "q.yaml", inputs=[str(tmp_path / "pool.parquet")],
                          positives=[str(DEMO / "specialist")], output=str(tmp_path / "out"))
    code, _, err = run_cli("quality", config, "--workers", "1")
    assert code == 1 and "Traceback" not in err
    assert "quality needs positives and negatives, got 150 and 0" in err
    assert not (tmp_path / "out" / "manifest.json").exists()
