"""fastText quality scoring: raw ``model.predict`` against ``tamis quality``, one run.

Documents of about 300 words are made by joining consecutive demo documents of one domain;
the corpus is repeated to reach ``--docs``. A model is trained once; then the raw side loads it
and predicts every text (after the same one-line normalisation), and the tamis side runs the
whole ``tamis quality`` job with that model in annotate-only mode (Beam start, read, score,
write shards, checksums, manifest).

    python benchmarks/quality_speed.py --docs 20000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from tamis.embeddings.fasttext_quality import FastTextQuality, one_line
from tamis.runners.cli import main as tamis

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"


def documents(n: int, words: int = 300) -> list[str]:
    table = pq.read_table(DEMO / "corpus").sort_by([("domain", "ascending"), ("id", "ascending")])
    out, current, count, domain = [], [], 0, None
    for text, d in zip(table.column("text").to_pylist(), table.column("domain").to_pylist(),
                       strict=True):
        if d != domain or count >= words:
            if count >= words // 2:
                out.append("\n\n".join(current))
            current, count, domain = [], 0, d
        current.append(text)
        count += len(text.split())
    return [out[i % len(out)] for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    texts = documents(args.docs)
    words = sum(len(t.split()) for t in texts) / len(texts)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pool = pq.read_table(DEMO / "corpus").column("text").to_pylist()
        hq = pq.read_table(DEMO / "specialist").column("text").to_pylist()
        model_path = str(tmp / "quality.bin")
        FastTextQuality(seed=0).fit(hq, pool[::10]).save(model_path)
        pq.write_table(pa.table({"id": [f"d{i}" for i in range(len(texts))], "text": texts}),
                       tmp / "docs.parquet", row_group_size=2048)

        import fasttext

        start = time.perf_counter()
        raw = fasttext.load_model(model_path)
        raw.predict([one_line(t) for t in texts], k=1)
        raw_s = time.perf_counter() - start

        config = tmp / "q.json"
        config.write_text(json.dumps({"inputs": [str(tmp / "docs.parquet")],
                                      "model": model_path, "output": str(tmp / "out"),
                                      "annotate_only": True}))
        start = time.perf_counter()
        code = tamis(["quality", str(config), "--workers", str(args.workers)])
        tamis_s = time.perf_counter() - start
        if code:
            raise SystemExit(f"tamis quality failed ({code})")
    n = len(texts)
    cores = args.workers if args.workers > 1 else 1
    print(f"\n{n:,} documents, {words:.0f} words on average, {os.cpu_count()} cores here")
    print(f"raw fasttext predict (1 thread):     {n / raw_s:10,.0f} docs/s")
    print(f"tamis quality, {args.workers} worker(s), end to end: {n / tamis_s:10,.0f} docs/s "
          f"({n / tamis_s / cores:,.0f} per worker)")
    print(f"ratio tamis / raw:                   {raw_s / tamis_s:10.2f}x")


if __name__ == "__main__":
    main()
