"""Selection on narrow targets: every selection method, with the target 8%, 4% and 1% of the pool.

Pools: the demo corpus without its Python docs (7,500 documents of fortunes, the King James
Bible and man pages), plus just enough Python-docs documents (picked by a hash of their id)
that they hold 8%, 4% or 1% of the pool's tokens. Specialist: the 150 Python-docs documents
of examples/demo/specialist (not in any pool). Held out: the 300 of examples/demo/heldout.

Every method selects 4% of the pool's tokens: half the target's tokens at 8%, all of them at
4%, four times them at 1% (where a selection must repeat the target or leave it). Judged by

* the share of selected tokens (with repeats) from the target domain,
* distinct records and the largest repetition,
* the held-out perplexity of an interpolated Kneser-Ney bigram model trained on the distinct
  selected text (each record once), over the pool's vocabulary (words seen twice or more).

Tokens are words and punctuation marks; CRISP and relevance budgets, in the embedding model's
tokens, are converted with the pool-wide ratio. MiniLM caches are reused between scenarios
(the shared part of the pools is embedded once).

    pip install ".[bench]"
    python benchmarks/selection_scenarios.py --embedder minilm --work /tmp/scenarios
    python benchmarks/selection_scenarios.py --embedder lsi --work /tmp/scenarios
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from selection_quality import KneserNeyBigram, config, dsir_package, read_selection, run, words

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"
SPECIALIST, HELDOUT = DEMO / "specialist", DEMO / "heldout" / "python_docs.parquet"
DOMAIN = "python_docs"
SHARES = {"8%": 0.08, "4%": 0.04, "1%": 0.01}
BUDGET_SHARE = 0.04
TREES = {"k64": ("tree-64", 64, 0), "k256": ("tree-16", 16, 1), "k4096": ("tree-64", 64, 1)}


def build_pools(work: Path) -> dict[str, Path]:
    """``base/pool`` (no target) and one pool folder per scenario, sharing ``others.parquet``."""
    corpus = pq.read_table(DEMO / "corpus").sort_by("id")
    is_target = pc.equal(corpus.column("domain"), DOMAIN)
    others, target = corpus.filter(pc.invert(is_target)), corpus.filter(is_target)
    base = work / "base" / "pool"
    base.mkdir(parents=True, exist_ok=True)
    if not (base / "others.parquet").exists():
        pq.write_table(others, base / "others.parquet")
    other_words = sum(len(words(t)) for t in others.column("text").to_pylist())
    order = sorted(range(target.num_rows), key=lambda i: hashlib.blake2b(
        target.column("id")[i].as_py().encode(), digest_size=8).digest())
    pools = {}
    for name, share in SHARES.items():
        folder = work / f"target-{name[:-1]}" / "pool"
        folder.mkdir(parents=True, exist_ok=True)
        want, have, take = share / (1 - share) * other_words, 0, []
        for i in order:
            if have >= want:
                break
            take.append(i)
            have += len(words(target.column("text")[i].as_py()))
        if not (folder / "python.parquet").exists():
            shutil.copyfile(base / "others.parquet", folder / "others.parquet")
            pq.write_table(target.take(pa.array(sorted(take))), folder / "python.parquet")
        pools[name] = folder
    return pools


def embed(work: Path, pool: Path, embedder: str) -> Path:
    """Embed a pool and the specialist set; fit the trees. Returns the scenario's folder."""
    root = pool.parent / embedder
    root.mkdir(exist_ok=True)
    window = {"window_tokens": 256}
    model = ({"embedder": "lsi", "lsi": {"dim": 256}} if embedder == "lsi"
             else {"model": {"batch_size": 64}})
    if embedder == "minilm" and not (root / "pool-emb").exists():
        shared = work / "base" / "minilm-emb"
        run("embed", config(work / "base" / "embed.json", inputs=[str(work / "base" / "pool")],
                            output=str(shared), **model, **window))
        shutil.copytree(shared, root / "pool-emb")  # its shards of others.parquet are reused
    run("embed", config(root / "pool-embed.json", inputs=[str(pool)],
                        output=str(root / "pool-emb"), **model, **window))
    if embedder == "lsi":
        fitted = next((root / "pool-emb" / "models").glob("lsi-*.npz"))
        model = {"embedder": "lsi", "lsi": {"dim": 256, "model": str(fitted)}}
    run("embed", config(root / "spec-embed.json", inputs=[str(SPECIALIST)],
                        output=str(root / "spec-emb"), **model, **window))
    for name, branching in (("tree-64", 64), ("tree-16", 16)):
        if not (root / name / "manifest.json").exists():
            run("cluster", config(root / f"{name}.json", embeddings=str(root / "pool-emb"),
                                  output=str(root / name), branching=branching, levels=2))
    return root


def select(root: Path, pool: Path, name: str, method: str, **keys) -> dict[str, int]:
    """``tamis select`` with ``method``; the selection as ``id → n_samples``."""
    out = root / "out" / name
    base = {"method": method, "inputs": [str(pool)], "output": str(out), "seed": 0}
    if method in ("crisp", "hybrid", "relevance", "mmr"):
        base.update(embeddings=str(root / "pool-emb"),
                    specialists=[{"embeddings": str(root / "spec-emb")}])
    run("select", config(root / f"{name}.json", **{**base, **keys}), "--overwrite",
        "--workers", "1")
    return read_selection(out)


def methods(root: Path, pool: Path, budget: int, budget_model: int):
    """``(name, selection)`` for every method, in table order."""
    yield "uniform", select(root, pool, "uniform", "uniform", budget={"tokens": budget})
    yield "DSIR (tamis)", select(root, pool, "dsir", "dsir", target=[str(SPECIALIST)],
                                 budget={"tokens": budget})
    for sampler, label in (("poisson", "CRISP"), ("without_replacement", "CRISP no-repeat")):
        for k, (tree, _, level) in TREES.items():
            yield f"{label}, {k[1:]} clusters", select(
                root, pool, f"crisp-{sampler}-{k}", "crisp", clusters=str(root / tree),
                level=level, sampler=sampler, budget={"tokens": budget_model})
    yield "relevance (k=10)", select(root, pool, "relevance", "relevance",
                                     budget={"tokens": budget_model})
    yield "relevance + MMR (λ=0.7)", select(root, pool, "mmr", "mmr",
                                           budget={"tokens": budget_model})
    for k in ("k256", "k4096"):
        tree, _, level = TREES[k]
        yield f"hybrid, {k[1:]} clusters", select(
            root, pool, f"hybrid-{k}", "hybrid", clusters=str(root / tree), level=level,
            budget={"tokens": budget_model})


def judge(chosen: dict[str, int], text: dict, domain: dict, vocab: set,
          heldout: list[str]) -> dict:
    tokens = {i: len(words(text[i])) for i in chosen}
    total = sum(n * tokens[i] for i, n in chosen.items())
    on_target = sum(n * tokens[i] for i, n in chosen.items() if domain[i] == DOMAIN)
    lm = KneserNeyBigram(vocab).fit([(text[i], 1) for i in chosen])  # distinct text
    return {"tokens": total, "distinct": len(chosen), "max_repetition": max(chosen.values()),
            "target_share": on_target / total if total else 0.0,
            "perplexity": lm.perplexity(heldout)}


def scenario(work: Path, name: str, pool: Path, embedder: str, seed: int) -> dict:
    root = embed(work, pool, embedder)
    table = pq.read_table(pool)
    text = dict(zip(table.column("id").to_pylist(), table.column("text").to_pylist(),
                    strict=True))
    domain = dict(zip(table.column("id").to_pylist(), table.column("domain").to_pylist(),
                      strict=True))
    counts = collections.Counter(w for t in text.values() for w in words(t))
    vocab = {w for w, c in counts.items() if c >= 2}
    pool_words = sum(counts.values())
    target_words = sum(len(words(text[i])) for i in text if domain[i] == DOMAIN)
    budget = round(BUDGET_SHARE * pool_words)
    model_tokens = json.loads((root / "pool-emb" / "manifest.json").read_text())["outputs"][
        "tokens"]
    budget_model = round(budget * model_tokens / pool_words)
    heldout = pq.read_table(HELDOUT).column("text").to_pylist()
    rows = []
    for method, chosen in methods(root, pool, budget, budget_model):
        rows.append({"method": method, **judge(chosen, text, domain, vocab, heldout)})
    target = pq.read_table(SPECIALIST).column("text").to_pylist()
    package, _ = dsir_package(root, table, target, budget, seed)
    rows.insert(2, {"method": "DSIR (data-selection)",
                    **judge(package, text, domain, vocab, heldout)})
    return {"scenario": name, "embedder": embedder, "pool_docs": table.num_rows,
            "target_docs": sum(d == DOMAIN for d in domain.values()),
            "target_share": target_words / pool_words, "pool_words": pool_words,
            "budget": budget, "rows": rows}


def print_table(result: dict) -> None:
    print(f"\n### target {result['scenario']} of the pool ({result['embedder']}): "
          f"{result['target_docs']} of {result['pool_docs']:,} documents, "
          f"{result['target_share']:.1%} of {result['pool_words']:,} tokens; budget "
          f"{result['budget']:,} tokens\n")
    print("| method | tokens | distinct | max rep | target share | held-out ppl |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in result["rows"]:
        print(f"| {r['method']} | {r['tokens']:,} | {r['distinct']:,} | {r['max_repetition']} | "
              f"{r['target_share']:.1%} | {r['perplexity']:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", choices=["minilm", "lsi"], default="minilm")
    parser.add_argument("--scenarios", nargs="*", default=list(SHARES), choices=list(SHARES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help="a folder to keep pools and embeddings in between runs")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="tamis-scenarios-"))
    pools = build_pools(work)
    results = []
    for name in args.scenarios:
        start = time.perf_counter()
        result = scenario(work, name, pools[name], args.embedder, args.seed)
        result["seconds"] = round(time.perf_counter() - start, 1)
        results.append(result)
        print_table(result)
    out = work / f"results-{args.embedder}.json"
    out.write_text(json.dumps(results, indent=1))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    main()
