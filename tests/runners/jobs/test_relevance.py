"""``tamis relevance`` (and ``select``) end to end on LSI embeddings of real demo text, with
brute-force references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from corpora import write_config
from world import cache_documents, run, run_manifest, shares

from tamis.runners.cli import main
from tamis.selectors.clusters import normalize
from tamis.selectors.precision import quantize, tie_keys

pytestmark = pytest.mark.slow


def brute_relevance(root: Path, k: int = 5) -> tuple[list[str], np.ndarray, np.ndarray,
                                                      np.ndarray]:
    """Relevance by the documented rule: float64 cosines of the (float32, unit) vectors on the
    grid, the mean of the k highest on the grid; and the pool's order: highest relevance
    first, equal relevance by the (seed, id) tie key."""
    ids, pool, tokens = cache_documents(root / "pool-emb")
    _, spec, _ = cache_documents(root / "python-emb")
    cos = quantize(normalize(pool).astype(np.float64) @ normalize(spec).astype(np.float64).T)
    score = quantize(np.sort(cos, axis=1)[:, -k:].mean(axis=1))
    order = np.lexsort((tie_keys(ids, 0), -score))
    return ids, score, tokens, pool, order


def relevance_config(root: Path, name: str, **keys) -> Path:
    base = {"inputs": [str(root / "pool")], "embeddings": str(root / "pool-emb"),
            "specialists": [{"embeddings": str(root / "python-emb")}], "output": str(root / name),
            "budget": {"tokens": 30_000}, "k": 5}
    return write_config(root / f"{name}.yaml", **{**base, **keys})


def test_relevance_takes_the_most_similar_records_up_to_the_budget(world):
    root, _ = world
    manifest = run_manifest(relevance_config(root, "rel"), "relevance", "--workers", "2")
    ids, score, tokens, _, order = brute_relevance(root)
    table = pq.read_table(root / "rel" / "data")
    mine = dict(zip(table.column("id").to_pylist(), table.column("relevance").to_pylist(),
                    strict=True))
    brute = dict(zip(ids, score, strict=True))
    assert all(mine[i] == brute[i] for i in mine)
    # the selection is the prefix of the relevance order that fits the budget
    fits = int(np.searchsorted(np.cumsum(tokens[order]), 30_000, side="right"))
    assert set(mine) == {ids[i] for i in order[:fits]}
    assert table.column("n_samples").to_pylist() == [1] * table.num_rows
    assert shares(table)["python_docs"] > 0.9
    acc, selector = manifest["accounting"], manifest["selector"]
    assert acc["rows_in"] == 1200 == acc["rows_kept"] + acc["rows_dropped"]["not_selected"]
    assert 30_000 - tokens.max() < selector["selected_tokens"] <= 30_000
    assert selector["max_repetition"] == 1 and selector["index"] == "exact"
    assert selector["min_relevance"] == pytest.approx(min(mine.values()), abs=1e-6)


def test_relevance_with_mmr_matches_the_greedy_reference_and_is_deterministic(world):
    from tamis.selectors.relevance import mmr

    root, _ = world
    config = relevance_config(root, "mmr", mmr_lambda=0.5, mmr_candidates=2.0)
    manifest = run_manifest(config, "relevance", "--workers", "1")
    ids, score, tokens, vectors, order = brute_relevance(root)
    fits = int(np.searchsorted(np.cumsum(tokens[order]), 60_000, side="right"))
    cand = order[:fits]
    picks = mmr(vectors[cand], score[cand], tokens[cand], 30_000, 0.5)
    table = pq.read_table(root / "mmr" / "data").sort_by("mmr_rank")
    assert table.column("id").to_pylist() == [ids[cand[i]] for i in picks]
    assert manifest["selector"]["mmr_lambda"] == 0.5
    plain = order[:int(np.searchsorted(np.cumsum(tokens[order]), 30_000, side="right"))]
    # diversity trades some relevance for spread
    assert np.mean(table.column("relevance").to_numpy()) < np.mean(score[plain])
    first = {p.name: p.read_bytes() for p in (root / "mmr" / "data").iterdir()}
    run("relevance", config, "--workers", "2", "--overwrite")
    assert {p.name: p.read_bytes() for p in (root / "mmr" / "data").iterdir()} == first


def test_select_maps_every_method_to_its_job_and_keys():
    from tamis.runners.jobs import METHODS, select

    expected = {"uniform": ("sample", {}), "dsir": ("dsir", {}), "crisp": ("crisp", {}),
                "hybrid": ("crisp", {"sampler": "without_replacement", "soft_clusters": 8}),
                "relevance": ("relevance", {}), "mmr": ("relevance", {"mmr_lambda": 0.7})}
    assert set(METHODS) == set(expected)
    for method, (job, keys) in expected.items():
        chosen, data = select({"method": method, "seed": 4})
        assert chosen.name == job and data == {**keys, "seed": 4}
    chosen, data = select({"method": "mmr", "mmr_lambda": 0.2})  # the config's own key wins
    assert data == {"mmr_lambda": 0.2}


def test_relevance_problems_are_named_before_work(world, tmp_path, capsys):
    root, _ = world
    config = relevance_config(root, "big", mmr_lambda=0.5, max_candidates=10)
    assert main(["relevance", str(config)]) == 2
    assert "MMR would hold about" in capsys.readouterr().err
    config = relevance_config(root, "badk", k=0)
    assert main(["relevance", str(config)]) == 2
    assert "'k' must be >= 1" in capsys.readouterr().err
    assert not (root / "big").exists() and not (root / "badk").exists()
