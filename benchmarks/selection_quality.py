"""Selection quality on real text: uniform, DSIR (ours and the data-selection package), CRISP.

Pool: the demo corpus (10,000 documents of fortunes, the King James Bible, the Python docs and
man pages, about a quarter each). Specialist: 150 Python-docs documents that are not in the
pool (1.5% of its size). Held out: 300 further Python-docs documents. Every method selects the
same number of tokens from the pool; each selection is then judged by

* the share of its tokens (with repeats) from the specialist's domain, and
* the perplexity on the held-out documents of an interpolated Kneser-Ney bigram model trained
  on the selection (with repeats), over a fixed vocabulary (pool words seen twice or more).

Tokens here are words and punctuation marks (this script's own count), the unit of the budget.
CRISP counts the embedding model's tokens; its budget is converted with the pool-wide ratio.

    pip install data-selection nltk
    python benchmarks/selection_quality.py --embedder minilm --budget 200000 [--work DIR]
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import re
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tamis.runners.cli import main as tamis
from tamis.selectors.dsir import HashedNgramSelector

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"
POOL, SPECIALIST = DEMO / "corpus", DEMO / "specialist" / "python_docs.parquet"
HELDOUT = DEMO / "heldout" / "python_docs.parquet"
DOMAIN = "python_docs"
WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    return WORD.findall(text.lower())


class KneserNeyBigram:
    """Interpolated Kneser-Ney bigram model, lower order interpolated with a uniform."""

    def __init__(self, vocab: set[str], discount: float = 0.75) -> None:
        self.vocab, self.d = vocab, discount

    def _map(self, tokens: list[str]) -> list[str]:
        return ["<s>"] + [t if t in self.vocab else "<unk>" for t in tokens]

    def fit(self, docs: list[tuple[str, int]]) -> KneserNeyBigram:
        bigrams: collections.Counter = collections.Counter()
        for text, n in docs:
            seq = self._map(words(text))
            for pair in zip(seq, seq[1:], strict=False):
                bigrams[pair] += n
        self.c_uw = bigrams
        self.c_u = collections.Counter()
        self.followers = collections.Counter()
        self.preceders = collections.Counter()
        for (u, w), c in bigrams.items():
            self.c_u[u] += c
            self.followers[u] += 1
            self.preceders[w] += 1
        self.types = len(bigrams)
        self.size = len(self.vocab) + 1  # with <unk>
        return self

    def _lower(self, w: str) -> float:
        seen = len(self.preceders)
        return (max(self.preceders[w] - self.d, 0) / self.types
                + self.d * seen / self.types / self.size)

    def prob(self, u: str, w: str) -> float:
        cu = self.c_u[u]
        if cu == 0:
            return self._lower(w)
        return (max(self.c_uw[(u, w)] - self.d, 0) / cu
                + self.d * self.followers[u] / cu * self._lower(w))

    def perplexity(self, texts: list[str]) -> float:
        total, count = 0.0, 0
        for text in texts:
            seq = self._map(words(text))
            for u, w in zip(seq, seq[1:], strict=False):
                total += math.log(self.prob(u, w))
                count += 1
        return math.exp(-total / count)


def run(*argv) -> None:
    code = tamis([str(a) for a in argv])
    if code != 0:
        raise SystemExit(f"tamis {' '.join(map(str, argv))} failed ({code})")


def config(path: Path, **keys) -> Path:
    path.write_text(json.dumps(keys))
    return path


def embeddings(work: Path, embedder: str) -> None:
    """Embed pool and specialist (reusing what ``work`` already holds), then cluster."""
    window = {"window_tokens": 256}
    if embedder == "lsi":
        model = {"embedder": "lsi", "lsi": {"dim": 256}}
    else:
        model = {"model": {"batch_size": 64}}
    run("embed", config(work / "pool-embed.json", inputs=[str(POOL)],
                        output=str(work / "pool-emb"), **model, **window))
    if embedder == "lsi":
        fitted = next((work / "pool-emb" / "models").glob("lsi-*.npz"))
        model = {"embedder": "lsi", "lsi": {"dim": 256, "model": str(fitted)}}
    run("embed", config(work / "spec-embed.json", inputs=[str(SPECIALIST)],
                        output=str(work / "spec-emb"), **model, **window))
    for name, branching in (("clusters", 64), ("clusters-16", 16)):
        if not (work / name / "manifest.json").exists():
            run("cluster", config(work / f"{name}.json", embeddings=str(work / "pool-emb"),
                                  output=str(work / name), branching=branching, levels=2))


def read_selection(folder: Path) -> dict[str, int]:
    table = pq.read_table(folder / "data", columns=["id", "n_samples"])
    return dict(zip(table.column("id").to_pylist(), table.column("n_samples").to_pylist(),
                    strict=True))


def uniform(work: Path, budget: int, seed: int) -> dict[str, int]:
    out = work / "uniform"
    run("sample", config(work / "uniform.json", inputs=[str(POOL)], output=str(out),
                         budget={"tokens": budget}, seed=seed), "--overwrite")
    return read_selection(out)


def crisp(work: Path, budget_model: int, level: int, seed: int, cap: int = 16,
          tree: str = "clusters") -> dict[str, int]:
    out = work / f"crisp-{tree}-l{level}-cap{cap}"
    run("crisp", config(work / f"crisp-{tree}-l{level}-cap{cap}.json", inputs=[str(POOL)],
                        embeddings=str(work / "pool-emb"), clusters=str(work / tree),
                        specialists=[{"embeddings": str(work / "spec-emb")}], output=str(out),
                        budget={"tokens": budget_model}, level=level, seed=seed,
                        repetition_cap=cap, sampler="poisson"),
        "--overwrite", "--workers", "1")
    return read_selection(out)


def crisp_without_repeats(work: Path, budget: int, budget_model: int, level: int, seed: int,
                          size: dict[str, int], tree: str = "clusters") -> dict[str, int]:
    """CRISP with ``repetition_cap: 1``. The cap leaves part of the budget unspent, so the
    budget given to crisp is searched (bisection) until the selection holds as many tokens as
    the others, like the document count of the DSIR package row."""
    low, high = float(budget_model), float(budget_model) * 16
    for _ in range(12):
        mid = (low + high) / 2
        chosen = crisp(work, int(mid), level, seed, cap=1, tree=tree)
        if sum(size[i] for i in chosen) <= budget:
            low = mid
        else:
            high = mid
    return crisp(work, int(low), level, seed, cap=1, tree=tree)


def dsir_ours(work: Path, budget: int, seed: int) -> tuple[dict, tuple[float, float]]:
    """``tamis select`` with ``method: dsir``; also times the selector alone (fit + score)."""
    out = work / "dsir-tamis"
    start = time.perf_counter()
    run("select", config(work / "dsir.json", method="dsir", inputs=[str(POOL)],
                         target=[str(SPECIALIST)], output=str(out), budget={"tokens": budget},
                         seed=seed), "--overwrite", "--workers", "1")
    job = time.perf_counter() - start
    texts = pq.read_table(POOL, columns=["text"]).column("text").to_pylist()
    target = pq.read_table(SPECIALIST, columns=["text"]).column("text").to_pylist()
    start = time.perf_counter()
    HashedNgramSelector(min_tokens=100).fit(target, texts).score(texts)
    return read_selection(out), (time.perf_counter() - start, job)


def dsir_package(work: Path, pool: pa.Table, target: list[str], budget: int,
                 seed: int) -> tuple[dict, float]:
    """The package's own fit, weights and resampling; the number of documents to resample is
    searched so that the selection holds at most ``budget`` tokens, like the others."""
    from data_selection import HashedNgramDSIR

    for old in [*work.glob("dsir-out-*"), work / "dsir-tmp", work / "dsir-cache"]:
        shutil.rmtree(old, ignore_errors=True)  # the package refuses to overwrite its outputs
    raw = work / "dsir-raw.jsonl"
    with open(raw, "w") as f:
        for i, t in zip(pool.column("id").to_pylist(), pool.column("text").to_pylist(),
                        strict=True):
            f.write(json.dumps({"id": i, "text": t}) + "\n")
    tgt = work / "dsir-target.jsonl"
    tgt.write_text("".join(json.dumps({"text": t}) + "\n" for t in target))
    start = time.perf_counter()
    dsir = HashedNgramDSIR([str(raw)], [str(tgt)], cache_dir=str(work / "dsir-cache"),
                           num_proc=1)
    dsir.fit_importance_estimator(num_tokens_to_fit="auto")
    dsir.compute_importance_weights()
    seconds = time.perf_counter() - start
    size = {i: len(words(t)) for i, t in zip(pool.column("id").to_pylist(),
                                             pool.column("text").to_pylist(), strict=True)}

    def resample(n: int) -> dict[str, int]:
        np.random.seed(seed)  # the package draws its Gumbel noise from NumPy's global state
        out = work / f"dsir-out-{n}"
        dsir.resample(out_dir=str(out), num_to_sample=n, cache_dir=str(work / "dsir-tmp"))
        return {json.loads(line)["id"]: 1 for path in sorted(out.glob("*.jsonl"))
                for line in path.read_text().splitlines()}

    low, high = 1, pool.num_rows
    while low < high:  # the largest n whose selection fits the budget (same noise each time)
        mid = (low + high + 1) // 2
        if sum(size[i] for i in resample(mid)) <= budget:
            low = mid
        else:
            high = mid - 1
    return resample(low), seconds


def judge(name: str, chosen: dict[str, int], pool: pa.Table, vocab: set[str],
          heldout: list[str]) -> dict:
    text = dict(zip(pool.column("id").to_pylist(), pool.column("text").to_pylist(), strict=True))
    domain = dict(zip(pool.column("id").to_pylist(), pool.column("domain").to_pylist(),
                      strict=True))
    tokens = {i: len(words(text[i])) for i in chosen}
    total = sum(n * tokens[i] for i, n in chosen.items())
    in_domain = sum(n * tokens[i] for i, n in chosen.items() if domain[i] == DOMAIN)
    lm = KneserNeyBigram(vocab).fit([(text[i], n) for i, n in chosen.items()])
    return {"method": name, "tokens": total, "unique_docs": len(chosen),
            "max_repetition": max(chosen.values()), "domain_share": in_domain / total,
            "perplexity": lm.perplexity(heldout)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", choices=["minilm", "lsi"], default="minilm")
    parser.add_argument("--budget", type=int, default=200_000, help="tokens to select")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", help="a folder to keep embeddings in between runs")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="tamis-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    pool = pq.read_table(POOL).sort_by("id")
    target = pq.read_table(SPECIALIST).column("text").to_pylist()
    heldout = pq.read_table(HELDOUT).column("text").to_pylist()
    counts = collections.Counter(w for t in pool.column("text").to_pylist() for w in words(t))
    vocab = {w for w, c in counts.items() if c >= 2}
    embeddings(work, args.embedder)
    pool_words = sum(counts.values())
    model_tokens = json.loads((work / "pool-emb" / "manifest.json").read_text())["outputs"][
        "tokens"]
    budget_model = round(args.budget * model_tokens / pool_words)

    rows = [judge("uniform (tamis sample)", uniform(work, args.budget, args.seed), pool, vocab,
                  heldout)]
    ours, ours_s = dsir_ours(work, args.budget, args.seed)
    rows.append(judge("DSIR-style (tamis select, dsir)", ours, pool, vocab, heldout))
    package, package_s = dsir_package(work, pool, target, args.budget, args.seed)
    rows.append(judge("DSIR (data-selection package)", package, pool, vocab, heldout))
    size = {i: len(words(t)) for i, t in zip(pool.column("id").to_pylist(),
                                             pool.column("text").to_pylist(), strict=True)}
    for tree, level, k in (("clusters", 0, 64), ("clusters-16", 1, 256), ("clusters", 1, 4096)):
        rows.append(judge(f"CRISP, {k} clusters", crisp(
            work, budget_model, level, args.seed, tree=tree), pool, vocab, heldout))
        rows.append(judge(f"CRISP, {k} clusters, cap 1", crisp_without_repeats(
            work, args.budget, budget_model, level, args.seed, size, tree), pool, vocab, heldout))
    full = judge("whole pool (reference)", dict.fromkeys(pool.column("id").to_pylist(), 1),
                 pool, vocab, heldout)
    print(f"\nembedder {args.embedder}; budget {args.budget:,} tokens "
          f"({args.budget / pool_words:.1%} of the pool); specialist {len(target)} docs; "
          f"held out {len(heldout)} docs; vocabulary {len(vocab):,}")
    print(f"{'method':34} {'tokens':>9} {'docs':>6} {'max rep':>7} {DOMAIN + ' share':>17} "
          f"{'held-out ppl':>12}")
    for r in [*rows, full]:
        print(f"{r['method']:34} {r['tokens']:>9,} {r['unique_docs']:>6,} "
              f"{r['max_repetition']:>7} {r['domain_share']:>17.1%} {r['perplexity']:>12.1f}")
    print(f"\nhashed n-gram fit + scoring of {pool.num_rows:,} docs: tamis selector "
          f"{ours_s[0]:.2f}s, data-selection {package_s:.2f}s, ratio {package_s / ours_s[0]:.1f}x")
    print(f"whole tamis dsir job (1 worker: 4 reads, fit, score, select, write, manifest): "
          f"{ours_s[1]:.2f}s, ratio to the package's fit + weights {package_s / ours_s[1]:.1f}x")


if __name__ == "__main__":
    main()
