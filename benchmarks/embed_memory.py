"""Peak memory of ``tamis embed`` (LSI) at 1x and 10x the demo corpus: it must not grow with
the corpus, since records stream through in read batches.

Each size runs in a fresh child process (local runner, 1 worker, so the whole pipeline is in
that process) and its peak resident set is read from the kernel when it exits. The raw
library doing the same work on the whole corpus at once (scikit-learn's TfidfVectorizer +
the fitted SVD on every text in memory) is measured the same way, for scale.

    python benchmarks/embed_memory.py [--copies 10] [--fit-sample 5000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo" / "corpus"

RAW = """
import sys, pyarrow.parquet as pq
from tamis.embeddings.lsi import LsiModel
texts = pq.read_table(sys.argv[1], columns=["text"]).column("text").to_pylist()
model = LsiModel(dim=256).fit(texts[: int(sys.argv[2])])
vectors = model.transform(texts)
print(vectors.shape)
"""


def make_corpus(folder: Path, copies: int) -> int:
    """``copies`` times the demo corpus, each copy with its own ids, 4 files per copy."""
    folder.mkdir(parents=True)
    rows = 0
    for c in range(copies):
        for path in sorted(DEMO.glob("*.parquet")):
            table = pq.read_table(path)
            ids = pa.array([f"{i}#{c}" for i in table.column("id").to_pylist()])
            table = table.set_column(0, "id", ids)
            pq.write_table(table, folder / f"copy{c:02d}-{path.name}", row_group_size=2500)
            rows += table.num_rows
    return rows


def peak_rss_mib(command: list[str]) -> tuple[float, float]:
    """Peak RSS (MiB) and wall seconds of a child process, measured through a fresh wrapper
    process so that no earlier child counts."""
    wrapper = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "
        "time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *command], check=True,
                         capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--fit-sample", type=int, default=5000,
                        help="documents LSI is fitted on, the same at every size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = []
        for copies in (1, args.copies):
            corpus = Path(tmp) / f"x{copies}"
            rows = make_corpus(corpus, copies)
            config = Path(tmp) / f"x{copies}.json"
            config.write_text(json.dumps({
                "inputs": [str(corpus)], "output": str(Path(tmp) / f"cache{copies}"),
                "embedder": "lsi", "lsi": {"dim": 256, "fit_sample": args.fit_sample}}))
            tamis_mib, tamis_s = peak_rss_mib(
                [sys.executable, "-m", "tamis.runners.cli", "embed", str(config),
                 "--workers", "1"])
            raw_mib, raw_s = peak_rss_mib([sys.executable, "-c", RAW, str(corpus),
                                           str(args.fit_sample)])
            results.append((copies, rows, tamis_mib, tamis_s, raw_mib, raw_s))
    print("corpus   documents  tamis embed (LSI): peak RSS, time   raw in-memory LSI: peak RSS")
    for copies, rows, tm, ts, rm, rs in results:
        print(f"{copies:>3}x     {rows:>9,}   {tm:8.0f} MiB {ts:7.1f}s          "
              f"{rm:8.0f} MiB ({rs:.1f}s)")
    (_, _, t1, _, r1, _), (_, _, t10, _, r10, _) = results
    print(f"growth from 1x to {args.copies}x: tamis {t10 / t1:.2f}x, raw in-memory "
          f"{r10 / r1:.2f}x")


if __name__ == "__main__":
    main()
