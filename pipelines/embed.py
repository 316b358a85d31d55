"""The ``embed`` job: documents → token windows → vectors, written as a reusable cache.

Read ─► Window (tokenize, check cache) ─► Embed (RunInference / LSI) ─► Write shards
                     └──── cached shard? ──► Describe reused ─────────────────┘
(LSI) Read ─► Sample ─► Fit ─► model path (side input of Embed)

One cache shard per read batch of an input file (at most 8,192 documents), named from the
file's checksum, the batch's first row and the embedding settings: a rerun finds the shards it
already has and embeds only what is missing. A read batch travels as one model example, so
nothing waits in a shuffle: memory holds a few batches, whatever the corpus size.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from tamis.embeddings.lsi import LsiHandler, LsiModel
from tamis.embeddings.windows import TokenWindower
from tamis.pipelines.progress import MADE, SEEN, ProgressWriter
from tamis.pipelines.read import NAMESPACE, ChecksumInputs, ReadRecords
from tamis.pipelines.write import WriteManifest, WriteRejects, manifest_base
from tamis.selectors.sampling import row_keys
from tamis.storage import manifest as mf
from tamis.storage.cache import (
    cache_shard_name,
    cached_ids,
    describe_shard,
    embed_schema,
    exists,
    remove_stale,
    write_cache_shard,
)
from tamis.storage.errors import DataError
from tamis.storage.files import join, write_atomically
from tamis.storage.inputs import InputPlan
from tamis.storage.records import REJECTS_SCHEMA, ROW, SRC

MODELS = mf.MODELS
PROGRESS_STAGE = "embed"


@dataclass(frozen=True, kw_only=True)
class EmbedSpec:
    inputs: InputPlan
    out_dir: str
    header: mf.Header
    embedder: str  # "sentence-transformers" | "lsi"
    model_name: str
    model_path: str | None  # sentence-transformers: the local model folder
    model_hash: str | None
    dim: int  # sentence-transformers: the model's; LSI: the configured maximum
    max_seq_length: int | None
    window_tokens: int
    mode: str  # windows | document
    normalize: bool
    device: str
    precision: str
    batch_size: int
    threads: int  # torch threads per worker; 0: torch's default
    max_doc_chars: int
    seed: int
    trust_remote_code: bool
    lsi: LsiModel  # unfitted: its settings
    lsi_fit_sample: int  # documents the LSI model is fitted on, chosen by (seed, id)
    lsi_model: str | None  # a fitted LSI model to reuse
    lsi_fit_also: InputPlan | None  # more text the LSI model is fitted on (up to fit_sample)
    progress_dir: str | None  # where workers count progress for the launcher; None: nowhere

    def settings(self) -> dict:
        """Everything that changes a vector; the cache key of a shard includes its hash."""
        keys = ("embedder", "model_hash", "max_seq_length", "window_tokens", "mode",
                "normalize", "seed")
        out = {k: getattr(self, k) for k in keys}
        out["precision"] = self.effective_precision()
        if self.embedder == "lsi":
            out.update(dim=self.lsi.dim, max_features=self.lsi.max_features,
                       min_df=self.lsi.min_df, fit_sample=self.lsi_fit_sample)
            if self.lsi_fit_also is not None:
                out["fit_also"] = sorted(f.rel for f in self.lsi_fit_also.files)
        return out

    def effective_precision(self) -> str:
        if self.embedder == "lsi" or self.device == "cpu":
            return "fp32"
        return "fp16" if self.precision in ("auto", "fp16") else "fp32"

    def settings_hash(self) -> str:
        text = json.dumps(self.settings(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


class _Window(beam.DoFn):
    """A table of documents → ``((shard, source, first row, meta), texts)``, all its windows
    as one model example, or a note that the shard exists. ``meta`` is an Arrow table (id,
    row, window, token span, n_tokens) in the order of ``texts``, which is longest first."""

    def __init__(self, plan: InputPlan, spec: EmbedSpec) -> None:
        self._plan, self._spec = plan, spec

    def setup(self) -> None:
        spec = self._spec
        path = spec.model_path if spec.embedder == "sentence-transformers" else None
        self._windower = TokenWindower(path, spec.window_tokens).load()
        self._reused = Metrics.counter(NAMESPACE, "docs_reused")
        self._windows = Metrics.counter(NAMESPACE, "windows_made")
        # What the progress display refines its total from: rows seen, windows to embed.
        self._seen = ProgressWriter(spec.progress_dir, SEEN)
        self._made = ProgressWriter(spec.progress_dir, MADE)

    def finish_bundle(self):
        self._seen.flush()
        self._made.flush()

    def process(self, table: pa.Table, checksums: dict, model_key: str):
        spec, plan = self._spec, self._plan
        src = int(table.column(SRC)[0].as_py())
        first = int(pc.min(table.column(ROW)).as_py())
        shard = cache_shard_name(plan.files[src].rel, checksums[src], first, model_key)
        texts = table.column(plan.text_column).to_pylist()
        too_long = np.array([len(t) > spec.max_doc_chars for t in texts], dtype=bool)
        path = join(spec.out_dir, mf.DATA, shard)
        self._seen.add(table.num_rows)
        if exists(path):
            # Documents the cached shard lacks had no token when it was made.
            cached = cached_ids(path)
            ids = table.column("id").to_pylist()
            empty = np.array([i not in cached for i in ids], dtype=bool) & ~too_long
            if too_long.any() or empty.any():
                yield beam.pvalue.TaggedOutput("rejects", (src, _rejects(
                    plan, table, too_long, empty, spec.max_doc_chars)))
            self._reused.inc(int((~too_long & ~empty).sum()))
            yield beam.pvalue.TaggedOutput("reused", (shard, plan.files[src].rel, first))
            return
        windows = self._windower.split(
            [t if not long else "" for t, long in zip(texts, too_long, strict=True)])
        empty = np.array([not w and not long for w, long in zip(windows, too_long, strict=True)],
                         dtype=bool)
        if too_long.any() or empty.any():
            yield beam.pvalue.TaggedOutput("rejects", (src, _rejects(
                plan, table, too_long, empty, spec.max_doc_chars)))
        ids = table.column("id").to_pylist()
        rows = table.column(ROW).to_pylist()
        flat = [(ids[i], rows[i], w, s, e, texts[i][a:b])
                for i, doc in enumerate(windows) if not too_long[i]
                for w, (s, e, a, b) in enumerate(doc)]
        self._windows.inc(len(flat))
        self._made.add(len(flat))
        if not flat:  # every document of the batch was rejected: no shard to write
            return
        flat.sort(key=lambda x: -len(x[5]))  # similar lengths side by side: less padding
        meta = pa.table({
            "id": [c[0] for c in flat], ROW: pa.array([c[1] for c in flat], pa.int64()),
            "window": pa.array([c[2] for c in flat], pa.int32()),
            "token_start": pa.array([c[3] for c in flat], pa.int32()),
            "token_end": pa.array([c[4] for c in flat], pa.int32()),
            "n_tokens": pa.array([c[4] - c[3] for c in flat], pa.int64()),
        })
        yield (shard, plan.files[src].rel, first, meta), [c[5] for c in flat]


def _rejects(plan: InputPlan, table: pa.Table, too_long, empty, limit: int) -> pa.Table:
    out = []
    rel = plan.files[int(table.column(SRC)[0].as_py())].rel
    for i in np.flatnonzero(too_long | empty):
        row = table.slice(int(i), 1).to_pylist()[0]
        reason = "too_long" if too_long[i] else "no_tokens"
        record = {k: v for k, v in row.items() if not k.startswith("__")}
        if too_long[i]:
            record[plan.text_column] = record[plan.text_column][:1000] + (
                f"... [{len(row[plan.text_column]):,} characters, over max_doc_chars {limit:,}]")
        out.append({"source": rel, "row": row[ROW], "id": row["id"], "field": plan.text_column,
                    "reason": reason, "record": json.dumps(record, ensure_ascii=False,
                                                           default=str)})
    return pa.Table.from_pylist(out, schema=REJECTS_SCHEMA)


class _EmbedLsi(beam.DoFn):
    """LSI vectors for a table's windows, through :class:`LsiHandler`. The model is fitted in
    the same pipeline and arrives as a path (a side input): it is loaded on the first batch,
    once per worker, rather than in ``setup``."""

    def __init__(self, batch_size: int, progress_dir: str | None) -> None:
        self._batch, self._progress_dir = batch_size, progress_dir

    def setup(self) -> None:
        self._handler, self._model = None, None
        self._progress = ProgressWriter(self._progress_dir, PROGRESS_STAGE)

    def process(self, item, model_path: str):
        if self._handler is None or model_path != self._handler.path:
            self._handler = LsiHandler(model_path)
            self._model = self._handler.load_model()
        key, texts = item
        vectors = np.concatenate(self._handler.run_inference(
            [texts[i:i + self._batch] for i in range(0, len(texts), self._batch)],
            self._model))
        self._progress.add(len(texts))
        yield key, vectors

    def finish_bundle(self):
        self._progress.flush()


class _WriteShard(beam.DoFn):
    """``((shard, meta), vectors)`` → the shard written, and its manifest entry."""

    def __init__(self, spec: EmbedSpec) -> None:
        self._spec = spec

    def setup(self) -> None:
        self._docs = Metrics.counter(NAMESPACE, "docs_embedded")

    def process(self, item):
        (shard, rel, first, meta), vectors = item
        vectors = np.asarray(vectors, dtype=np.float32)
        self._docs.inc(int(pc.sum(pc.equal(meta.column("window"), 0)).as_py() or 0))
        flat = pa.array(vectors.reshape(-1), pa.float32())
        table = meta.append_column("embedding",
                                   pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1]))
        yield {**write_cache_shard(self._spec.out_dir, shard, table, self._spec.mode,
                                   self._spec.normalize), "source": rel, "first_row": first}


def _describe_reused(item: tuple[str, str, int], spec: EmbedSpec) -> dict:
    shard, rel, first = item
    return {**describe_shard(spec.out_dir, shard), "reused": True, "source": rel,
            "first_row": first}


def _fit_lsi(sample: list, spec: EmbedSpec) -> str:
    """Fit LSI on the sampled texts; save it under ``models/`` named by its content hash
    (an identical refit reuses the file, and the shards keyed by it)."""
    texts = [t for _, t in sorted(sample)]
    try:
        model = copy.deepcopy(spec.lsi).fit(texts)
    except ValueError as exc:
        raise DataError(f"cannot fit the LSI model: {exc}") from None
    digest = hashlib.sha256()
    for array in (model.vocabulary_, model.idf_, model.components_):
        digest.update(np.ascontiguousarray(array).tobytes())
    path = join(spec.out_dir, MODELS, f"lsi-{digest.hexdigest()}.npz")
    if not exists(path):
        buffer = io.BytesIO()  # zip files need a seekable target
        model.save(buffer)
        write_atomically(path, lambda f: f.write(buffer.getvalue()))
    return path


def _concat_lists(lists) -> list:
    return [item for part in lists for item in part]


def _lsi_sample(table: pa.Table, spec: EmbedSpec, text_column: str):
    keys = row_keys(table.column("id").to_pylist(), spec.seed)
    texts = table.column(text_column).to_pylist()
    for k, t in zip(keys.tolist(), texts, strict=True):
        if len(t) <= spec.max_doc_chars:
            yield k, t[: 20 * spec.window_tokens]


def build(pipeline: beam.Pipeline, spec: EmbedSpec) -> None:
    """Add the whole ``embed`` job to ``pipeline``."""
    plan = spec.inputs
    read = pipeline | "ReadRecords" >> ReadRecords(plan, census=True)
    checksums = pipeline | "ChecksumInputs" >> ChecksumInputs(plan)
    if spec.embedder == "lsi" and spec.lsi_model:
        model_ref = pipeline | "LsiModel" >> beam.Create([spec.lsi_model])
    elif spec.embedder == "lsi":
        # A read of its own: sharing the records with the embedding branch would make a
        # local runner hold the whole corpus until the fit is done.
        sample = ((pipeline | "ReadForFit" >> ReadRecords(plan))["records"]
                  | "SampleForFit" >> beam.FlatMap(_lsi_sample, spec, plan.text_column)
                  | "TopKeys" >> beam.combiners.Top.Smallest(spec.lsi_fit_sample))
        also = spec.lsi_fit_also
        if also is not None:  # as many documents again from the other text, chosen alike
            more = ((pipeline | "ReadAlsoForFit" >> ReadRecords(also))["records"]
                    | "SampleAlsoForFit" >> beam.FlatMap(_lsi_sample, spec, also.text_column)
                    | "TopAlsoKeys" >> beam.combiners.Top.Smallest(spec.lsi_fit_sample))
            sample = ((sample, more) | "BothSamples" >> beam.Flatten()
                      | "JoinSamples" >> beam.CombineGlobally(_concat_lists))
        model_ref = sample | "FitLSI" >> beam.Map(_fit_lsi, spec)
    else:
        model_ref = pipeline | "ModelKey" >> beam.Create([spec.settings_hash()])
    key = beam.pvalue.AsSingleton(model_ref | "CacheKey" >> beam.Map(_cache_key, spec))
    batches = read["records"] | "Window" >> beam.ParDo(
        _Window(plan, spec), beam.pvalue.AsDict(checksums), key).with_outputs(
        "rejects", "reused", main="batches")
    if spec.embedder == "lsi":
        vectors = batches.batches | "Embed" >> beam.ParDo(
            _EmbedLsi(spec.batch_size, spec.progress_dir), beam.pvalue.AsSingleton(model_ref))
    else:
        vectors = batches.batches | "Embed" >> _run_inference(spec)
    written = vectors | "WriteShards" >> beam.ParDo(_WriteShard(spec))
    reused = batches.reused | "DescribeReused" >> beam.Map(_describe_reused, spec)
    shards = (written, reused) | "AllShards" >> beam.Flatten()
    rejects = ((read["rejects"], batches.rejects) | "AllRejects" >> beam.Flatten()
               | "WriteRejects" >> WriteRejects(spec.out_dir))
    sides = {"checksums": checksums, "rows_in": read["rows_in"], "shards": shards,
             "rejects": rejects, "model_ref": model_ref}
    _ = sides | "WriteManifest" >> WriteManifest(spec.out_dir, _Manifest(spec))


def _cache_key(model_ref: str, spec: EmbedSpec) -> str:
    """The settings and the model's content: an LSI model is named by its content hash, so
    its file name alone (not the folder it lies in) identifies it."""
    if spec.embedder == "lsi":
        model_ref = model_ref.replace("\\", "/").rsplit("/", 1)[-1]
    return hashlib.sha256(f"{spec.settings_hash()}\0{model_ref}".encode()).hexdigest()


def _run_inference(spec: EmbedSpec) -> beam.PTransform:
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

    from tamis.embeddings.sentence import SentenceTransformerHandler

    handler = SentenceTransformerHandler(
        spec.model_path, device=spec.device, precision=spec.precision,
        max_seq_length=spec.max_seq_length, normalize=spec.normalize, threads=spec.threads,
        batch_size=spec.batch_size, trust_remote_code=spec.trust_remote_code,
        progress=ProgressWriter(spec.progress_dir, PROGRESS_STAGE))
    return RunInference(KeyedModelHandler(handler))


class _Manifest:
    def __init__(self, spec: EmbedSpec) -> None:
        self.spec = spec

    def __call__(self, checksums, rows_in, shards, rejects, model_ref) -> dict:
        spec = self.spec
        plan = spec.inputs
        base, _ = manifest_base(plan, spec.header, checksums, rows_in, shards, rejects)
        shards = base["outputs"]["shards"]
        remove_stale(spec.out_dir, {e["path"] for e in shards})
        reused = [e for e in shards if e["reused"]]
        dims = sorted({e["dim"] for e in shards})
        clean = [{k: v for k, v in e.items() if k not in ("reused", "dim")} for e in shards]
        documents = sum(e["documents"] for e in shards)
        model = {
            "embedder": spec.embedder, "name": spec.model_name,
            "content_hash": spec.model_hash, "dim": dims[0] if dims else spec.dim,
            "normalized": spec.normalize, "max_seq_length": spec.max_seq_length,
            "window_tokens": spec.window_tokens, "mode": spec.mode,
            "precision": spec.effective_precision(), "device": spec.device,
        }
        if spec.embedder == "lsi":
            name = model_ref[0].replace("\\", "/").rsplit("/", 1)[-1]
            model["artifact"] = model_ref[0] if spec.lsi_model else f"{MODELS}/{name}"
            model["content_hash"] = "sha256:" + name[len("lsi-"):-len(".npz")]
        base["outputs"].update(shards=clean, rows=sum(e["rows"] for e in shards),
                               documents=documents, tokens=sum(e["tokens"] for e in shards),
                               schema=[{"name": f.name, "type": str(f.type)}
                                       for f in embed_schema(model["dim"])])
        base["accounting"].update(rows_kept=documents, rows_dropped={})
        return {
            **base,
            "model": model,
            "stats": {"shards_written": len(shards) - len(reused),
                      "shards_reused": len(reused),
                      "docs_embedded": sum(e["documents"] for e in shards if not e["reused"]),
                      "docs_reused": sum(e["documents"] for e in reused)},
        }


