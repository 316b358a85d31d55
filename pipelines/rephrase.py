"""The ``rephrase`` job: documents → WRAP chunks → one request per (chunk, style) → rephrases.

Read ─► Groups (≤ docs_per_shard documents of one file) ─► Spread
      ─► Rephrase (chunk; the journal's answers; the rest sent in batches, each batch written
         to the journal as it returns; post-process; the group's shards) ─► Manifest, mixture

A group is finished when its ``done`` record is in the journal: a rerun with the same
settings reads that record and sends nothing, loads no model. A group cut short (a killed run)
left one journal file per answered batch: a rerun sends only the requests no journal file
answers, so a kill loses at most the batches in flight. Request identities hash (chunk id,
style, model, prompt hash, sampling, seed); the journal is keyed by input file and row range,
so a rerun with other settings finds the answers it can reuse.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pyarrow.parquet as pq
from apache_beam.metrics import Metrics

from tamis.embeddings.chunker import SentenceChunker
from tamis.embeddings.rephrasers import BackendSpec, Request, request_seed
from tamis.pipelines.progress import ProgressWriter
from tamis.pipelines.read import NAMESPACE, ChecksumInputs, ReadRecords
from tamis.pipelines.rephrase_outputs import (
    DATA_SCHEMA,
    JOURNAL,
    JOURNAL_SCHEMA,
    REAL,
    REAL_SCHEMA,
    REQUEST_REJECTS_SCHEMA,
    Manifest,
    group_summary,
)
from tamis.pipelines.write import WriteManifest, WriteRejects
from tamis.selectors.rephrase import OutputRules, Style, request_id, settle
from tamis.storage import manifest as mf
from tamis.storage.cache import cache_shard_name
from tamis.storage.files import filesystem, join, write_atomically
from tamis.storage.inputs import InputPlan
from tamis.storage.records import ROW, SRC
from tamis.storage.shards import PARQUET_OPTIONS, write_table

PROGRESS_STAGE = "rephrase"
#: Backend failures a rerun sends again when ``retry_failed`` is on.
TRANSIENT = ("retries_exhausted", "timeout")


@dataclass(frozen=True, kw_only=True)
class RephraseSpec:
    inputs: InputPlan
    out_dir: str
    header: mf.Header
    backend: BackendSpec
    model_id: str  # the model's identity in request ids
    tokenizer: str  # the folder whose tokenizer counts chunk tokens
    styles: tuple[Style, ...]
    prompt_hashes: tuple[str, ...]  # one per style
    language: str
    target_tokens: int
    max_tokens: int
    min_tokens: int
    rules: OutputRules
    seed: int
    batch_size: int
    docs_per_shard: int
    retry_failed: bool
    mix: dict  # real, synthetic, shares, tokens
    progress_dir: str | None

    def settings_key(self) -> str:
        """Everything that changes a group's shards."""
        text = json.dumps({
            "model": self.model_id, "prompts": list(self.prompt_hashes),
            "styles": [s.name for s in self.styles], "sampling": self.backend.sampling.as_dict(),
            "chunks": [self.language, self.target_tokens, self.max_tokens, self.min_tokens,
                       self.tokenizer_key()],
            "rules": [self.rules.min_ratio, self.rules.max_ratio, self.rules.max_repetition],
            "seed": self.seed}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def tokenizer_key(self) -> str:
        return os.path.basename(self.tokenizer.rstrip("/\\"))


def _groups(table: pa.Table, size: int):
    """A read batch in groups of at most ``size`` documents, in row order."""
    table = table.sort_by(ROW)
    for start in range(0, table.num_rows, size):
        yield table.slice(start, size)


def file_key(rel: str, checksum: str) -> str:
    return hashlib.sha256(f"{rel}\0{checksum}".encode()).hexdigest()[:24]


class _Rephrase(beam.DoFn):
    """One group of documents → its three shards (rephrases, real chunks, rejected requests)
    and its summary. The chunker loads in ``setup``; the backend on the first request sent."""

    def __init__(self, spec: RephraseSpec) -> None:
        self._spec = spec

    def setup(self) -> None:
        spec = self._spec
        self._chunker = SentenceChunker(spec.tokenizer, spec.language, spec.target_tokens,
                                        spec.max_tokens, spec.min_tokens).load()
        self._backend = None
        self._worker = f"{socket.gethostname()}:{os.getpid()}"
        self._sent = Metrics.counter(NAMESPACE, "requests_sent")
        self._reused = Metrics.counter(NAMESPACE, "requests_reused")
        self._groups_reused = Metrics.counter(NAMESPACE, "groups_reused")
        self._progress = ProgressWriter(spec.progress_dir, PROGRESS_STAGE)

    def finish_bundle(self):
        self._progress.flush()

    def process(self, table: pa.Table, checksums: dict):
        spec = self._spec
        src = int(table.column(SRC)[0].as_py())
        rel = plan_rel(spec.inputs, src)
        rows = table.column(ROW).to_pylist()
        first, last = min(rows), max(rows)
        folder = join(spec.out_dir, JOURNAL, file_key(rel, checksums[src]))
        name = cache_shard_name(rel, checksums[src], first, spec.settings_key())
        done = join(folder, f"done-r{first:010d}-{name[-24:-8]}.json")
        fs, inner = filesystem(done)
        if fs.get_file_info(inner).type == pafs.FileType.File:
            with fs.open_input_stream(inner) as f:
                summary = json.loads(f.read())
            self._groups_reused.inc()
            self._reused.inc(summary["requests"]["total"])
            self._progress.add(summary["requests"]["total"])
            yield {**summary, "reused_group": True}
            return
        chunks, doc_fates = self._chunk(table, spec)
        requests, too_long = [], []
        for c in chunks:
            if c.reason == "too_short":
                continue
            for style, phash in zip(spec.styles, spec.prompt_hashes, strict=True):
                rid = request_id(c.id, style.name, spec.model_id, phash,
                                 spec.backend.sampling.as_dict(), spec.seed)
                (too_long if c.reason == "too_long" else requests).append(
                    (Request(rid, style, c.text, request_seed(spec.seed, rid)), c, phash))
        answers = read_journal(folder, first, last, {r.id for r, _, _ in requests})
        if spec.retry_failed:
            answers = {k: v for k, v in answers.items() if v["error"] not in TRANSIENT}
        todo = [r for r, _, _ in requests if r.id not in answers]
        self._reused.inc(len(requests) - len(todo))
        self._progress.add(len(requests) - len(todo))
        busy, tokens_out = 0.0, 0
        for start in range(0, len(todo), spec.batch_size):
            batch = todo[start:start + spec.batch_size]
            if self._backend is None:
                self._backend = spec.backend.build().load()
            began = time.monotonic()
            made = self._backend.run(batch)
            busy += time.monotonic() - began
            tokens_out += sum(g.tokens_out for g in made)
            answered = journal_table(batch, made)
            write_atomically(join(folder, f"r{first:010d}-{last:010d}-{uuid.uuid4().hex}"
                                          f".parquet"),
                             lambda sink, t=answered: pq.write_table(t, sink, **PARQUET_OPTIONS))
            answers.update({row["request"]: row for row in answered.to_pylist()})
            self._sent.inc(len(batch))
            self._progress.add(len(batch))
        yield self._write(spec, folder, name, done, chunks, doc_fates, requests, too_long,
                          answers, {"busy_s": busy, "sent": len(todo), "tokens_out": tokens_out})

    def _chunk(self, table: pa.Table, spec: RephraseSpec):
        ids = table.column("id").to_pylist()
        texts = table.column(spec.inputs.text_column).to_pylist()
        chunks, fates = [], {}
        for doc, text in zip(ids, texts, strict=True):
            mine = self._chunker.chunks(doc, text)
            chunks += mine
            if not mine:
                fates["empty"] = fates.get("empty", 0) + 1
            elif all(c.reason == "too_short" for c in mine):
                fates["too_short"] = fates.get("too_short", 0) + 1
            else:
                fates["chunked"] = fates.get("chunked", 0) + 1
        return chunks, fates

    def _write(self, spec, folder, name, done, chunks, doc_fates, requests, too_long, answers,
               work: dict) -> dict:
        kept, rejected, stripped = [], [], 0
        for request, chunk, phash in requests:
            a = answers[request.id]
            text, reason = settle(a["text"], a["finish"], a["error"], chunk.text,
                                  request.style.name, spec.rules)
            stripped += reason is None and text != a["text"].strip()
            row = {"id": request.id, "chunk_id": chunk.id, "doc_id": chunk.doc_id,
                   "style": request.style.name, "model": spec.model_id, "prompt_hash": phash,
                   "n_tokens": a["tokens_out"], "tokens_in": a["tokens_in"],
                   "source_tokens": chunk.n_tokens, "finish_reason": a["finish"]}
            if reason is None:
                kept.append({**row, "text": text})
            else:
                rejected.append({**row, "text": text[:4000], "reason": reason,
                                 "detail": a["detail"] or ""})
        for request, chunk, phash in too_long:
            rejected.append({"id": request.id, "chunk_id": chunk.id, "doc_id": chunk.doc_id,
                             "style": request.style.name, "model": spec.model_id,
                             "prompt_hash": phash, "n_tokens": 0, "tokens_in": 0,
                             "source_tokens": chunk.n_tokens, "finish_reason": "not_sent",
                             "text": "", "reason": "too_long",
                             "detail": f"{chunk.n_tokens} tokens, over max_tokens "
                                       f"{spec.max_tokens}"})
        real = [{"id": c.id, "doc_id": c.doc_id, "chunk": c.index, "text": c.text,
                 "n_tokens": c.n_tokens} for c in chunks if c.reason is None]
        entries = {
            "data": write_table(spec.out_dir, f"{mf.DATA}/{name}",
                                pa.Table.from_pylist(kept, DATA_SCHEMA), DATA_SCHEMA),
            "real": write_table(spec.out_dir, f"{REAL}/{name}",
                                pa.Table.from_pylist(real, REAL_SCHEMA), REAL_SCHEMA),
            "rejects": write_table(spec.out_dir, f"{mf.REJECTS}/requests-{name}",
                                   pa.Table.from_pylist(rejected, REQUEST_REJECTS_SCHEMA),
                                   REQUEST_REJECTS_SCHEMA),
        }
        summary = group_summary(entries, kept, rejected, chunks, doc_fates, stripped)
        summary["worker"] = {"id": self._worker, **work}
        summary["backend"] = self._backend.stats() if self._backend is not None else {}
        text = json.dumps(summary, sort_keys=True).encode()
        write_atomically(done, lambda sink: sink.write(text))
        return {**summary, "reused_group": False}


def plan_rel(plan: InputPlan, src: int) -> str:
    return plan.files[src].rel


def read_journal(folder: str, first: int, last: int, wanted: set[str]) -> dict[str, dict]:
    """The answers the journal holds for ``wanted`` requests: files of row ranges that meet
    ``[first, last]``, later files first (a request answered twice keeps its latest)."""
    fs, inner = filesystem(folder)
    selector = pafs.FileSelector(inner, allow_not_found=True)
    files = []
    for info in fs.get_file_info(selector):
        name = info.base_name
        if info.type != pafs.FileType.File or not name.startswith("r") or not name.endswith(
                ".parquet"):
            continue
        lo, hi = (int(x[1:] if x.startswith("r") else x) for x in name.split("-")[:2])
        if lo <= last and hi >= first:
            files.append((info.mtime_ns or 0, info.path))
    out: dict[str, dict] = {}
    for _, path in sorted(files):
        with fs.open_input_file(path) as f:
            table = pq.read_table(f, schema=JOURNAL_SCHEMA)
        mask = pc.is_in(table.column("request"), pa.array(sorted(wanted), pa.string()))
        for row in table.filter(mask).to_pylist():
            out[row["request"]] = row
    return out


def journal_table(batch, made) -> pa.Table:
    return pa.Table.from_pylist([
        {"request": r.id, "text": g.text, "tokens_in": g.tokens_in, "tokens_out": g.tokens_out,
         "finish": g.finish, "error": g.error, "detail": g.detail, "attempts": g.attempts}
        for r, g in zip(batch, made, strict=True)], JOURNAL_SCHEMA)


def build(pipeline: beam.Pipeline, spec: RephraseSpec) -> None:
    """Add the whole ``rephrase`` job to ``pipeline``."""
    plan = spec.inputs
    read = pipeline | "ReadRecords" >> ReadRecords(plan, census=True)
    checksums = pipeline | "ChecksumInputs" >> ChecksumInputs(plan)
    summaries = (read["records"]
                 | "Groups" >> beam.FlatMap(_groups, spec.docs_per_shard)
                 | "Spread" >> beam.Reshuffle()
                 | "Rephrase" >> beam.ParDo(_Rephrase(spec), beam.pvalue.AsDict(checksums)))
    rejects = read["rejects"] | "WriteRejects" >> WriteRejects(spec.out_dir)
    sides = {"checksums": checksums, "rows_in": read["rows_in"], "shards": summaries,
             "rejects": rejects}
    _ = sides | "WriteManifest" >> WriteManifest(spec.out_dir, Manifest(spec))
