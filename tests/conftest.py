"""Shared fixtures (small real corpora written as Parquet into ``tmp_path``, the CLI in this
process) and the markers: ``slow`` (a real Beam pipeline or model, seconds each), ``gpu``
(skipped without CUDA) and ``network`` (skipped unless ``TAMIS_NETWORK=1``: the machine may
reach nothing beyond loopback)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from corpora import make_rows, write_parquet

from tamis.runners.cli import main


def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items) -> None:
    cuda = None
    for item in items:
        if "gpu" in item.keywords:
            cuda = _cuda() if cuda is None else cuda
            if not cuda:
                item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU"))
        if "network" in item.keywords and os.environ.get("TAMIS_NETWORK") != "1":
            item.add_marker(pytest.mark.skip(reason="needs the network (TAMIS_NETWORK=1)"))


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
