"""``tamis embed`` end to end with the real MiniLM model (offline) and with LSI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from corpora import write_config

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parents[3] / "examples" / "demo" / "corpus" / "part-00000.parquet"


@pytest.fixture
def docs(tmp_path) -> Path:
    """24 real documents from the demo corpus (4 domains), in two files of 2 row groups."""
    table = pq.read_table(DEMO)
    picked = pa.concat_tables([table.filter(pa.compute.equal(table.column("domain"), d)).slice(0, 6)
                               for d in ("bible", "fortunes", "manpages", "python_docs")])
    folder = tmp_path / "docs"
    folder.mkdir()
    pq.write_table(picked.slice(0, 12), folder / "a.parquet", row_group_size=6)
    pq.write_table(picked.slice(12), folder / "b.parquet", row_group_size=6)
    return folder


def load_cache(out: Path) -> pa.Table:
    manifest = json.loads((out / "manifest.json").read_text())
    table = pa.concat_tables(pq.read_table(out / s["path"]) for s in manifest["outputs"]["shards"])
    return table.sort_by([("id", "ascending"), ("window", "ascending")])


def vectors(table: pa.Table) -> np.ndarray:
    dim = table.schema.field("embedding").type.list_size
    return table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, dim)


def run_embed(run_cli, config: Path, *flags: str) -> dict:
    code, _, err = run_cli("embed", config, *flags)
    assert code == 0, err
    out = Path(json.loads(config.read_text())["output"])
    assert run_cli("verify", out)[0] == 0
    return json.loads((out / "manifest.json").read_text())


def test_minilm_cache_shapes_norms_reuse_and_worker_counts(tmp_path, docs, run_cli):
    config = write_config(tmp_path / "embed.yaml", inputs=[str(docs)],
                          output=str(tmp_path / "cache"), window_tokens=96,
                          model={"batch_size": 16})
    first = run_embed(run_cli, config, "--workers", "1")
    assert first["model"]["dim"] == 384 and first["model"]["normalized"]
    assert first["model"]["content_hash"].startswith("sha256:")
    assert first["stats"]["docs_embedded"] == 24 and first["stats"]["docs_reused"] == 0
    assert first["accounting"]["rows_kept"] == 24
    cache = load_cache(tmp_path / "cache")
    assert cache.schema.field("embedding").type == pa.list_(pa.float32(), 384)
    assert cache.num_rows > 24  # long documents have several windows
    assert set(cache.column("n_tokens").to_pylist()) <= set(range(1, 97))
    v = vectors(cache)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    shards = {p.name: p.read_bytes() for p in (tmp_path / "cache" / "data").iterdir()}

    again = run_embed(run_cli, config, "--workers", "1")  # the cache is complete: nothing to do
    assert again["stats"]["docs_embedded"] == 0 and again["stats"]["docs_reused"] == 24
    assert {p.name: p.read_bytes() for p in (tmp_path / "cache" / "data").iterdir()} == shards
    assert again["outputs"] == first["outputs"]


def test_only_missing_inputs_are_embedded_and_stale_shards_go(tmp_path, docs, run_cli):
    config = write_config(tmp_path / "embed.yaml", inputs=[str(docs / "a.parquet")],
                          output=str(tmp_path / "cache"), window_tokens=256)
    assert run_embed(run_cli, config, "--workers", "1")["stats"]["docs_embedded"] == 12
    config.write_text(json.dumps({**json.loads(config.read_text()), "inputs": [str(docs)]}))
    both = run_embed(run_cli, config, "--workers", "1")
    assert both["stats"] == {"docs_embedded": 12, "docs_reused": 12, "shards_reused": 2,
                             "shards_written": 2}
    config.write_text(json.dumps({**json.loads(config.read_text()),
                                  "inputs": [str(docs / "b.parquet")]}))
    only_b = run_embed(run_cli, config, "--workers", "1")
    assert only_b["stats"]["docs_reused"] == 12
    assert len(list((tmp_path / "cache" / "data").iterdir())) == 2  # a's shards removed


def test_document_mode_is_the_normalised_mean_of_the_windows(tmp_path, docs, run_cli):
    keys = {"inputs": [str(docs / "a.parquet")], "window_tokens": 64}
    windows = write_config(tmp_path / "w.yaml", output=str(tmp_path / "w"), **keys)
    documents = write_config(tmp_path / "d.yaml", output=str(tmp_path / "d"), mode="document",
                             **keys)
    run_embed(run_cli, windows, "--workers", "1")
    run_embed(run_cli, documents, "--workers", "1")
    per_window, per_doc = load_cache(tmp_path / "w"), load_cache(tmp_path / "d")
    assert per_doc.num_rows == 12 and set(per_doc.column("window").to_pylist()) == {0}
    ids = per_window.column("id").to_pylist()
    wv = vectors(per_window)
    for i, doc in enumerate(per_doc.column("id").to_pylist()):
        mean = wv[[j for j, x in enumerate(ids) if x == doc]].mean(axis=0)
        assert np.allclose(vectors(per_doc)[i], mean / np.linalg.norm(mean), atol=1e-6)
        tokens = sum(t for x, t in zip(ids, per_window.column("n_tokens").to_pylist(),
                                       strict=True) if x == doc)
        assert per_doc.column("n_tokens")[i].as_py() == tokens


def test_bad_documents_are_rejected_with_reasons(tmp_path, run_cli):
    rows = [{"id": "ok", "text": "A perfectly ordinary sentence."},
            {"id": "long", "text": "word " * 400},
            {"id": "ctrl", "text": "\x07\x07\x07"},
            {"id": "blank", "text": "   "}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "x.parquet")
    config = write_config(tmp_path / "e.yaml", inputs=[str(tmp_path / "x.parquet")],
                          output=str(tmp_path / "cache"), max_doc_chars=1000)
    manifest = run_embed(run_cli, config, "--workers", "1")
    assert manifest["accounting"]["rows_rejected"] == {"too_long": 1, "no_tokens": 1,
                                                       "empty_text": 1}
    assert manifest["accounting"]["rows_kept"] == 1
    again = run_embed(run_cli, config, "--workers", "1")  # the same account from the cache
    assert again["accounting"] == manifest["accounting"]


def test_lsi_embeds_without_a_neural_model(tmp_path, docs, run_cli):
    config = write_config(tmp_path / "lsi.yaml", inputs=[str(docs)], output=str(tmp_path / "c"),
                          embedder="lsi", lsi={"dim": 8, "min_df": 1}, window_tokens=200)
    manifest = run_embed(run_cli, config, "--workers", "1")
    assert manifest["model"]["embedder"] == "lsi" and manifest["model"]["dim"] == 8
    assert (tmp_path / "c" / manifest["model"]["artifact"]).exists()
    norms = np.linalg.norm(vectors(load_cache(tmp_path / "c")), axis=1)
    unit = np.isclose(norms, 1.0, atol=1e-5)
    assert np.all(unit | (norms == 0))  # a window with no known term is the zero vector
    assert unit.mean() > 0.9
    again = run_embed(run_cli, config, "--workers", "1")
    assert again["stats"]["docs_embedded"] == 0
    assert again["model"]["artifact"] == manifest["model"]["artifact"]
    # another cache, on two workers: the same shards, byte for byte
    config.write_text(json.dumps({**json.loads(config.read_text()), "output": str(tmp_path / "d")}))
    two = run_embed(run_cli, config, "--workers", "2")
    assert two["outputs"]["shards"] == manifest["outputs"]["shards"]
    assert {p.name: p.read_bytes() for p in (tmp_path / "d" / "data").iterdir()} == {
        p.name: p.read_bytes() for p in (tmp_path / "c" / "data").iterdir()}


def test_model_problems_stop_before_any_work(tmp_path, docs, run_cli):
    config = write_config(tmp_path / "e.yaml", inputs=[str(docs)], output=str(tmp_path / "c"),
                          model={"name": "./missing-model"})
    code, _, err = run_cli("embed", config)
    assert code == 2 and "model path ./missing-model does not exist" in err
    assert not (tmp_path / "c").exists()
    code, out, _ = run_cli("embed", config, "--dry-run", "--workers", "2", "--set",
                           "model.name=all-MiniLM-L6-v2",
                           "--set", "docs_per_second=4")
    assert code == 0
    assert "estimated wall time: 0m06s at 4.0 docs/s (config rate" in out
    assert "the model reads only the first 256 tokens of each window" in out


def test_a_batch_whose_documents_are_all_rejected_writes_no_shard(tmp_path, run_cli):
    (tmp_path / "in").mkdir()
    pq.write_table(pa.table({"id": [f"d{i}" for i in range(30)],
                             "text": [f"an ordinary document number {i}" for i in range(30)]}),
                   tmp_path / "in" / "a.parquet")
    pq.write_table(pa.table({"id": ["long"], "text": ["x" * 500]}), tmp_path / "in" / "b.parquet")
    config = write_config(tmp_path / "e.yaml", inputs=[str(tmp_path / "in")],
                          output=str(tmp_path / "c"), embedder="lsi",
                          lsi={"dim": 4, "min_df": 1}, max_doc_chars=100)
    manifest = run_embed(run_cli, config, "--workers", "1")
    assert manifest["accounting"]["rows_rejected"] == {"too_long": 1}
    assert manifest["accounting"]["rows_kept"] == 30
    assert [s["source"] for s in manifest["outputs"]["shards"]] == ["a.parquet"]


def test_an_lsi_model_that_cannot_be_fitted_stops_with_one_line(tmp_path, run_cli):
    pq.write_table(pa.table({"id": ["a", "b", "c"], "text": ["one", "two", "three"]}),
                   tmp_path / "x.parquet")
    config = write_config(tmp_path / "e.yaml", inputs=[str(tmp_path / "x.parquet")],
                          output=str(tmp_path / "c"), embedder="lsi", lsi={"min_df": 5})
    code, _, err = run_cli("embed", config, "--workers", "1")
    assert code == 1 and "Traceback" not in err
    assert "cannot fit the LSI model: LSI: no term appears in 5+ sample documents" in err
