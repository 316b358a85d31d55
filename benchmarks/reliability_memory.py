"""Peak memory of every job at 1x and 10x its input, for RELIABILITY.md.

Each job runs as ``tamis`` in a process of its own on the local runner with two workers; the
figure is the peak resident memory of the largest process (the launcher or one of Beam's
workers), from ``getrusage``. The corpus is the demo corpus's documents, repeated under new
ids to reach 10x; the specialist is the demo's Python docs.

    python benchmarks/reliability_memory.py --docs 4000 --work /tmp/relmem
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"
RUN = (
    "import json, resource, sys\n"
    "from tamis.runners.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'code': code, 'peak_kib': max(me, kids)}), file=sys.stderr)\n"
)


def corpus(root: Path, docs: int) -> Path:
    """``docs`` documents in files of 2,000: the demo corpus, repeated under new ids."""
    parts = [pq.read_table(p, columns=["id", "text", "domain"])
             for p in sorted((DEMO / "corpus").glob("*.parquet"))]
    base = pa.concat_tables(parts)
    folder = root / f"pool-{docs}"
    folder.mkdir(parents=True, exist_ok=True)
    rows, copy, written = 0, 0, 0
    while rows < docs:
        take = base.slice(0, min(base.num_rows, docs - rows))
        ids = pc.binary_join_element_wise(take.column("id"), pa.scalar(f"-{copy}"), "")
        take = take.set_column(0, "id", ids)
        for start in range(0, take.num_rows, 2000):
            pq.write_table(take.slice(start, 2000), folder / f"part-{written:05d}.parquet")
            written += 1
        rows += take.num_rows
        copy += 1
    return folder


def jobs(pool: Path, out: Path) -> list[tuple[str, str, dict]]:
    spec = str(DEMO / "specialist" / "python_docs.parquet")
    return [
        ("sample", "sample", {"inputs": [str(pool)], "budget": {"rows": 500},
                              "stratify_by": "domain"}),
        ("dsir", "dsir", {"inputs": [str(pool)], "target": [spec], "budget": {"tokens": 50_000}}),
        ("quality", "quality", {"inputs": [str(pool)], "positives": [spec], "keep_top": 0.1}),
        ("embed", "embed", {"inputs": [str(pool)], "embedder": "lsi",
                            "lsi": {"dim": 64, "fit_sample": 2000}}),
        ("embed-specialist", "embed", {"inputs": [spec], "embedder": "lsi",
                                       "lsi": {"dim": 64, "model": "@lsi"}}),
        ("cluster", "cluster", {"embeddings": str(out / "embed"), "branching": 8, "levels": 2}),
        ("crisp", "crisp", {"inputs": [str(pool)], "embeddings": str(out / "embed"),
                            "clusters": str(out / "cluster"),
                            "specialists": [{"embeddings": str(out / "embed-specialist")}],
                            "budget": {"tokens": 50_000}}),
        ("relevance", "relevance", {"inputs": [str(pool)], "embeddings": str(out / "embed"),
                                    "specialists": [{"embeddings": str(out / "embed-specialist")}],
                                    "budget": {"tokens": 50_000}}),
    ]


def run_all(root: Path, docs: int) -> dict[str, dict]:
    pool = corpus(root, docs)
    out = root / f"out-{docs}"
    figures = {}
    for name, command, keys in jobs(pool, out):
        text = json.dumps({**keys, "output": str(out / name)})
        if "@lsi" in text:
            text = text.replace("@lsi", str(next((out / "embed" / "models").glob("lsi-*.npz"))))
        config = root / f"{name}-{docs}.yaml"
        config.write_text(text)
        start = time.monotonic()
        done = subprocess.run([sys.executable, "-c", RUN, command, str(config), "--workers", "2",
                               "--overwrite"], capture_output=True, text=True)
        seconds = time.monotonic() - start
        last = json.loads(done.stderr.strip().splitlines()[-1])
        if last["code"] != 0:
            raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
        rows = json.loads((out / name / "manifest.json").read_text())["accounting"]["rows_in"]
        figures[name] = {"rows_in": rows, "peak_mib": last["peak_kib"] / 1024,
                         "seconds": seconds}
        print(f"{docs:>7} docs  {name:<17} {rows:>8,} rows in  "
              f"peak {last['peak_kib'] / 1024:7.0f} MiB  {seconds:6.1f} s", flush=True)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=4000, help="documents at 1x")
    parser.add_argument("--work", default="/tmp/tamis-relmem")
    args = parser.parse_args()
    root = Path(args.work)
    root.mkdir(parents=True, exist_ok=True)
    small = run_all(root, args.docs)
    large = run_all(root, 10 * args.docs)
    print("\n| job | rows at 1x | peak at 1x | rows at 10x | peak at 10x | growth |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name in small:
        a, b = small[name], large[name]
        print(f"| {name} | {a['rows_in']:,} | {a['peak_mib']:.0f} MiB | {b['rows_in']:,} | "
              f"{b['peak_mib']:.0f} MiB | {b['peak_mib'] / a['peak_mib']:.2f}x |")


if __name__ == "__main__":
    main()
