"""The rephrase job against raw ``transformers`` generation, same prompts, same run.

    python benchmarks/rephrase_cpu.py [--docs 4] [--max-new-tokens 48]

First ``tamis rephrase`` runs on a few documents of the demo's Python docs with the bundled
SmolLM2-135M-Instruct (the whole job: read, chunk, generate, journal, post-process, write);
then the same (chunk, style) prompts, read back from its outputs, are generated with the raw
library (``AutoModelForCausalLM.generate``, one prompt at a time under the same seeds, as the
backend does). Prints output tokens/s of both and their ratio, and worker-days per billion
output tokens at the job's rate.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--styles", default="easy,medium,hard,qa")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import torch

    from tamis.embeddings.rephrasers import request_seed
    from tamis.embeddings.smollm2 import model_folder
    from tamis.embeddings.windows import load_tokenizer
    from tamis.runners.cli import main as tamis
    from tamis.selectors.rephrase import wrap_styles

    folder = model_folder()
    styles = {s.name: s for s in wrap_styles(args.styles.split(","))}
    with tempfile.TemporaryDirectory() as tmp:
        docs = pq.read_table(ROOT / "examples/demo/specialist/python_docs.parquet")
        pq.write_table(docs.select(["id", "text"]).slice(0, args.docs), f"{tmp}/in.parquet")
        config = {"inputs": [f"{tmp}/in.parquet"], "output": f"{tmp}/out",
                  "styles": list(styles), "chunk": {"target_tokens": 120},
                  "sampling": {"max_new_tokens": args.max_new_tokens}}
        Path(f"{tmp}/c.yaml").write_text(json.dumps(config))
        start = time.perf_counter()
        assert tamis(["rephrase", f"{tmp}/c.yaml", "--workers", "1"]) == 0
        job_s = time.perf_counter() - start
        manifest = json.loads(Path(f"{tmp}/out/manifest.json").read_text())
        rows = pa.concat_tables(
            [pq.read_table(p, columns=["id", "chunk_id", "style", "n_tokens"])
             for sub in ("data", "rejects") for p in sorted(Path(f"{tmp}/out/{sub}").glob(
                 "*.parquet")) if "part-" not in p.name]).to_pylist()
        chunks = {r["id"]: r["text"] for p in sorted(Path(f"{tmp}/out/real").glob("*.parquet"))
                  for r in pq.read_table(p).to_pylist()}
    job_tokens = sum(r["n_tokens"] for r in rows)
    busy = manifest["throughput"]["busy_s"]

    tok = load_tokenizer(folder)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    raw_tokens, start = 0, time.perf_counter()
    for r in rows:
        prompt = tok.apply_chat_template(styles[r["style"]].messages(chunks[r["chunk_id"]]),
                                         tokenize=False, add_generation_prompt=True)
        ids = tok(prompt, return_tensors="pt", add_special_tokens=False)
        torch.manual_seed(request_seed(0, r["id"]))
        with torch.no_grad():
            made = model.generate(**ids, max_new_tokens=args.max_new_tokens, do_sample=True,
                                  temperature=0.8, top_p=0.95,
                                  pad_token_id=tok.pad_token_id or tok.eos_token_id)
        raw_tokens += made.shape[1] - ids["input_ids"].shape[1]
    raw_s = time.perf_counter() - start

    print(f"device: cpu, {torch.get_num_threads()} torch threads; model SmolLM2-135M-Instruct "
          f"(float32); {len(rows)} requests ({len(chunks)} chunks x {len(styles)} styles), "
          f"max_new_tokens {args.max_new_tokens}")
    print(f"raw transformers generate: {raw_tokens} output tokens in {raw_s:.1f} s = "
          f"{raw_tokens / raw_s:.1f} tokens/s")
    print(f"tamis rephrase (whole job): {job_tokens} output tokens in {job_s:.1f} s wall = "
          f"{job_tokens / job_s:.1f} tokens/s; generating {busy:.1f} s = "
          f"{job_tokens / busy:.1f} tokens/s")
    print(f"ratio tamis/raw: {job_tokens / job_s / (raw_tokens / raw_s):.2f} (whole job), "
          f"{job_tokens / busy / (raw_tokens / raw_s):.2f} (generation)")
    print(f"worker-days per billion output tokens at the job's rate: "
          f"{1e9 / (job_tokens / job_s) / 86400:,.0f}")


if __name__ == "__main__":
    main()
