"""Fixtures of the reliability suite: tamis used as a new user would, on inputs real corpora
have, with bad configs, faults and kills. Every case states its expected outcome; none may
end in a traceback. Helpers are in ``faults.py``."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from reliability.faults import demo_rows

from tamis.runners.cli import main

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items) -> None:
    for item in items:  # every case here runs real jobs (the hook sees the whole session's)
        if HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def pool(tmp_path: Path) -> Path:
    """``pool/a.parquet`` and ``pool/b.parquet``, 120 rows each in row groups of 60."""
    rows = demo_rows()
    root = tmp_path / "pool"
    root.mkdir()
    pq.write_table(rows.slice(0, 120), root / "a.parquet", row_group_size=60)
    pq.write_table(rows.slice(120), root / "b.parquet", row_group_size=60)
    return root


@pytest.fixture
def cli(capsys):
    """Run ``tamis`` in this process: ``(exit code, stdout, stderr)``; never a traceback."""

    def run(*argv) -> tuple[int, str, str]:
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return code, out, err

    return run


