"""The import layering runners → pipelines → embeddings → selectors, and the stdlib check."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("selectors", "embeddings", "pipelines", "runners")
#: What each layer may import from tamis.
ALLOWED = {
    "selectors": set(),
    "embeddings": {"selectors"},
    "pipelines": {"selectors", "embeddings"},
    "runners": {"pipelines", "selectors", "embeddings"},
}
#: Third-party packages a pure-algorithm layer must never touch.
FORBIDDEN = {"selectors": {"apache_beam", "os", "pathlib", "io", "shutil", "pyarrow.fs",
                           "pyarrow.parquet", "torch", "sentence_transformers"}}


def tamis_imports(path: Path) -> set[str]:
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
        for module in tamis_imports(path):
            parts = module.split(".")
            if parts[0] == "tamis" and len(parts) > 1 and parts[1] in LAYERS:
                assert parts[1] == layer or parts[1] in ALLOWED[layer], (
                    f"{path.relative_to(ROOT)} imports {module}: {layer} may import only "
                    f"{sorted(ALLOWED[layer]) or 'nothing'} from tamis")
            for banned in FORBIDDEN.get(layer, ()):
                assert module != banned and not module.startswith(banned + "."), (
                    f"{path.relative_to(ROOT)} imports {module}, which {layer}/ must not")


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


def test_installed_package_maps_the_four_folders():
    code = ("import tamis.selectors.sampling as s, tamis.storage.manifest as m, "
            "tamis.runners.cli as c; print(s.__name__, m.__name__, c.__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["tamis.selectors.sampling", "tamis.storage.manifest", "tamis.runners.cli"]
