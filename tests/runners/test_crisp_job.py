"""``tamis cluster``, ``tamis crisp`` and ``tamis relevance`` end to end, on LSI embeddings of
real demo text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from corpora import write_config

from tamis.storage.clusters import load_model, read_counts
from tamis.runners.cli import main
from tamis.selectors import importance as imp
from tamis.selectors.clusters import normalize
from tamis.selectors.precision import quantize, tie_keys
from tamis.storage.cache import open_cache, read_documents

pytestmark = pytest.mark.slow
DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"


def run(*argv) -> None:
    assert main([str(a) for a in argv]) == 0


def run_manifest(config: Path, *flags) -> dict:
    run(*flags[:1], config, *flags[1:])
    out = Path(json.loads(config.read_text())["output"])
    run("verify", out)
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 1,200-document pool (4 domains), its LSI cache, specialist caches, a 4 x 4 tree."""
    root = tmp_path_factory.mktemp("crisp")
    table = pq.read_table(DEMO / "corpus" / "part-00001.parquet")
    table = table.take(pa.array(range(0, 2400, 2)))  # every domain (rows are sorted by id)
    (root / "pool").mkdir()
    pq.write_table(table.slice(0, 600), root / "pool" / "a.parquet", row_group_size=300)
    pq.write_table(table.slice(600), root / "pool" / "b.parquet", row_group_size=300)
    python = pq.read_table(DEMO / "specialist" / "python_docs.parquet").slice(0, 60)
    pq.write_table(python, root / "python.parquet")
    rest = pq.read_table(DEMO / "corpus" / "part-00002.parquet")
    bible = rest.filter(pc.equal(rest.column("domain"), "bible")).slice(0, 60)
    pq.write_table(bible, root / "bible.parquet")
    pool = write_config(root / "pool.yaml", inputs=[str(root / "pool")],
                        output=str(root / "pool-emb"), embedder="lsi",
                        lsi={"dim": 32, "fit_sample": 1200})
    run("embed", pool, "--workers", "1")
    model = next((root / "pool-emb" / "models").glob("lsi-*.npz"))
    for name in ("python", "bible"):
        spec = write_config(root / f"{name}.yaml", inputs=[str(root / f"{name}.parquet")],
                            output=str(root / f"{name}-emb"), embedder="lsi",
                            lsi={"dim": 32, "model": str(model)})
        run("embed", spec, "--workers", "1")
    clusters = write_config(root / "cluster.yaml", embeddings=str(root / "pool-emb"),
                            output=str(root / "clusters"), branching=4, levels=2, niter=10)
    return root, run_manifest(clusters, "cluster", "--workers", "1")


def crisp_config(root: Path, name: str, **keys) -> Path:
    base = {"inputs": [str(root / "pool")], "embeddings": str(root / "pool-emb"),
            "clusters": str(root / "clusters"), "output": str(root / name),
            "specialists": [{"embeddings": str(root / "python-emb")}],
            "budget": {"tokens": 30_000}, "seed": 3}
    return write_config(root / f"{name}.yaml", **{**base, **keys})


def shares(table: pa.Table) -> dict[str, float]:
    """Share of selected tokens (with repeats) per domain."""
    amount: dict[str, float] = {}
    for d, n, t in zip(table.column("domain").to_pylist(), table.column("n_samples").to_pylist(),
                       table.column("n_tokens").to_pylist(), strict=True):
        amount[d] = amount.get(d, 0) + n * t
    total = sum(amount.values())
    return {d: v / total for d, v in amount.items()}


def target_rates(root: Path, budget: float):
    """Brute force from the artifacts: the Python specialist's histogram over the 16 leaves,
    the pool's rows and tokens per leaf, and the draw rates for ``budget``."""
    model = load_model(str(root / "clusters" / "clusters.npz"))
    spec = open_cache(str(root / "python-emb"))
    _, vectors, _ = read_documents(spec.shard_path(spec.shards[0]))
    target = imp.histogram(model.assign(vectors)[:, 1], 16)
    pool_rows, pool_tokens = read_counts(str(root / "clusters"), 1)
    return target, pool_rows, pool_tokens, imp.rates(target, pool_tokens, budget)


def test_cluster_assigns_every_document_at_every_level(world):
    root, manifest = world
    assert manifest["accounting"]["rows_in"] == manifest["accounting"]["rows_kept"] == 1200
    table = pq.read_table(root / "clusters" / "data")
    assert np.all(table.column("cluster_l1").to_numpy() // 4 == table.column("cluster_l0"))
    rows, tokens = read_counts(str(root / "clusters"), 1)
    assert len(rows) == 16 and rows.sum() == 1200
    assert tokens.sum() == manifest["outputs"]["tokens"]
    assert manifest["clusters"]["levels"] == 2 and manifest["clusters"]["branching"] == 4
    # the saved tree routes the cached vectors to the same clusters
    model = load_model(str(root / "clusters" / "clusters.npz"))
    cache = open_cache(str(root / "pool-emb"))
    ids, vectors, _ = read_documents(cache.shard_path(cache.shards[0]))
    mine = dict(zip(table.column("id").to_pylist(), table.column("cluster_l1").to_pylist(),
                    strict=True))
    assert [mine[i] for i in ids] == model.assign(vectors)[:, 1].tolist()


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


def test_bad_cluster_and_crisp_inputs(world, tmp_path, capsys):
    root, _ = world
    config = write_config(tmp_path / "c.yaml", embeddings=str(root / "pool"),
                          output=str(tmp_path / "o"))
    assert main(["cluster", str(config)]) == 2
    assert "is not an embedding cache" in capsys.readouterr().err
    config = crisp_config(root, "x", clusters=str(root / "pool-emb"))
    assert main(["crisp", str(config)]) == 2
    assert "holds the output of 'embed', not cluster" in capsys.readouterr().err


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


def cache_documents(path: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    cache = open_cache(str(path))
    parts = [read_documents(cache.shard_path(e)) for e in cache.shards]
    return ([i for p in parts for i in p[0]], np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]))


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


def test_select_runs_every_method_from_one_config(world):
    root, _ = world
    for method, job in (("relevance", "relevance"), ("mmr", "relevance"), ("hybrid", "crisp")):
        keys = {"method": method, "inputs": [str(root / "pool")],
                "output": str(root / f"select-{method}"),
                "embeddings": str(root / "pool-emb"), "budget": {"tokens": 20_000},
                "specialists": [{"embeddings": str(root / "python-emb")}]}
        if method == "hybrid":
            keys["clusters"] = str(root / "clusters")
        manifest = run_manifest(write_config(root / f"{method}.yaml", **keys), "select",
                                "--workers", "1")
        assert manifest["job"] == job
        if method == "hybrid":
            assert manifest["selector"]["sampler"] == "without_replacement"
            assert manifest["selector"]["soft_clusters"] == 8
        if method == "mmr":
            assert manifest["selector"]["mmr_lambda"] == 0.7


def test_relevance_problems_are_named_before_work(world, tmp_path, capsys):
    root, _ = world
    config = relevance_config(root, "big", mmr_lambda=0.5, max_candidates=10)
    assert main(["relevance", str(config)]) == 2
    assert "MMR would hold about" in capsys.readouterr().err
    config = relevance_config(root, "badk", k=0)
    assert main(["relevance", str(config)]) == 2
    assert "'k' must be >= 1" in capsys.readouterr().err
    assert not (root / "big").exists() and not (root / "badk").exists()
