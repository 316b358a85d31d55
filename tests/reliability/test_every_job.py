"""Every job on a corpus with planted faults: its accounting against an independent count of
the inputs and of the faults, ``tamis verify``, the same bytes on one and two workers and
under another BLAS kernel, and a kill -9 during ``--overwrite`` that leaves its result whole."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from reliability.faults import (
    DEMO,
    balanced,
    corrupt_page,
    demo_rows,
    independent_rows,
    manifest,
    shard_hashes,
)

from tamis.runners.cli import main
from tamis.storage.manifest import verify
from tamis.storage.outputs import staging_path

#: Faults planted in the pool (``faults.jsonl.gz``, a Parquet file whose text is a list, one
#: with a corrupt page): the reasons their rows are rejected for.
PLANTED = {"invalid_json": 3, "null_text": 2, "empty_text": 1, "non_string_text": 1 + 8,
           "not_an_object": 2, "invalid_utf8": 2, "null_id": 1, "bad_value": 1,
           "unreadable": 60}
JSONL_FAULTS = 13  # of those, the lines of faults.jsonl.gz
DUPLICATES = 4  # rows of faults.jsonl.gz that repeat ids of a.parquet (kept, and counted)

#: (name, command, keys) in the order they run; ``@root`` is the corpus folder.
JOBS = [
    ("sample", "sample", {"inputs": ["@root/pool"], "budget": {"tokens": 20_000}}),
    ("dsir", "dsir", {"inputs": ["@root/pool"], "target": ["@root/python.parquet"],
                      "budget": {"tokens": 15_000}}),
    ("quality", "quality", {"inputs": ["@root/pool"], "positives": ["@root/python.parquet"],
                            "keep_top": 0.3, "fasttext": {"epoch": 10}}),
    ("embed", "embed", {"inputs": ["@root/pool"], "embedder": "lsi",
                        "lsi": {"dim": 16, "fit_sample": 400}, "window_tokens": 256}),
    ("embed-python", "embed", {"inputs": ["@root/python.parquet"], "embedder": "lsi",
                               "lsi": {"dim": 16, "model": "@lsi"}, "window_tokens": 256}),
    ("cluster", "cluster", {"embeddings": "@out/embed", "branching": 3, "levels": 2,
                            "niter": 8}),
    ("crisp", "crisp", {"inputs": ["@root/pool"], "embeddings": "@out/embed",
                        "clusters": "@out/cluster",
                        "specialists": [{"embeddings": "@out/embed-python"}],
                        "budget": {"tokens": 20_000}}),
    ("relevance", "relevance", {"inputs": ["@root/pool"], "embeddings": "@out/embed",
                                "specialists": [{"embeddings": "@out/embed-python"}],
                                "budget": {"tokens": 15_000}, "k": 5}),
]


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("every-job")
    rows = demo_rows(300)
    (root / "pool").mkdir()
    pq.write_table(rows.slice(0, 150), root / "pool" / "a.parquet", row_group_size=70)
    pq.write_table(rows.slice(150), root / "pool" / "b.parquet", row_group_size=70)
    extra = demo_rows(40, start=400).to_pylist()
    lines = [json.dumps({**r, "id": f"j{i}"}) for i, r in enumerate(extra)]
    lines += [json.dumps({**r}) for r in rows.slice(0, DUPLICATES).to_pylist()]
    lines += ["{broken", "also not json", "{\"id\": 3"]
    lines += [json.dumps({"id": "n1", "text": None}), json.dumps({"id": "n2"}),
              json.dumps({"id": "e1", "text": " \n "}), json.dumps({"id": "s1", "text": 7}),
              "[1, 2]", '"only a string"', '{"id": "u1", "text": "a lone \\ud800 surrogate"}',
              json.dumps({"id": None, "text": "a row without its id"}),
              json.dumps({"id": "b1", "text": "words enough here", "domain": {"no": 1}})]
    raw = ("\n".join(lines) + "\n").encode() + b'{"id": "u2", "text": "bad \xff byte"}\n'
    (root / "pool" / "faults.jsonl.gz").write_bytes(gzip.compress(raw))
    texts = demo_rows(8, start=600).column("text").to_pylist()
    pq.write_table(pa.table({"id": [f"l{i}" for i in range(8)], "text": [[t] for t in texts],
                             "domain": ["lists"] * 8}), root / "pool" / "lists.parquet")
    pq.write_table(demo_rows(60, start=700), root / "pool" / "corrupt.parquet",
                   compression="snappy")
    corrupt_page(root / "pool" / "corrupt.parquet")
    python = pq.read_table(DEMO / "specialist" / "python_docs.parquet").slice(0, 40)
    pq.write_table(python, root / "python.parquet")
    return root


def _keys(keys: dict, root: Path, out: Path) -> dict:
    if keys.get("inputs") == ["@root/pool"]:  # the corrupt page is rejected, not stopped at
        keys = {**keys, "on_corrupt": "skip"}
    text = json.dumps(keys).replace("@root", str(root)).replace("@out", str(out))
    if "@lsi" in text:
        found = sorted((out / "embed" / "models").glob("lsi-*.npz"))
        model = found[0] if found else out / "embed" / "models" / "lsi-not-yet.npz"
        text = text.replace("@lsi", str(model))
    return json.loads(text)


def _run_all(root: Path, out: Path, workers: int, capsys, only=None) -> dict[str, dict]:
    manifests = {}
    for name, command, keys in JOBS:
        if only is not None and name not in only:
            continue
        config = root / f"{out.name}-{name}.yaml"
        config.write_text(json.dumps({**_keys(keys, root, out), "output": str(out / name)}))
        code = main([command, str(config), "--workers", str(workers)])
        err = capsys.readouterr().err
        assert code == 0, err
        assert "Traceback" not in err
        verify(str(out / name))
        manifests[name] = manifest(out / name)
    return manifests


def test_every_job_accounts_for_every_row_on_one_and_two_workers(root, capsys):
    out1, out2 = root / "w1", root / "w2"
    one = _run_all(root, out1, 1, capsys)
    two = _run_all(root, out2, 2, capsys)
    pool_rows = independent_rows(sorted((root / "pool").iterdir()))
    assert pool_rows == 300 + 40 + DUPLICATES + sum(PLANTED.values())  # every fault a row
    documents = pool_rows - sum(PLANTED.values())  # what the embedding cache holds
    for name, m in one.items():
        acc = m["accounting"]
        assert balanced(acc), name
        if name == "embed-python":
            assert acc["rows_in"] == 40
            continue
        if name == "cluster":
            assert acc["rows_in"] == documents and acc["rows_kept"] == documents
            continue
        assert set(m["config"]) >= {"on_corrupt"} and m["config"]["on_corrupt"] == "skip"
        assert acc["rows_in"] == pool_rows, name
        rejected = {k: v for k, v in acc["rows_rejected"].items() if k in PLANTED}
        assert rejected == PLANTED, (name, acc["rows_rejected"])
        assert m["duplicate_ids"] == {"rows": DUPLICATES, "exact": True, "policy": "keep"}, name
        by_source = m.get("mixture", {}).get("by_source")
        if by_source:
            assert by_source["faults.jsonl.gz"]["rows_in"] == 40 + DUPLICATES + JSONL_FAULTS
            assert by_source["corrupt.parquet"] == {"rows_in": 60, "rows_kept": 0,
                                                    "tokens_kept": 0}
    for name in one:
        assert shard_hashes(out1 / name) == shard_hashes(out2 / name), name
        assert two[name]["accounting"] == one[name]["accounting"], name


KERNEL_JOBS = ("embed", "embed-python", "cluster")


def test_kernels_do_not_change_what_is_embedded_or_clustered(root, capsys):
    """The LSI embedding and the tree under OpenBLAS's oldest x86 kernel, FAISS's generic code
    and NumPy's baseline SIMD, in other processes, against this process's."""
    here = _run_all(root, root / "k-here", 1, capsys, only=KERNEL_JOBS)
    out = root / "k-there"
    env = {**os.environ, "OPENBLAS_CORETYPE": "Prescott", "FAISS_OPT_LEVEL": "generic",
           "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4"}
    for name, command, keys in JOBS:
        if name not in KERNEL_JOBS:
            continue
        config = root / f"there-{name}.yaml"
        config.write_text(json.dumps({**_keys(keys, root, out), "output": str(out / name)}))
        done = subprocess.run([sys.executable, "-m", "tamis.runners.cli", command, str(config),
                               "--workers", "1"], env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    for name in KERNEL_JOBS:
        assert shard_hashes(out / name) == shard_hashes(root / "k-here" / name), name
    assert here["cluster"]["clusters"] == manifest(out / "cluster")["clusters"]


def _staged_shard(out: Path):
    staging = Path(staging_path(str(out)))
    return lambda: (staging / "data").is_dir() and any(
        p.suffix == ".parquet" and not p.name.startswith(".") for p in (staging / "data").iterdir())


def test_every_job_survives_a_kill_during_overwrite_and_reruns_to_the_same_bytes(root, capsys):
    """Each job's result, replaced with --overwrite by a run killed (-9, Beam's workers too)
    once its first shard is staged: the result is untouched; a rerun writes the same bytes."""
    out = root / "kill"
    first = _run_all(root, out, 1, capsys)
    killed = []
    for name, command, _ in JOBS:
        before = shard_hashes(out / name)
        config = root / f"{out.name}-{name}.yaml"
        proc = subprocess.Popen([sys.executable, "-m", "tamis.runners.cli", command, str(config),
                                 "--workers", "2", "--overwrite"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        ready, end = _staged_shard(out / name), time.monotonic() + 300
        while proc.poll() is None and time.monotonic() < end:
            if ready():
                os.killpg(proc.pid, signal.SIGKILL)
                killed.append(name)
                break
            time.sleep(0.005)
        proc.wait()
        verify(str(out / name))
        assert shard_hashes(out / name) == before, name
        assert main([command, str(config), "--workers", "1", "--overwrite"]) == 0
        capsys.readouterr()
        assert shard_hashes(out / name) == before, name
        assert manifest(out / name)["accounting"] == first[name]["accounting"], name
        assert not Path(staging_path(str(out / name))).exists(), name
    print(f"killed during --overwrite: {killed}")
    assert len(killed) >= len(JOBS) - 2, killed  # a few jobs may finish between two looks


@pytest.mark.parametrize("name", [n for n, _, _ in JOBS])
def test_every_job_refuses_overlapping_or_foreign_output_folders(root, name, capsys):
    command, keys = next((c, k) for n, c, k in JOBS if n == name)
    given = _keys(keys, root, root / "w1")
    inside = Path(json.dumps(given).split('"')[3])  # the first path the job reads
    checks = [(inside / "result", [], "is inside an input"),
              (root / "foreign", ["--overwrite"], "mine.txt, which tamis did not write")]
    (root / "foreign").mkdir(exist_ok=True)
    (root / "foreign" / "mine.txt").write_text("the user's")
    for output, flags, message in checks:
        config = root / f"refuse-{name}.yaml"
        config.write_text(json.dumps({**given, "output": str(output)}))
        assert main([command, str(config), "--workers", "1", *flags]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert (root / "foreign" / "mine.txt").read_text() == "the user's"
