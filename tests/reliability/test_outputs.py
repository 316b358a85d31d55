"""Output folders: a rerun never destroys a good result, tamis deletes only what it wrote, an
output never overlaps what a job reads, and a dry run leaves nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from reliability.faults import manifest, sample_config, shard_hashes

from tamis.storage.manifest import verify
from tamis.storage.outputs import staging_path


def _first(tmp_path, cli, pool) -> tuple[Path, dict]:
    cfg = sample_config(tmp_path, [pool])
    assert cli("sample", cfg, "--workers", "1")[0] == 0
    return cfg, shard_hashes(tmp_path / "out")


def _leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if ".tamis-" in p.name)


def test_a_rerun_without_overwrite_is_refused_and_changes_nothing(tmp_path, cli, pool):
    cfg, before = _first(tmp_path, cli, pool)
    code, _, err = cli("sample", cfg, "--workers", "1")
    assert code == 2 and "is not empty" in err and "--overwrite" in err
    assert shard_hashes(tmp_path / "out") == before


def test_overwrite_replaces_the_result_and_leaves_no_staging(tmp_path, cli, pool):
    cfg, _ = _first(tmp_path, cli, pool)
    (tmp_path / "sample.yaml").unlink()
    cfg = sample_config(tmp_path, [pool], budget={"rows": 30})
    assert cli("sample", cfg, "--overwrite", "--workers", "1")[0] == 0
    assert manifest(tmp_path / "out")["accounting"]["rows_kept"] == 30
    verify(str(tmp_path / "out"))
    assert _leftovers(tmp_path) == []


def test_an_overwrite_that_fails_on_its_data_keeps_the_earlier_result(tmp_path, cli, pool):
    import pyarrow.parquet as pq

    cfg, before = _first(tmp_path, cli, pool)
    pq.write_table(pq.read_table(pool / "a.parquet").slice(0, 3), pool / "copies.parquet")
    (tmp_path / "sample.yaml").unlink()
    cfg = sample_config(tmp_path, [pool], on_duplicate_id="stop")
    code, _, err = cli("sample", cfg, "--overwrite", "--workers", "1")
    assert code == 1 and "repeat an id" in err
    assert shard_hashes(tmp_path / "out") == before
    verify(str(tmp_path / "out"))
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("stranger", ["data/notes.txt", "models/mine.bin", "keep.txt",
                                      "data/part-99999-of-99999.parquet"])
def test_overwrite_refuses_a_folder_holding_files_tamis_did_not_write(tmp_path, cli, pool,
                                                                       stranger):
    cfg, before = _first(tmp_path, cli, pool)
    path = tmp_path / "out" / stranger
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("the user's")
    code, _, err = cli("sample", cfg, "--overwrite", "--workers", "1")
    assert code == 2 and stranger in err and "tamis did not write" in err
    assert path.read_text() == "the user's" and shard_hashes(tmp_path / "out") == before


def test_overwrite_refuses_a_manifest_tamis_did_not_write(tmp_path, cli, pool):
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.json").write_text(json.dumps({"name": "someone else's"}))
    code, _, err = cli("sample", sample_config(tmp_path, [pool]), "--overwrite")
    assert code == 2 and "manifest.json" in err
    assert json.loads((out / "manifest.json").read_text()) == {"name": "someone else's"}


def test_a_stale_staging_folder_of_a_killed_run_is_cleared(tmp_path, cli, pool):
    stale = Path(staging_path(str(tmp_path / "out")))
    (stale / "data").mkdir(parents=True)
    (stale / "data" / "part-00000-of-00001.parquet").write_bytes(b"half")
    cfg = sample_config(tmp_path, [pool])
    assert cli("sample", cfg, "--workers", "1")[0] == 0
    verify(str(tmp_path / "out"))
    assert not stale.exists()


def test_an_earlier_result_moved_aside_by_a_killed_swap_comes_back(tmp_path, cli, pool):
    cfg, before = _first(tmp_path, cli, pool)
    aside = tmp_path / ".out.tamis-old-0123456789ab"
    (tmp_path / "out").rename(aside)  # the swap was killed between its two moves
    code, _, err = cli("sample", cfg, "--workers", "1")  # finds its result back, not empty
    assert code == 2 and "is not empty" in err
    assert shard_hashes(tmp_path / "out") == before and not aside.exists()


@pytest.mark.parametrize("where", ["inside", "equal", "around", "glob"])
def test_an_output_overlapping_an_input_is_refused(tmp_path, cli, pool, where):
    inputs, output = {
        "inside": ([pool], pool / "out"),
        "equal": ([pool], pool),
        "around": ([pool / "a.parquet"], tmp_path / "pool"),
        "glob": ([str(tmp_path / "**" / "*.parquet")], tmp_path / "res"),
    }[where]
    code, _, err = cli("sample", sample_config(tmp_path, inputs, output=output))
    assert code == 2 and "output folder" in err and "input" in err
    assert len(err.strip().splitlines()) == 1


def test_an_output_that_is_a_file_is_refused(tmp_path, cli, pool):
    (tmp_path / "out").write_text("x")
    code, _, err = cli("sample", sample_config(tmp_path, [pool]))
    assert code == 2 and "exists and is not a folder" in err


def test_a_dry_run_leaves_no_temporary_folder_and_warns_of_a_full_output(tmp_path, cli, pool,
                                                                       monkeypatch):
    cfg, _ = _first(tmp_path, cli, pool)
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR read again
    code, out, _ = cli("sample", cfg, "--dry-run")
    assert code == 0 and os.listdir(tmp) == []
    assert "NOT EMPTY" in out and "warning: output folder" in out


def _run(cfg: Path, *flags: str, tmpdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tamis.runners.cli", "sample", str(cfg),
                           "--workers", "2", *flags], capture_output=True, text=True,
                          env={**os.environ, "TMPDIR": str(tmpdir)}, timeout=300)


def test_beam_stays_quiet_unless_asked_and_temporary_folders_go(tmp_path, pool):
    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    cfg = sample_config(tmp_path, [pool])
    quiet = _run(cfg, tmpdir=tmp)
    assert quiet.returncode == 0, quiet.stderr
    noisy = [line for line in quiet.stderr.splitlines()
             if line.startswith(("INFO:", "WARNING:", "DEBUG:"))]
    assert noisy == [] and "done in" in quiet.stderr
    assert os.listdir(tmp) == []  # Beam's and tamis's temporary folders are gone
    loud = _run(cfg, "--overwrite", "-v", tmpdir=tmp)
    assert loud.returncode == 0 and "apache_beam" in loud.stderr


def test_a_failed_run_leaves_no_temporary_folder(tmp_path, pool):
    import pyarrow.parquet as pq

    tmp = tmp_path / "tmpdir"
    tmp.mkdir()
    pq.write_table(pq.read_table(pool / "a.parquet").slice(0, 3), pool / "copies.parquet")
    failed = _run(sample_config(tmp_path, [pool], on_duplicate_id="stop"), tmpdir=tmp)
    assert failed.returncode == 1 and "repeat an id" in failed.stderr
    assert "Traceback" not in failed.stderr
    assert os.listdir(tmp) == [] and _leftovers(tmp_path) == []
