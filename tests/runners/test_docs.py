"""The docs follow the code: every job has a page whose key table is the one its
configuration class declares, the README lists every job, and every page it links exists."""

from __future__ import annotations

import re
from pathlib import Path

from tamis.runners.docs import rows, stale
from tamis.runners.jobs import JOBS
from tamis.runners.jobs.crisp import CrispConfig

ROOT = Path(__file__).resolve().parents[2]


def test_every_job_page_shows_the_defaults_the_code_declares():
    assert stale(ROOT) == [], "run: python -m tamis.runners.docs --write"


def test_the_table_reaches_into_sections_and_lists():
    keys = {name: default for name, default, _ in rows(CrispConfig)}
    assert keys["tree.branching"] == "64" and keys["embed.model.batch_size"] == "64"
    assert keys["specialists[].weight"] == "1.0" and keys["budget"] == "section"
    assert keys["inputs"] == "required" and keys["sampler"] == "`without_replacement`"


def test_the_readme_lists_every_job_and_links_pages_that_exist():
    readme = (ROOT / "README.md").read_text()
    for job in JOBS:
        assert f"| `{job.name}` |" in readme, job.name
    for link in re.findall(r"\]\(([^)#]+)\)", readme):
        assert (ROOT / link).exists(), link
