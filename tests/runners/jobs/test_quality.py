"""``tamis quality`` end to end with the real fastText and the logistic regression on demo
text. Runs that several tests read are made once per module."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from corpora import write_config

from tamis.runners.cli import main
from tamis.selectors.quality_report import top_fraction_threshold

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("quality") / "pool"
    folder.mkdir()
    table = pq.read_table(DEMO / "corpus" / "part-00002.parquet")
    pq.write_table(table.take(pa.array(range(0, 2500, 2))), folder / "a.parquet",
                   row_group_size=400)
    return folder


def quality(root: Path, name: str, workers: int = 1, **keys) -> dict:
    base = {"inputs": [str(keys.pop("pool"))], "positives": [str(DEMO / "specialist")],
            "output": str(root / name), "negatives": 400, "fasttext": {"epoch": 20}}
    if "model" in keys:  # a reused model trains nothing: the training keys are errors
        base = {k: v for k, v in base.items() if k not in ("negatives", "fasttext")}
    if keys.get("classifier", "fasttext") != "fasttext":
        base.pop("fasttext", None)
    config = write_config(root / f"{name}.yaml", **{**base, **keys})
    assert main(["quality", str(config), "--workers", str(workers)]) == 0
    assert main(["verify", str(root / name)]) == 0
    return json.loads((root / name / "manifest.json").read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory, pool) -> tuple[Path, dict]:
    """fastText trained on the Python docs against 400 pool negatives, the top quarter kept."""
    root = tmp_path_factory.mktemp("trained")
    return root, quality(root, "q", pool=pool, keep_top=0.25)


def test_keeps_the_top_share_with_its_diagnostics(trained):
    root, manifest = trained
    acc = manifest["accounting"]
    table = pq.read_table(root / "q" / "data")
    scores = table.column("quality_score").to_numpy()
    threshold = manifest["selector"]["threshold"]
    # the 313th highest score (ceil(25% of 1,250)), and every row that reaches it
    assert acc["rows_in"] == 1250 and scores.min() >= threshold
    assert np.sum(scores > threshold) < 313 <= acc["rows_kept"] == len(scores)
    assert acc["rows_dropped"] == {"below_quality_threshold": 1250 - acc["rows_kept"]}
    domains = table.column("domain").to_pylist()
    assert domains.count("python_docs") / len(domains) > 0.6  # the positives' domain
    selector = manifest["selector"]
    assert selector["heldout_accuracy"] > 0.6  # a few dozen held-out documents: rough
    assert 0 <= selector["hq_pass_share"] <= 1
    assert selector["score_length_spearman"] is not None
    assert sum(selector["score_histogram"]["counts"]) == 1250


def test_length_matched_negatives_have_the_positives_lengths(trained, pool, tmp_path):
    _, plain = trained
    matched = quality(tmp_path, "matched", pool=pool, negatives=200, length_match=True)
    positive = np.mean([len(t) for t in pq.read_table(DEMO / "specialist")
                        .column("text").to_pylist()])
    assert matched["selector"]["negatives"] > 150 and matched["selector"]["length_match"]
    assert (abs(np.log(matched["selector"]["negative_mean_length"] / positive))
            < abs(np.log(plain["selector"]["negative_mean_length"] / positive)))


def test_a_trained_model_annotates_another_run_without_training(trained, pool, tmp_path):
    root, first = trained
    model = root / "q" / first["selector"]["model"]
    again = quality(tmp_path, "reuse", pool=pool, model=str(model), positives=[],
                    annotate_only=True)
    assert again["accounting"]["rows_kept"] == 1250 and again["accounting"]["rows_dropped"] == {}
    about = json.loads((root / "q" / "models" / "quality.json").read_text())
    assert about["heldout_accuracy"] == first["selector"]["heldout_accuracy"]
    assert about["settings"]["word_ngrams"] == 2 and about["negatives"] == first["selector"][
        "negatives"]
    assert again["selector"]["heldout_accuracy"] == about["heldout_accuracy"]
    scored = pq.read_table(tmp_path / "reuse" / "data").sort_by("id")
    kept = pq.read_table(root / "q" / "data").sort_by("id")
    by_id = dict(zip(scored.column("id").to_pylist(),
                     scored.column("quality_score").to_pylist(), strict=True))
    assert [by_id[i] for i in kept.column("id").to_pylist()] == kept.column(
        "quality_score").to_pylist()
    # the first run's threshold is the exact percentile of every row's score
    assert top_fraction_threshold(scored.column("quality_score").to_numpy(), 0.25) == \
        first["selector"]["threshold"]


def test_quality_filters_an_earlier_selection_and_keeps_its_weights(trained, pool, tmp_path,
                                                                   run_cli):
    root, first = trained
    sampled = write_config(tmp_path / "s.yaml", inputs=[str(pool)], output=str(tmp_path / "s"),
                           budget={"rows": 600}, stratify_by="domain", allocation="equal")
    assert run_cli("sample", sampled, "--workers", "1")[0] == 0
    upstream = pq.read_table(tmp_path / "s" / "data")
    weights = dict(zip(upstream.column("id").to_pylist(), upstream.column("weight").to_pylist(),
                       strict=True))
    assert len(set(weights.values())) > 1  # equal allocation: strata weigh differently
    manifest = quality(tmp_path, "q", pool=tmp_path / "s" / "data", keep_top=0.5,
                       model=str(root / "q" / first["selector"]["model"]), positives=[])
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


def test_the_embedding_classifier_keeps_the_top_share_scores_as_its_model_and_is_reused(
        tmp_path, pool, caches):
    from tamis.selectors.quality import EmbeddingLogistic
    from tamis.storage.cache import open_cache, read_documents

    manifest = quality(tmp_path, "emb", pool=pool, keep_top=0.25, **caches)
    acc, selector = manifest["accounting"], manifest["selector"]
    assert acc["rows_in"] == 1250 and acc["rows_rejected"] == {"no_embedding": 3}
    assert acc["rows_kept"] == 312  # ceil(25% of the 1,247 rows with a vector)
    assert acc["rows_dropped"] == {"below_quality_threshold": 1247 - 312}
    assert selector["classifier"] == "embedding" and selector["model"] == "models/quality.npz"
    assert selector["heldout_accuracy"] > 0.8 and selector["length_unit"] == "model tokens"
    table = pq.read_table(tmp_path / "emb" / "data")
    domains = table.column("domain").to_pylist()
    # the pool is a quarter Python docs (so are a quarter of the negatives): the top quarter
    # is mostly Python docs
    assert domains.count("python_docs") / len(domains) > 0.7
    assert selector["heldout_auc"] > 0.9
    rejects = pq.read_table(tmp_path / "emb" / "rejects")
    texts = {r["id"]: r["text"] for r in pq.read_table(pool).to_pylist()}
    rejected = [len(texts[i]) for i in rejects.column("id").to_pylist()]
    assert min(rejected) > max(len(texts[i]) for i in table.column("id").to_pylist())
    # the shards' scores are the saved model's
    with open(tmp_path / "emb" / "models" / "quality.npz", "rb") as f:
        model = EmbeddingLogistic.load(f)
    cache = open_cache(caches["embeddings"])
    vectors = {}
    for entry in cache.shards:
        ids, x, _ = read_documents(cache.shard_path(entry))
        vectors.update(zip(ids, x, strict=True))
    ids = table.column("id").to_pylist()
    assert table.column("quality_score").to_pylist() == model.score(
        np.stack([vectors[i] for i in ids])).tolist()
    about = json.loads((tmp_path / "emb" / "models" / "quality.json").read_text())
    assert about["classifier"] == "embedding" and about["settings"]["C"] == model.C_
    assert about["embedding"]["content_hash"] == open_cache(caches["embeddings"]).model[
        "content_hash"]
    # reused on two workers, annotating: the same scores for the rows both keep
    reuse = {k: v for k, v in caches.items() if k != "positive_embeddings"}
    again = quality(tmp_path, "reuse", pool=pool, annotate_only=True, workers=2,
                    model=str(tmp_path / "emb" / "models" / "quality.npz"), **reuse)
    assert again["accounting"]["rows_kept"] == 1247
    scored = pq.read_table(tmp_path / "reuse" / "data")
    by_id = dict(zip(scored.column("id").to_pylist(), scored.column("quality_score").to_pylist(),
                     strict=True))
    assert [by_id[i] for i in ids] == table.column("quality_score").to_pylist()


def test_a_reused_model_must_exist_and_read_the_caches_vectors(tmp_path, pool, caches, run_cli):
    rng = np.random.default_rng(0)
    from tamis.embeddings.classifiers import save_classifier
    from tamis.selectors.quality import EmbeddingLogistic

    wrong = EmbeddingLogistic(Cs=(1.0,)).fit(rng.normal(size=(20, 5)), rng.normal(size=(20, 5)))
    save_classifier(wrong, str(tmp_path / "five.npz"))
    for model, message in ((tmp_path / "none.bin", "model .*none.bin does not exist"),
                           (tmp_path / "five.npz", "reads 5-d vectors; the cache .* 32-d")):
        keys = {**caches, "model": str(model)} if model.suffix == ".npz" else {"model": str(
            model)}
        config = write_config(tmp_path / "m.yaml", inputs=[str(pool)], output=str(
            tmp_path / "out"), **{k: v for k, v in keys.items()
                                  if k not in ("positives", "positive_embeddings")})
        code, _, err = run_cli("quality", config)
        assert code == 2 and re.search(message, err), err


@pytest.mark.parametrize("keys, message", [
    ({"classifier": "embedding", "positives": []}, "needs 'positives' (the high-quality text) "
                                                   "or 'positive_embeddings'"),
    ({"classifier": "embedding", "embeddings": "x", "positives": []},
     "or 'positive_embeddings' (its cache)"),
    ({"model": "m.npz", "positives": []}, "a fasttext classifier is a .bin file"),
    ({"logistic": {"Cs": [1.0, -1.0]}, "classifier": "embedding"},
     "'logistic.Cs' must be positive"),
    ({"fasttext": {"epoch": 0}}, "'fasttext.epoch' must be >= 1 or auto"),
])
def test_classifier_settings_are_checked(tmp_path, pool, run_cli, keys, message):
    base = {"inputs": [str(pool)], "positives": [str(DEMO / "specialist")],
            "output": str(tmp_path / "out")}
    config = write_config(tmp_path / "bad.yaml", **{**base, **keys})
    code, _, err = run_cli("quality", config)
    assert code == 2 and message in err and "Traceback" not in err


def test_a_pool_without_usable_text_stops_with_one_clear_line(tmp_path, run_cli):
    pq.write_table(pa.table({"id": ["a", "b"], "text": ["", "  "]}), tmp_path / "pool.parquet")
    config = write_config(tmp_path / "q.yaml", inputs=[str(tmp_path / "pool.parquet")],
                          positives=[str(DEMO / "specialist")], output=str(tmp_path / "out"))
    code, _, err = run_cli("quality", config, "--workers", "1")
    assert code == 1 and "Traceback" not in err
    assert "quality needs positives and negatives, got 150 and 0" in err
    assert not (tmp_path / "out" / "manifest.json").exists()
