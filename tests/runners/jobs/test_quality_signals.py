"""``tamis quality`` with rules, the signals classifier and the stacked ensemble, end to end
on demo text with planted junk; and the checks that keep a classifier honest about what it
reads."""

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
from tamis.selectors.rules import DEFAULT_SET, first_failure, ruleset
from tamis.selectors.signals import SIGNALS, signals

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo"


def junk(n: int) -> list[str]:
    """Navigation blocks, keyword lists and repeated spam, made of demo words."""
    words = "install python module package function class method return value list".split()
    out = []
    for i in range(n):
        w = words[i % len(words)]
        kind = i % 3
        if kind == 0:
            out.append("\n".join(f"Home > {w} > {x} > index" for x in words))
        elif kind == 1:
            out.append(", ".join(f"{w} {x}" for x in words * 4))
        else:
            out.append(" ".join([f"Buy {w} now, best {w} deals!"] * 12))
    return out


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("signals") / "pool"
    folder.mkdir()
    table = pq.read_table(DEMO / "corpus" / "part-00002.parquet").select(["id", "text",
                                                                          "domain"])
    table = table.take(pa.array(range(0, 1600, 2)))
    bad = junk(200)
    planted = pa.table({"id": [f"junk-{i}" for i in range(len(bad))], "text": bad,
                        "domain": ["junk"] * len(bad)})
    pq.write_table(pa.concat_tables([table, planted]), folder / "a.parquet",
                   row_group_size=300)
    return folder


def quality(root: Path, name: str, workers: int = 1, **keys) -> dict:
    base = {"inputs": [str(keys.pop("pool"))], "output": str(root / name)}
    config = write_config(root / f"{name}.yaml", **{**base, **keys})
    assert main(["quality", str(config), "--workers", str(workers)]) == 0
    assert main(["verify", str(root / name)]) == 0
    return json.loads((root / name / "manifest.json").read_text())


def test_rules_alone_drop_each_row_with_the_first_rule_it_fails(tmp_path, pool):
    manifest = quality(tmp_path, "rules", pool=pool, classifier="none",
                       rules={"set": DEFAULT_SET, "limits": {"gopher_min_words": 30}})
    acc, selector = manifest["accounting"], manifest["selector"]
    texts = pq.read_table(pool).column("text").to_pylist()
    rules = ruleset(DEFAULT_SET, "en", {"gopher_min_words": 30})
    failed = first_failure(rules, signals(texts))
    reasons, counts = np.unique(failed[failed >= 0], return_counts=True)
    expected = {rules[i].name: int(n) for i, n in zip(reasons, counts, strict=True)}
    assert acc["rows_dropped"] == expected and acc["rows_kept"] == int((failed < 0).sum())
    assert acc["rows_in"] == acc["rows_kept"] + sum(expected.values())
    kept = pq.read_table(tmp_path / "rules" / "data")
    assert "junk" not in kept.column("domain").to_pylist()  # every planted row is caught
    assert "quality_score" not in kept.column_names
    assert selector["rules"]["rules"]["gopher_min_words"] == "n_words >= 30"
    summary = selector["signals"]["top_2gram_chars"]
    assert summary["dropped"][2] > summary["kept"][2]  # medians: junk repeats itself


def test_annotating_with_rules_keeps_everything_and_writes_the_signals(tmp_path, pool):
    manifest = quality(tmp_path, "notes", pool=pool, classifier="none", annotate_only=True,
                       rules={"set": DEFAULT_SET})
    assert manifest["accounting"]["rows_kept"] == manifest["accounting"]["rows_in"] == 1000
    table = pq.read_table(tmp_path / "notes" / "data")
    texts = table.column("text").to_pylist()
    values = signals(texts)
    written = table.column("quality_signals").to_pylist()
    for name in SIGNALS:
        assert [row[name] for row in written] == values[name].tolist()
    rules = ruleset(DEFAULT_SET)
    failed = first_failure(rules, values)
    assert table.column("quality_rule").to_pylist() == [
        None if f < 0 else rules[f].name for f in failed]


@pytest.fixture(scope="module")
def features(tmp_path_factory, pool) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("features")
    return root, quality(root, "f", pool=pool, classifier="features", keep_top=0.3,
                         positives=[str(DEMO / "specialist")], negatives=400)


def test_the_signals_classifier_scores_as_its_saved_model(features):
    from tamis.embeddings.classifiers import load_classifier

    root, manifest = features
    selector = manifest["selector"]
    assert selector["classifier"] == "features"
    assert selector["model"] == "models/quality-features.npz"
    assert selector["heldout_auc"] > 0.8
    assert set(selector["settings"]["weights"]) >= {"log1p(n_words)", "sqrt(markup_ratio)"}
    table = pq.read_table(root / "f" / "data")
    assert "junk" not in table.column("domain").to_pylist()
    model = load_classifier(str(root / "f" / "models" / "quality-features.npz"))
    assert table.column("quality_score").to_pylist() == model.score(
        table.column("text").to_pylist()).tolist()


def test_annotate_only_reports_no_threshold_or_pass_shares(tmp_path, pool, features):
    root, _ = features
    manifest = quality(tmp_path, "a", pool=pool, classifier="features", annotate_only=True,
                       model=str(root / "f" / "models" / "quality-features.npz"))
    selector = manifest["selector"]
    assert selector["threshold"] is None and selector["keep_top"] is None
    assert selector["pool_pass_share"] is None and selector["hq_pass_share"] is None
    assert manifest["accounting"]["rows_kept"] == 1000


def test_an_ensemble_from_text_in_one_config(tmp_path, pool):
    """fastText, signals and LSI vectors embedded on the way, stacked; reused to annotate."""
    from tamis.embeddings.classifiers import load_classifier

    keys = {"classifier": "ensemble", "positives": [str(DEMO / "specialist")],
            "negatives": 400, "keep_top": 0.5, "embed": {"embedder": "lsi", "lsi": {"dim": 32}},
            "fasttext": {"epoch": 10}}
    manifest = quality(tmp_path, "ens", pool=pool, **keys)
    selector = manifest["selector"]
    weights = selector["settings"]["weights"]
    assert set(weights) == {"fasttext", "features", "embedding"}
    assert set(selector["heldout_auc_by_member"]) == set(weights)
    assert selector["heldout_auc"] >= 0.9
    pool_cache = json.loads((tmp_path / "ens-work" / "pool-emb" / "manifest.json").read_text())
    assert pool_cache["config"]["lsi"]["fit_also"] == [str(DEMO / "specialist")]
    model_path = tmp_path / "ens" / "models" / "quality-ensemble.npz"
    for member in ("fasttext.bin", "features.npz", "embedding.npz"):
        assert (tmp_path / "ens" / "models" / f"quality-ensemble-{member}").exists()
    model = load_classifier(str(model_path))
    from tamis.selectors.precision import quantize

    assert {k: float(quantize(v)) for k, v in model.stacker_.weights_.items()} == weights
    again = quality(tmp_path, "again", pool=pool, classifier="ensemble", annotate_only=True,
                    model=str(model_path), embeddings=str(tmp_path / "ens-work" / "pool-emb"))
    first = pq.read_table(tmp_path / "ens" / "data")
    scored = pq.read_table(tmp_path / "again" / "data")
    by_id = dict(zip(scored.column("id").to_pylist(),
                     scored.column("quality_score").to_pylist(), strict=True))
    assert [by_id[i] for i in first.column("id").to_pylist()] == \
        first.column("quality_score").to_pylist()
    assert again["accounting"]["rows_kept"] == scored.num_rows


@pytest.mark.parametrize("keys, message", [
    ({"classifier": "fasttext", "embeddings": "pool-emb"},
     "'embeddings' is not read by classifier 'fasttext'"),
    ({"classifier": "embedding", "positive_embeddings": "hq-emb"},
     "'positives' is not read by classifier 'embedding'"),
    ({"classifier": "features", "logistic": {"Cs": [1.0]}},
     "'logistic' is not read by classifier 'features'"),
    ({"classifier": "none", "positives": []}, "classifier 'none' filters by rules only"),
    ({"classifier": "none", "rules": {"set": DEFAULT_SET}},
     "'positives' is not read by classifier 'none'"),
    ({"rules": {"set": DEFAULT_SET, "limits": {"gopher_min_word": 3}}}, "unknown rule"),
    ({"rules": {"set": "c5"}}, "unknown rule set"),
    ({"annotate_only": True, "keep_top": 0.3}, "'keep_top' is not read with annotate_only"),
])
def test_keys_a_classifier_would_ignore_are_errors(tmp_path, pool, run_cli, keys, message):
    base = {"inputs": [str(pool)], "positives": [str(tmp_path / "nowhere")],
            "output": str(tmp_path / "out")}
    config = write_config(tmp_path / "bad.yaml", **{**base, **keys})
    code, _, err = run_cli("quality", config, "--dry-run")
    assert code == 2 and message in err and "Traceback" not in err, err


def test_a_classifier_refuses_vectors_embedded_another_way(tmp_path, pool, run_cli):
    """Trained on one LSI fit, it will not score a cache of another: one line at launch."""
    model = tmp_path / "first" / "models" / "quality.npz"
    quality(tmp_path, "first", pool=pool, classifier="embedding",
            positives=[str(DEMO / "specialist")], negatives=200,
            embed={"embedder": "lsi", "lsi": {"dim": 16}})
    other = write_config(tmp_path / "other.yaml", inputs=[str(pool)],
                         output=str(tmp_path / "other-emb"), embedder="lsi",
                         lsi={"dim": 16, "fit_sample": 300})
    assert main(["embed", str(other), "--workers", "1"]) == 0
    config = write_config(tmp_path / "q.yaml", inputs=[str(pool)], output=str(tmp_path / "q"),
                          classifier="embedding", model=str(model),
                          embeddings=str(tmp_path / "other-emb"))
    code, _, err = run_cli("quality", config)
    assert code == 2 and "Traceback" not in err
    assert re.search(r"trained on vectors with content_hash .*: embed the pool as its "
                     r"training data was", err), err
    assert err.strip().splitlines()[-1].startswith("tamis: error: model ")  # one line
    assert err.count("tamis: error") == 1
