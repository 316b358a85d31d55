"""Every job's outputs, pinned: the manifest (every shard's and rejects file's sha256 in it,
the accounting, the mixture, the selector's statistics) of each job on a fixed corpus.

The stored values hold on every CPU (selections are decided on the grid of
``tamis.selectors.precision``, and the LSI embedder computes in float64 and rounds to it);
the only fields left out are the ones that differ between machines by design: ``created_at``,
the library versions, and the absolute path of the test's folder (written ``<root>``).

A change that is meant to change outputs updates the stored files with
``TAMIS_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`` and says why in its commit.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tamis.runners.cli import main

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parent.parent / "examples" / "demo"
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("TAMIS_UPDATE_GOLDEN") == "1"

#: (name, command, config): run in this order, from the corpus folder, with relative paths.
JOBS = [
    ("sample-tokens", "sample", {
        "inputs": ["pool", "bad.jsonl"], "output": "out/sample-tokens",
        "budget": {"tokens": 30_000}, "stratify_by": "domain", "seed": 3, "num_shards": 2}),
    ("sample-rows-equal", "sample", {
        "inputs": ["pool"], "output": "out/sample-rows", "budget": {"rows": 300},
        "stratify_by": "domain", "allocation": "equal", "id_column": None}),
    ("dsir", "dsir", {
        "inputs": ["pool"], "target": ["specialist.parquet"], "output": "out/dsir",
        "budget": {"tokens": 25_000}, "min_words": 20, "seed": 2, "num_shards": 2}),
    ("quality-fasttext", "quality", {
        "inputs": ["pool"], "positives": ["specialist.parquet"], "output": "out/quality",
        "negatives": 300, "length_match": True, "keep_top": 0.3, "fasttext": {"epoch": 10}}),
    ("quality-rules", "quality", {
        "inputs": ["pool"], "output": "out/quality-rules", "classifier": "none",
        "rules": {"set": "gopher-fineweb2-v1", "limits": {"gopher_min_words": 20}},
        "signal_columns": True}),
    ("quality-features", "quality", {
        "inputs": ["pool"], "positives": ["specialist.parquet"], "output": "out/quality-feat",
        "classifier": "features", "negatives": 300, "keep_top": 0.3,
        "rules": {"set": "gopher-fineweb2-v1", "limits": {"gopher_min_words": 20}}}),
    ("quality-ensemble", "quality", {
        "inputs": ["pool"], "positives": ["specialist.parquet"], "output": "out/quality-ens",
        "classifier": "ensemble", "ensemble": {"members": ["fasttext", "features"]},
        "negatives": 300, "keep_top": 0.3, "fasttext": {"epoch": 10}}),
    ("embed-pool", "embed", {
        "inputs": ["pool"], "output": "out/pool-emb", "embedder": "lsi",
        "lsi": {"dim": 24, "fit_sample": 1000}, "window_tokens": 256, "max_doc_chars": 20_000}),
    ("embed-specialist", "embed", {
        "inputs": ["specialist.parquet"], "output": "out/spec-emb", "embedder": "lsi",
        "lsi": {"dim": 24, "model": "@lsi"}, "window_tokens": 256}),
    ("cluster", "cluster", {
        "embeddings": "out/pool-emb", "output": "out/clusters", "branching": 4, "levels": 2,
        "niter": 10, "seed": 1}),
    ("crisp", "crisp", {
        "inputs": ["pool"], "embeddings": "out/pool-emb", "clusters": "out/clusters",
        "specialists": [{"embeddings": "out/spec-emb"}], "output": "out/crisp",
        "budget": {"tokens": 40_000}, "inject_generic": 0.05, "seed": 4, "num_shards": 2}),
    ("hybrid", "select", {
        "method": "hybrid", "inputs": ["pool"], "embeddings": "out/pool-emb",
        "clusters": "out/clusters", "specialists": [{"embeddings": "out/spec-emb"}],
        "output": "out/hybrid", "budget": {"tokens": 30_000}, "sampler": "poisson"}),
    ("relevance", "relevance", {
        "inputs": ["pool"], "embeddings": "out/pool-emb",
        "specialists": [{"embeddings": "out/spec-emb"}], "output": "out/relevance",
        "budget": {"tokens": 30_000}, "k": 5}),
    ("mmr", "select", {
        "method": "mmr", "inputs": ["pool"], "embeddings": "out/pool-emb",
        "specialists": [{"embeddings": "out/spec-emb"}], "output": "out/mmr",
        "budget": {"tokens": 20_000}, "mmr_candidates": 2.0, "seed": 5}),
    ("quality-embedding", "quality", {
        "inputs": ["pool"], "classifier": "embedding", "embeddings": "out/pool-emb",
        "positive_embeddings": "out/spec-emb", "output": "out/quality-emb", "keep_top": 0.25,
        "negatives": 200, "logistic": {"Cs": [0.1, 10.0]}}),
    ("bilingual", "bilingual", {
        "inputs": ["languages.jsonl"], "output": "out/bilingual",
        "languages": ["en", "fr", "de", "zh"], "classifier": "features",
        "positives": ["specialist.parquet"], "negatives": ["pool"], "keep_top": 0.5,
        "mix": {"target_share": 0.05}, "num_shards": 2}),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A pool of 1,200 real documents (4 domains, two files of several row groups), a JSONL
    file with bad lines, a specialist set, and 100 documents in four languages."""
    root = tmp_path_factory.mktemp("golden")
    table = pq.read_table(DEMO / "corpus" / "part-00002.parquet")
    table = table.take(pa.array(range(1, 2401, 2)))
    (root / "pool").mkdir()
    pq.write_table(table.slice(0, 700), root / "pool" / "a.parquet", row_group_size=300)
    pq.write_table(table.slice(700), root / "pool" / "b.parquet", row_group_size=250)
    rows = table.slice(0, 30).to_pylist()
    lines = [json.dumps({**r, "id": f"j{i}"}) for i, r in enumerate(rows)]
    lines += ["{not json", json.dumps({"id": "x", "text": 5, "domain": "bible"}),
              json.dumps({"id": "y", "domain": "bible"}), json.dumps(["a list"])]
    (root / "bad.jsonl").write_text("\n".join(lines) + "\n")
    specialist = pq.read_table(DEMO / "specialist" / "python_docs.parquet").slice(0, 80)
    pq.write_table(specialist, root / "specialist.parquet")
    (root / "languages.jsonl").write_bytes((DEMO / "languages" / "texts.jsonl").read_bytes())
    return root


def normalised(value, root: str):
    if isinstance(value, dict):
        return {k: normalised(v, root) for k, v in value.items()
                if k not in ("created_at", "versions")}
    if isinstance(value, list):
        return [normalised(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "<root>")
    return value


def config_for(keys: dict, root: Path) -> dict:
    text = json.dumps(keys)
    if "@lsi" in text:
        model = next((root / "out" / "pool-emb" / "models").glob("lsi-*.npz"))
        text = text.replace("@lsi", str(model.relative_to(root)))
    return json.loads(text)


def test_every_job_writes_the_pinned_outputs(root, monkeypatch, capsys):
    monkeypatch.chdir(root)
    GOLDEN.mkdir(exist_ok=True)
    changed = []
    for name, command, keys in JOBS:
        config = root / f"{name}.yaml"
        config.write_text(json.dumps(config_for(keys, root)))
        code = main([command, str(config.name), "--workers", "1"])
        assert code == 0, capsys.readouterr().err
        out = keys["output"]
        assert main(["verify", out]) == 0
        manifest = json.loads((root / out / "manifest.json").read_text())
        got = normalised(manifest, str(root))
        path = GOLDEN / f"{name}.json"
        if UPDATE:
            path.write_text(json.dumps(got, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
            continue
        expected = json.loads(path.read_text())
        if got != expected:
            changed.append(name + ": " + first_difference(expected, got))
    capsys.readouterr()
    assert not changed, "outputs changed:\n" + "\n".join(changed)


def first_difference(expected, got, where: str = "") -> str:
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in sorted(set(expected) | set(got)):
            if expected.get(key, "<missing>") != got.get(key, "<missing>"):
                return first_difference(expected.get(key, "<missing>"),
                                        got.get(key, "<missing>"), f"{where}.{key}")
    if isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        for i, (a, b) in enumerate(zip(expected, got, strict=True)):
            if a != b:
                return first_difference(a, b, f"{where}[{i}]")
    return f"{where or '.'}: expected {str(expected)[:200]}, got {str(got)[:200]}"


def test_the_golden_corpus_covers_every_domain():
    table = pq.read_table(DEMO / "corpus" / "part-00002.parquet").take(
        pa.array(range(1, 2401, 2)))
    assert set(pc.unique(table.column("domain")).to_pylist()) == {
        "bible", "fortunes", "manpages", "python_docs"}
