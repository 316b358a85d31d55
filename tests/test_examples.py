"""Every example config loads and dry-runs, from a folder like the repository root.

The examples that read caches (``examples/crisp/*``, relevance, quality on embeddings, select)
find them where the cache examples write them: those are made first, for real, with LSI
instead of MiniLM so that this takes seconds (``--set`` overrides, as a user would)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tamis.runners.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p.relative_to(ROOT) for p in (ROOT / "examples").rglob("*.yaml"))
COMMAND = re.compile(r"^# tamis (\w+)")
LSI = ["--set", "embedder=lsi", "--set", "lsi.dim=32"]


def command_of(example: Path) -> str:
    found = COMMAND.match((ROOT / example).read_text())
    assert found, f"{example}: its first line must say '# tamis <command>: ...'"
    return found.group(1)


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    """A folder with the examples and the caches they read."""
    root = tmp_path_factory.mktemp("examples")
    (root / "examples").symlink_to(ROOT / "examples")
    here = os.getcwd()
    os.chdir(root)  # the examples' paths are relative to the repository root
    try:
        assert main(["embed", "examples/crisp/embed-pool.yaml", *LSI, "--set",
                     "lsi.fit_sample=2000", "--workers", "1"]) == 0
        model = next(Path("out/crisp-demo/pool-emb/models").glob("lsi-*.npz"))
        assert main(["embed", "examples/crisp/embed-specialist.yaml", *LSI, "--set",
                     f"lsi.model={model}", "--workers", "1"]) == 0
        assert main(["cluster", "examples/cluster.yaml", "--set", "branching=8", "--workers",
                     "1"]) == 0
    finally:
        os.chdir(here)
    return root


def test_every_job_has_an_example_and_every_example_names_its_command():
    from tamis.runners.jobs import JOBS

    commands = {command_of(e) for e in EXAMPLES}
    assert {job.name for job in JOBS} <= commands
    assert commands <= {job.name for job in JOBS} | {"select"}


@pytest.mark.parametrize("example", EXAMPLES, ids=str)
def test_the_example_dry_runs(example, repository, monkeypatch, capsys):
    monkeypatch.chdir(repository)
    before = sorted(str(p) for p in (repository / "out").rglob("*"))
    code = main([command_of(example), str(example), "--dry-run"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "dry run" in out and "stages:" in out
    assert sorted(str(p) for p in (repository / "out").rglob("*")) == before
    if command_of(example) == "select":  # the job of the method does the dry run
        from tamis.runners.jobs import METHODS

        method = re.search(r"^method: (\w+)", (ROOT / example).read_text(), re.M).group(1)
        assert f"tamis {METHODS[method][0].name}: dry run" in out
