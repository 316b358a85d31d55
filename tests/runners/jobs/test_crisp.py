"""``tamis crisp`` end to end on LSI embeddings of real demo text, with brute-force
references from the artifacts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from corpora import write_config
from world import run, run_manifest, shares

from tamis.runners.cli import main
from tamis.selectors import importance as imp
from tamis.storage.cache import open_cache, read_documents
from tamis.storage.clusters import load_model, read_counts

pytestmark = pytest.mark.slow


def crisp_config(root: Path, name: str, **keys) -> Path:
    base = {"inputs": [str(root / "pool")], "embeddings": str(root / "pool-emb"),
            "clusters": str(root / "clusters"), "output": str(root / name),
            "specialists": [{"embeddings": str(root / "python-emb")}],
            "budget": {"tokens": 30_000}, "seed": 3}
    return write_config(root / f"{name}.yaml", **{**base, **keys})


def target_rates(root: Path, budget: float):
    """Brute force from the artifacts: the Python specialist's histogram over the 16 leaves,
    the pool's rows and tokens per leaf, and the draw rates for ``budget``."""
    model = load_model(str(root / "clusters" / "clusters.npz"))
    spec = open_cache(str(root / "python-emb"))
    _, vectors, _ = read_documents(spec.shard_path(spec.shards[0]))
    target = imp.histogram(model.assign(vectors)[:, 1], 16)
    pool_rows, pool_tokens = read_counts(str(root / "clusters"), 1)
    return target, pool_rows, pool_tokens, imp.rates(target, pool_tokens, budget)


def test_crisp_selects_the_specialist_domain_with_brute_force_counts(world):
    root, _ = world
    manifest = run_manifest(crisp_config(root, "crisp", sampler="poisson"), "crisp",
                            "--workers", "1")
    table = pq.read_table(root / "crisp" / "data")
    pool = pq.read_table(root / "pool")
    pool_share = np.mean(np.asarray(pool.column("domain").to_pylist()) == "python_docs")
    assert shares(table)["python_docs"] > 2 * pool_share
    # brute force: histograms, weights, rates and Poisson counts from the artifacts
    target, _, pool_tokens, rates = target_rates(root, 30_000)
    w = imp.weights(target, pool_tokens)
    clusters = table.column("cluster_l1").to_numpy()
    expected = imp.draw_counts(table.column("id").to_pylist(), clusters, rates, 3, 16)
    assert table.column("n_samples").to_numpy().tolist() == expected.tolist()
    assert np.allclose(table.column("weight").to_numpy(), w[clusters])
    selector = manifest["selector"]
    assert selector["selected_draws"] == int(expected.sum())
    assert selector["max_repetition"] == int(expected.max())
    assert 0 < selector["effective_sample_size"] <= selector["selected_draws"]
    assert selector["kl_selected_to_target"] < selector["kl_pool_to_target"]
    acc = manifest["accounting"]
    assert acc["rows_in"] == 1200 == acc["rows_kept"] + acc["rows_dropped"]["not_sampled"]
    assert abs(selector["selected_tokens_with_repeats"] - 30_000) < 0.15 * 30_000


def test_draws_without_replacement_repeat_only_exhausted_clusters(world):
    root, _ = world
    manifest = run_manifest(crisp_config(root, "norep", sampler="without_replacement",
                                         budget={"tokens": 60_000}), "crisp", "--workers", "2")
    table = pq.read_table(root / "norep" / "data")
    _, pool_rows, _, rates = target_rates(root, 60_000)
    assert rates.max() > 1 > rates[rates > 0].min()  # some clusters are exhausted, some not
    clusters = table.column("cluster_l1").to_numpy()
    n = table.column("n_samples").to_numpy()
    expected = imp.without_replacement_counts(table.column("id").to_pylist(), clusters, rates,
                                              3, 16)
    assert n.tolist() == expected.tolist()
    for c in range(16):
        mine = n[clusters == c]
        if len(mine) and mine.max() > 1:  # a repeat: the whole cluster was drawn first
            assert rates[c] > 1 and len(mine) == pool_rows[c] and mine.min() >= 1
        if rates[c] <= 1:
            assert len(mine) == 0 or mine.max() == 1
    # rows come in an order of their own, not in the order of the uniforms that kept them
    from tamis.pipelines.tail import ORDER_SALT
    from tamis.selectors.sampling import row_keys

    ids = table.column("id").to_pylist()
    assert np.all(np.diff(row_keys(ids, 3 ^ ORDER_SALT).astype(np.float64)) > 0)
    assert not np.all(np.diff(imp.uniforms(ids, 3)) > 0)
    assert not (root / "norep" / ".spill").exists()
    selector = manifest["selector"]
    assert selector["sampler"] == "without_replacement"
    assert selector["max_repetition"] == int(n.max())
    assert abs(selector["selected_tokens_with_repeats"] - 60_000) < 0.15 * 60_000


def test_soft_histograms_spread_the_specialist_over_near_clusters(world):
    root, _ = world
    hard = run_manifest(crisp_config(root, "hard"), "crisp", "--workers", "1")
    soft = run_manifest(crisp_config(root, "soft", soft_clusters=3, soft_temperature=0.1),
                        "crisp", "--workers", "1")
    model = load_model(str(root / "clusters" / "clusters.npz"))
    spec = open_cache(str(root / "python-emb"))
    _, vectors, _ = read_documents(spec.shard_path(spec.shards[0]))
    expected = model.soft_counts(vectors, 1, 3, 0.1)
    shares_soft = {int(c): v["target_share"] for c, v in soft["mixture"]["clusters"].items()}
    assert shares_soft
    for c, share in shares_soft.items():
        assert share == pytest.approx(expected[c] / expected.sum(), abs=1e-6)
    hard_clusters = {c for c, v in hard["mixture"]["clusters"].items() if v["target_share"] > 0}
    soft_clusters = {c for c, v in soft["mixture"]["clusters"].items() if v["target_share"] > 0}
    assert len(soft_clusters) >= len(hard_clusters)
    assert soft["selector"]["soft_clusters"] == 3


def test_crisp_is_deterministic_across_reruns_and_workers(world):
    root, _ = world
    config = crisp_config(root, "again", num_shards=3)
    run("crisp", config, "--workers", "1")
    first = (root / "again" / "data").iterdir()
    first = {p.name: p.read_bytes() for p in first}
    # what an interrupted run leaves behind does not block --overwrite nor enter the shards
    (root / "again" / ".spill").mkdir()
    (root / "again" / ".spill" / "stale.arrow").write_bytes(b"not arrow")
    run("crisp", config, "--workers", "2", "--overwrite")
    assert {p.name: p.read_bytes() for p in (root / "again" / "data").iterdir()} == first


def test_multi_task_and_generic_injection(world):
    root, _ = world
    both = [{"embeddings": str(root / "python-emb"), "weight": 1},
            {"embeddings": str(root / "bible-emb"), "weight": 1}]
    run("crisp", crisp_config(root, "multi", specialists=both), "--workers", "1")
    mixed = shares(pq.read_table(root / "multi" / "data"))
    assert mixed["python_docs"] > 0.25 and mixed["bible"] > 0.25
    run("crisp", crisp_config(root, "generic", inject_generic=0.5), "--workers", "1")
    plain = shares(pq.read_table(root / "crisp" / "data"))
    generic = shares(pq.read_table(root / "generic" / "data"))
    assert generic["python_docs"] < plain["python_docs"] - 0.15


def test_crisp_problems_are_named_before_work(world, tmp_path, capsys):
    root, _ = world
    own = write_config(tmp_path / "own.yaml", inputs=[str(root / "python.parquet")],
                       output=str(tmp_path / "own-emb"), embedder="lsi",
                       lsi={"dim": 16, "min_df": 1})
    run("embed", own, "--workers", "1")
    config = crisp_config(root, "bad", specialists=[{"embeddings": str(tmp_path / "own-emb")}])
    assert main(["crisp", str(config)]) == 2
    assert "was embedded with content_hash" in capsys.readouterr().err
    assert not (root / "bad").exists()
    config = crisp_config(root, "huge", budget={"tokens": 10_000_000}, repetition_cap=2)
    manifest = run_manifest(config, "crisp", "--workers", "1")
    assert any("needs more than the pool gives under repetition_cap 2" in w
               for w in manifest["warnings"])
    assert manifest["selector"]["max_repetition"] == 2


def test_crisp_from_text_embeds_and_clusters_on_the_way(world, tmp_path, capsys):
    root, _ = world
    config = write_config(
        tmp_path / "text.yaml", inputs=[str(root / "pool")],
        specialists=[{"inputs": [str(root / "python.parquet")]}], output=str(tmp_path / "sel"),
        budget={"tokens": 20_000}, embed={"embedder": "lsi", "lsi": {"dim": 16}},
        tree={"branching": 4, "levels": 2, "niter": 5})
    assert main(["crisp", str(config), "--dry-run"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["text.yaml"]  # a dry run writes nothing
    assert main(["crisp", str(config), "--workers", "1"]) == 0
    work = tmp_path / "sel-work"
    assert sorted(p.name for p in work.iterdir()) == ["clusters", "pool-emb", "specialist-0"]
    run("verify", tmp_path / "sel")
    first = {p.name: p.read_bytes() for p in (tmp_path / "sel" / "data").iterdir()}
    capsys.readouterr()
    assert main(["crisp", str(config), "--workers", "1", "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "docs_embedded 0" in err and "tamis cluster" not in err  # caches reused
    assert {p.name: p.read_bytes() for p in (tmp_path / "sel" / "data").iterdir()} == first


def test_crisp_from_text_checks_its_output_before_embedding(world, tmp_path, capsys):
    root, _ = world
    (tmp_path / "sel").mkdir()
    (tmp_path / "sel" / "mine.txt").write_text("x")
    config = write_config(
        tmp_path / "text.yaml", inputs=[str(root / "pool")],
        specialists=[{"inputs": [str(root / "python.parquet")]}], output=str(tmp_path / "sel"),
        budget={"tokens": 20_000}, embed={"embedder": "lsi"})
    assert main(["crisp", str(config)]) == 2
    assert "is not empty" in capsys.readouterr().err
    assert not (tmp_path / "sel-work").exists()  # nothing was embedded




def test_crisp_refuses_a_pool_smaller_than_its_cache(world, tmp_path, capsys):
    """The tree's counts are over the whole cache: a pool of part of it would get wrong rates."""
    root, _ = world
    config = crisp_config(root, "part", inputs=[str(root / "pool" / "a.parquet")])
    assert main(["crisp", str(config), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "was made from more files than 'inputs' names (b.parquet)" in err
