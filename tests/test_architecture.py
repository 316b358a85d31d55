"""The layering runners → pipelines → embeddings → storage → selectors, a Beam-free storage
layer, a job's two files, the size of a module, and the standard library's ``selectors``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("selectors", "storage", "embeddings", "pipelines", "runners")
#: What each layer may import from tamis.
ALLOWED = {
    "selectors": set(),
    "storage": {"selectors"},
    "embeddings": {"selectors", "storage"},
    "pipelines": {"selectors", "storage", "embeddings"},
    "runners": {"pipelines", "selectors", "storage", "embeddings"},
}
#: Third-party and standard modules a layer must never touch.
FORBIDDEN = {
    "selectors": {"apache_beam", "os", "pathlib", "io", "shutil", "pyarrow.fs",
                  "pyarrow.parquet", "torch", "sentence_transformers"},
    "storage": {"apache_beam", "torch", "sentence_transformers", "fasttext", "faiss"},
}
MAX_LINES = 400


def imports(path: Path) -> set[str]:
    """Every module ``path`` imports (absolute names)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def sources(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", LAYERS)
def test_layer_imports_only_what_it_may(layer):
    assert (ROOT / layer).is_dir(), f"missing source folder {layer}/"
    for path in sources(layer):
        for module in imports(path):
            parts = module.split(".")
            if parts[0] == "tamis" and len(parts) > 1 and parts[1] in LAYERS:
                assert parts[1] == layer or parts[1] in ALLOWED[layer], (
                    f"{path.relative_to(ROOT)} imports {module}: {layer} may import only "
                    f"{sorted(ALLOWED[layer]) or 'nothing'} from tamis")
            for banned in FORBIDDEN.get(layer, ()):
                assert module != banned and not module.startswith(banned + "."), (
                    f"{path.relative_to(ROOT)} imports {module}, which {layer}/ must not")


def test_storage_and_verify_run_without_beam(tmp_path):
    """A trainer, ``tamis verify`` and later ``report`` and ``mix`` need no Beam."""
    import pyarrow as pa

    from tamis.storage import manifest as mf
    from tamis.storage.shards import write_table

    schema = pa.schema([("id", pa.string()), ("n_tokens", pa.int64())])
    entry = write_table(str(tmp_path), "data/part-0.parquet",
                        pa.table({"id": ["a"], "n_tokens": [2]}), schema)
    mf.write_manifest(str(tmp_path), {
        "schema_version": mf.SCHEMA_VERSION,
        "outputs": {"shards": [entry], "rejects": [], "rows": 1, "tokens": 2},
        "accounting": {"rows_in": 1, "rows_kept": 1, "rows_dropped": {}, "rows_rejected": {}}})
    modules = sorted(f"tamis.storage.{p.stem}" for p in sources("storage"))
    code = ("import sys; sys.modules['apache_beam'] = None\n"
            f"import {', '.join(modules)}\n"
            "from tamis.runners.cli import main\n"
            f"sys.exit(main(['verify', {str(tmp_path)!r}]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "OK: 1 shards" in out.stdout


def test_every_job_is_its_two_files_and_one_registry_line():
    from tamis.runners.jobs import JOBS

    for job in JOBS:
        assert (ROOT / "runners" / "jobs" / f"{job.name}.py").is_file(), job.name
        assert (ROOT / "pipelines" / f"{job.name}.py").is_file(), job.name
        assert job.stages.__module__ == f"tamis.pipelines.{job.name}"
        assert job.plan.__module__ == f"tamis.runners.jobs.{job.name}"
        assert (ROOT / "examples" / f"{job.name}.yaml").is_file() or (
            ROOT / "examples" / job.name).is_dir(), f"no example config for {job.name}"


def test_no_module_is_longer_than_the_style_allows():
    long = []
    for folder in (*LAYERS, "benchmarks", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            n = len(path.read_text().splitlines())
            if n > MAX_LINES:
                long.append(f"{path.relative_to(ROOT)}: {n} lines")
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_source_folders_are_not_regular_packages():
    for layer in LAYERS:
        assert not (ROOT / layer / "__init__.py").exists(), (
            f"{layer}/__init__.py would shadow a module of the same name from the repo root")


def test_standard_library_selectors_wins_from_repo_root():
    code = ("import subprocess, selectors, asyncio; print(selectors.__file__); "
            "print(subprocess.run(['true']).returncode)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    assert Path(out[0]).parent != ROOT / "selectors"
    assert not out[0].startswith(str(ROOT)), out[0]
    assert out[1] == "0"


def test_installed_package_maps_the_five_folders():
    import tamis.embeddings.extras as e
    import tamis.pipelines.tail as p
    import tamis.runners.jobs.sample as j
    import tamis.selectors.sampling as s
    import tamis.storage.manifest as m

    for module in (s, m, e, p, j):  # installed as tamis.<folder>, from the folder of that name
        *_, folder, name = module.__name__.split(".")
        assert Path(module.__file__).parts[-2:] == (folder, f"{name}.py")
    assert j.__name__ == "tamis.runners.jobs.sample"
