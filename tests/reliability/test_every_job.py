"""Every job on a corpus with planted faults: its accounting against an independent count of
the inputs and of the faults, ``tamis verify``, and the same bytes on one and two workers and
under another BLAS kernel."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from reliability.faults import DEMO, balanced, demo_rows, independent_rows, manifest, shard_hashes

from tamis.runners.cli import main
from tamis.storage.manifest import verify

#: Faults planted in ``pool/faults.jsonl.gz``: the reasons their rows are rejected for.
PLANTED = {"invalid_json": 3, "null_text": 2, "empty_text": 1, "non_string_text": 1}
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
              json.dumps({"id": "e1", "text": " \n "}), json.dumps({"id": "s1", "text": 7})]
    (root / "pool" / "faults.jsonl.gz").write_bytes(gzip.compress(
        ("\n".join(lines) + "\n").encode()))
    python = pq.read_table(DEMO / "specialist" / "python_docs.parquet").slice(0, 40)
    pq.write_table(python, root / "python.parquet")
    return root


def _keys(keys: dict, root: Path, out: Path) -> dict:
    text = json.dumps(keys).replace("@root", str(root)).replace("@out", str(out))
    if "@lsi" in text:
        model = next((out / "embed" / "models").glob("lsi-*.npz"))
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
    assert pool_rows == 300 + 40 + DUPLICATES + sum(PLANTED.values())
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
        assert acc["rows_in"] == pool_rows, name
        rejected = {k: v for k, v in acc["rows_rejected"].items() if k in PLANTED}
        assert rejected == PLANTED, (name, acc["rows_rejected"])
        assert m["duplicate_ids"] == {"rows": DUPLICATES, "exact": True, "policy": "keep"}, name
        by_source = m.get("mixture", {}).get("by_source")
        if by_source:
            assert by_source["faults.jsonl.gz"]["rows_in"] == 40 + DUPLICATES + sum(
                PLANTED.values())
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
