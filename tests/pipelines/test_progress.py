"""The progress display: counts written by workers, and a total refined as rows are split."""

from __future__ import annotations

from tamis.pipelines.progress import MADE, SEEN, ProgressWriter, eta, read_done, refined_total


def _count(folder, stage: str, n: int) -> None:
    writer = ProgressWriter(str(folder), stage)
    writer.add(n)
    writer.flush()


def test_the_total_is_extrapolated_until_every_row_is_seen_then_exact(tmp_path):
    assert refined_total(str(tmp_path), 100, 80) == (80, False)  # nothing seen: the estimate
    _count(tmp_path, SEEN, 25)
    _count(tmp_path, MADE, 60)  # 2.4 windows a row so far
    assert refined_total(str(tmp_path), 100, 80) == (240, False)
    _count(tmp_path, SEEN, 75)  # a second worker
    _count(tmp_path, MADE, 150)
    assert read_done(str(tmp_path), SEEN) == 100
    assert refined_total(str(tmp_path), 100, 80) == (210, True)
    assert refined_total(str(tmp_path), None, 80) == (80, False)  # JSONL: rows unknown


def test_an_estimated_total_is_marked():
    assert eta(50, 200, 10.0, exact=False) == "50/~200 (5.0/s, ETA ~0m30s)"
    assert eta(50, 200, 10.0) == "50/200 (5.0/s, ETA 0m30s)"
    assert eta(50, None, 10.0) == "50 (5.0/s)"
