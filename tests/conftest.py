"""Shared fixtures: small real corpora written as Parquet into ``tmp_path``."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpora import make_rows, write_parquet

from tamis.runners.cli import main


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Three Parquet shards of 120 clean rows each, in a folder."""
    root = tmp_path / "corpus"
    for s in range(3):
        write_parquet(root / f"part-{s}.parquet", make_rows(120, start=120 * s), 50)
    return root


@pytest.fixture
def run_cli(capsys):
    """Run the ``tamis`` CLI in this process; returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run
