"""``tamis embed``: documents → token windows → vectors, in a cache later jobs and reruns
reuse."""

from __future__ import annotations

from dataclasses import dataclass

from tamis.embeddings.extras import require
from tamis.embeddings.lsi import LsiModel
from tamis.embeddings.sentence import model_info
from tamis.pipelines import embed as stages
from tamis.runners.config import key
from tamis.runners.jobs.base import Context, Estimates, Job, Plan, duration, header
from tamis.runners.sections import Common, Corpus, EmbedSection
from tamis.storage.errors import ConfigError, ModelError
from tamis.storage.files import absolute, exists

#: Documents per second, for dry-run estimates when the config gives none: per CPU core on CPU
#: (measured on the demo corpus with benchmarks/embed.py and embed_memory.py, 256-token
#: windows; see BENCHMARKS.md), per GPU on CUDA (not measured: a conservative guess).
DEFAULT_DOCS_PER_SECOND = {("lsi", "cpu"): 1300.0, ("sentence-transformers", "cpu"): 13.5,
                           ("sentence-transformers", "cuda"): 2000.0}


@dataclass(frozen=True, kw_only=True)
class EmbedConfig(EmbedSection, Common, Corpus):
    """``tamis embed``: documents → token windows → vectors, in a reusable cache."""

    docs_per_second: float | None = key(None, "documents per second for the whole job, for "
                                              "the dry run's time estimate; none: a measured "
                                              "default")

    def check(self) -> None:
        if self.docs_per_second is not None and self.docs_per_second <= 0:
            raise ConfigError(f"'docs_per_second' must be > 0, got {self.docs_per_second}")


def plan(config: EmbedConfig, context: Context) -> Plan[stages.EmbedSpec]:
    require("sentence_transformers" if config.embedder == "sentence-transformers" else "sklearn")
    inputs = config.read_plan()
    m = config.model
    warnings = list(inputs.warnings)
    if config.embedder == "sentence-transformers":
        info = model_info(m.name, m.trust_remote_code, m.max_seq_length)
        path, content, dim, seq = info.path, info.content_hash, info.dim, info.max_seq_length
        if config.window_tokens > seq:
            warnings.append(f"window_tokens {config.window_tokens} > the model's max_seq_length "
                            f"{seq}: the model reads only the first {seq} tokens of each window")
    else:
        path, content, dim, seq = None, None, config.lsi.dim, None
    cpu = m.device == "cpu" or config.embedder == "lsi"
    threads = m.threads or (max(1, context.cores // max(1, context.workers)) if cpu else 0)
    opening = header("embed", config, warnings)
    lsi = config.lsi
    spec = stages.EmbedSpec(
        inputs=inputs, out_dir=context.out_dir(config), header=opening, embedder=config.embedder,
        model_name=m.name if config.embedder == "sentence-transformers" else "lsi",
        model_path=path, model_hash=content, dim=dim, max_seq_length=seq,
        window_tokens=config.window_tokens, mode=config.mode, normalize=m.normalize,
        device=m.device, precision=m.precision, batch_size=m.batch_size, threads=threads,
        max_doc_chars=config.max_doc_chars, seed=config.seed,
        trust_remote_code=m.trust_remote_code,
        lsi=LsiModel(lsi.dim, lsi.max_features, lsi.min_df, config.seed),
        lsi_fit_sample=lsi.fit_sample, lsi_model=_lsi_model(config),
        lsi_fit_also=(config.read_plan(lsi.fit_also) if lsi.fit_also and config.embedder == "lsi"
                      and not lsi.model else None),
        progress_dir=context.progress_dir)
    device = "cpu" if cpu else "cuda"
    if config.docs_per_second:
        rate = config.docs_per_second
    else:
        rate = DEFAULT_DOCS_PER_SECOND[(config.embedder, device)]
        rate *= context.cores if cpu and context.runner == "local" else 1
    rows = inputs.rows
    seconds = None if rows is None else rows / rate
    source = "config" if config.docs_per_second else "default"
    tokens = inputs.estimated_tokens()
    windows = max(rows or 0, round(tokens / config.window_tokens))
    vectors = rows if config.mode == "document" else windows
    estimates = Estimates(
        input_rows=rows, input_bytes=inputs.bytes, input_tokens=tokens, output_rows=vectors,
        output_tokens=tokens, output_bytes=(vectors or 0) * (4 * dim + 64),
        num_shards=len(inputs.units), docs_per_second=rate, seconds=seconds,
        progress_total=windows, progress_rows=rows)  # windows: refined as rows are split
    model_line = (f"model: {m.name} ({dim}-d, max_seq_length {seq}, {device}, "
                  f"{spec.effective_precision()}, {content[:19]}...)"
                  if config.embedder == "sentence-transformers"
                  else f"model: LSI ({lsi.dim}-d, fitted on {lsi.fit_sample:,} docs"
                       f"{' and as many of ' + ', '.join(lsi.fit_also) if lsi.fit_also else ''})")
    summary = (model_line,
               f"windows: {config.window_tokens} tokens, mode {config.mode}, batch {m.batch_size}"
               f", {threads or 'default'} torch thread(s) per worker",
               f"estimated wall time: {duration(seconds)} at {rate:,.1f} docs/s ({source} rate"
               f"{'' if config.docs_per_second else '; set docs_per_second to calibrate'})")
    return Plan(spec, opening, estimates, inputs, summary)


def _lsi_model(config: EmbedConfig) -> str | None:
    path = config.lsi.model
    if path is None or config.embedder != "lsi":
        return None
    if not exists(path) or not path.replace("\\", "/").rsplit("/", 1)[-1].startswith("lsi-"):
        raise ModelError(f"lsi.model {path} is not an LSI model that tamis embed fitted "
                         f"(models/lsi-<sha256>.npz in an embedding cache)")
    return absolute(path)


JOB = Job(
    name="embed", summary="embed documents (token windows) into a reusable vector cache",
    config=EmbedConfig, plan=plan, stages=stages.build, reuses_output=True,
    progress=(stages.PROGRESS_STAGE, "embedded windows"),
    # torch spreads one model call over every core; worker processes would only split the
    # cores, and each row group is one worker's work
    local_workers=1)
