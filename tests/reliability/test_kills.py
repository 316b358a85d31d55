"""Kill -9 at several points of a run (the job's whole process group, Beam's workers too),
then run again: the shards are byte-identical to an uninterrupted run's, and a killed
``--overwrite`` leaves the earlier result whole."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from reliability.faults import config, manifest, sample_config, shard_hashes

from tamis.storage.manifest import verify
from tamis.storage.outputs import staging_path


def _start(cfg: Path, job: str = "sample", *flags: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tamis.runners.cli", job, str(cfg),
                             "--workers", "2", *flags], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)


def _kill_when(proc: subprocess.Popen, ready: Callable[[], bool], limit: float = 300) -> bool:
    """SIGKILL the run's process group as soon as ``ready()`` holds; False if it ended first."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if ready():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError("the run neither reached its kill point nor ended")


def _finish(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()[-2000:]


def _exists(path: Path) -> Callable[[], bool]:
    return lambda: path.exists()


def _any_shard(folder: Path) -> Callable[[], bool]:
    """A finished shard: one renamed into place, not one still under its temporary name."""
    return lambda: folder.is_dir() and any(
        p.suffix == ".parquet" and not p.name.startswith(".") for p in folder.iterdir())


def _points(out: Path) -> dict[str, Callable[[], bool]]:
    """Kill points of a staged run, in the order a run reaches them."""
    staging = Path(staging_path(str(out)))
    return {
        "started": _exists(staging),
        "first shard written": _any_shard(staging / "data"),
        "manifest written, not yet swapped in": _exists(staging / "manifest.json"),
    }


@pytest.fixture
def reference(tmp_path, pool) -> dict[str, str]:
    cfg = sample_config(tmp_path, [pool], output=str(tmp_path / "reference"),
                        budget={"tokens": 20_000})
    _finish(_start(cfg))
    return shard_hashes(tmp_path / "reference")


def test_a_killed_run_leaves_nothing_and_a_rerun_writes_the_same_bytes(tmp_path, pool,
                                                                       reference):
    out = tmp_path / "out"
    cfg = sample_config(tmp_path, [pool], output=str(out), budget={"tokens": 20_000})
    survived = []
    for point, ready in _points(out).items():
        if _kill_when(_start(cfg), ready):
            survived.append(point)
            assert not out.exists(), point  # no half result where a trainer would look
        else:  # it finished before this point could be seen: the next starts afresh
            verify(str(out))
            shutil.rmtree(out)
    print(f"kill points survived (sample): {survived}")
    assert survived[:2] == ["started", "first shard written"], survived
    _finish(_start(cfg))
    assert shard_hashes(out) == reference
    verify(str(out))
    (tmp_path / "kills.json").write_text(json.dumps(survived))


def test_a_killed_overwrite_keeps_the_earlier_result(tmp_path, pool):
    out = tmp_path / "out"
    first = sample_config(tmp_path, [pool], output=str(out), budget={"rows": 50})
    _finish(_start(first))
    before = shard_hashes(out)
    (tmp_path / "sample.yaml").unlink()
    again = sample_config(tmp_path, [pool], output=str(out), budget={"rows": 120})
    killed = 0
    for point, ready in _points(out).items():
        if _kill_when(_start(again, "sample", "--overwrite"), ready):
            killed += 1
            assert shard_hashes(out) == before, point
            verify(str(out))
        else:
            break  # the overwrite went through before this point was seen
    print(f"kill points survived (sample --overwrite): {killed}")
    assert killed >= 2
    if manifest(out)["accounting"]["rows_kept"] == 50:
        _finish(_start(again, "sample", "--overwrite"))
    assert manifest(out)["accounting"]["rows_kept"] == 120
    verify(str(out))


def test_a_killed_embedding_resumes_from_its_shards(tmp_path, pool):
    """The embedding cache is written in place, shard by shard, so that a long run killed
    half-way keeps what it finished: the rerun reuses those shards."""
    keys = {"inputs": [str(pool)], "embedder": "lsi", "lsi": {"dim": 16, "fit_sample": 200},
            "window_tokens": 128}
    ref = config(tmp_path / "ref.yaml", output=str(tmp_path / "ref"), **keys)
    _finish(_start(ref, "embed"))
    out = tmp_path / "emb"
    cfg = config(tmp_path / "emb.yaml", output=str(out), **keys)
    assert _kill_when(_start(cfg, "embed"), _any_shard(out / "data"))
    assert not (out / "manifest.json").exists()
    _finish(_start(cfg, "embed"))
    verify(str(out))
    assert shard_hashes(out) == shard_hashes(tmp_path / "ref")
    assert manifest(out)["stats"]["shards_reused"] >= 1
