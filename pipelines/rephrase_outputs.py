"""What the ``rephrase`` job writes besides its requests: the shards' schemas, each group's
summary, the manifest (documents, chunks, requests per style, throughput per worker) and the
mixing manifest (``mixture.json``), which a trainer reads with
:class:`tamis.storage.mixture.MixtureReader`.

Two accountings add up, and the manifest is refused when either does not:
* documents: ``rows_in = chunked + Σ dropped[reason] + Σ rejected[reason]``;
* requests (``accounting``, what ``tamis verify`` checks against the shards): every (chunk,
  style) of a sent chunk is one row, rephrased (``data/``) or rejected with a reason
  (``rejects/requests-*``).
"""

from __future__ import annotations

import time

import pyarrow as pa
import pyarrow.fs as pafs

from tamis.pipelines.write import manifest_base
from tamis.selectors.rephrase import mixture, residual_meta
from tamis.storage import manifest as mf
from tamis.storage.files import filesystem, join, write_atomically

REAL = "real"
JOURNAL = "journal"
MIXTURE = "mixture.json"

_COMMON = [("id", pa.string()), ("chunk_id", pa.string()), ("doc_id", pa.string()),
           ("style", pa.string()), ("model", pa.string()), ("prompt_hash", pa.string()),
           ("text", pa.string()), ("n_tokens", pa.int64()), ("tokens_in", pa.int64()),
           ("source_tokens", pa.int64()), ("finish_reason", pa.string())]
#: Rephrases: ``n_tokens`` is the output's tokens, ``tokens_in`` the prompt's.
DATA_SCHEMA = pa.schema(_COMMON)
REQUEST_REJECTS_SCHEMA = pa.schema([*_COMMON, ("reason", pa.string()), ("detail", pa.string())])
#: The real chunks that were sent, which rephrases pair with by ``chunk_id``.
REAL_SCHEMA = pa.schema([("id", pa.string()), ("doc_id", pa.string()), ("chunk", pa.int32()),
                         ("text", pa.string()), ("n_tokens", pa.int64())])
#: One row per answered request, written per batch as it returns.
JOURNAL_SCHEMA = pa.schema([("request", pa.string()), ("text", pa.string()),
                            ("tokens_in", pa.int64()), ("tokens_out", pa.int64()),
                            ("finish", pa.string()), ("error", pa.string()),
                            ("detail", pa.string()), ("attempts", pa.int64())])


def _add(counts: dict, key: str, n: int = 1) -> None:
    counts[key] = counts.get(key, 0) + n


def group_summary(entries: dict, kept: list[dict], rejected: list[dict], chunks, doc_fates,
                  stripped: int) -> dict:
    """A group's counts, written beside its shards and summed by the manifest."""
    styles: dict[str, dict] = {}
    for row in kept + rejected:
        s = styles.setdefault(row["style"], {"requests": 0, "rephrased": 0, "rejected": {},
                                             "tokens_in": 0, "tokens_out": 0,
                                             "kept_tokens": 0})
        s["requests"] += 1
        s["tokens_in"] += row["tokens_in"]
        s["tokens_out"] += row["n_tokens"]
        if "reason" in row:
            _add(s["rejected"], row["reason"])
        else:
            s["rephrased"] += 1
            s["kept_tokens"] += row["n_tokens"]
    reasons: dict[str, int] = {}
    for row in rejected:
        _add(reasons, row["reason"])
    sent = [c for c in chunks if c.reason is None]
    return {
        "shards": entries,
        "documents": {"chunked": doc_fates.get("chunked", 0),
                      "dropped": {k: v for k, v in doc_fates.items() if k != "chunked"}},
        "chunks": {"made": len(chunks), "sent": len(sent),
                   "too_long": sum(c.reason == "too_long" for c in chunks),
                   "too_short": sum(c.reason == "too_short" for c in chunks),
                   "tokens": sum(c.n_tokens for c in sent)},
        "requests": {"total": len(kept) + len(rejected), "rephrased": len(kept),
                     "rejected": reasons},
        "styles": styles,
        "meta": {"stripped": stripped, "residual": sum(residual_meta(r["text"]) for r in kept)},
    }


def _merge(into: dict, part: dict) -> None:
    for k, v in part.items():
        if isinstance(v, dict):
            _merge(into.setdefault(k, {}), v)
        else:
            into[k] = into.get(k, 0) + v


class Manifest:
    """Builds ``manifest.json`` and writes ``mixture.json`` once every group is written."""

    def __init__(self, spec) -> None:
        self.spec = spec
        self.started = time.time()

    def __call__(self, checksums, rows_in, shards, rejects) -> dict:
        spec = self.spec
        groups = sorted(shards, key=lambda g: g["shards"]["data"]["path"])
        base, _ = manifest_base(spec.inputs, spec.header, checksums, rows_in, [], rejects)
        documents, chunks, requests, styles, meta = {}, {}, {}, {}, {}
        workers: dict[str, dict] = {}
        backend: dict = {}
        for g in groups:
            _merge(documents, g["documents"])
            _merge(chunks, g["chunks"])
            _merge(requests, g["requests"])
            _merge(styles, g["styles"])
            _merge(meta, g["meta"])
            if not g["reused_group"]:
                w = workers.setdefault(g["worker"]["id"], {"groups": 0, "busy_s": 0.0,
                                                           "requests_sent": 0,
                                                           "tokens_out": 0})
                w["groups"] += 1
                w["busy_s"] += g["worker"]["busy_s"]
                w["requests_sent"] += g["worker"]["sent"]
                w["tokens_out"] += g["worker"]["tokens_out"]
                _merge(backend, {k: v for k, v in g["backend"].items()
                                 if isinstance(v, int | float | dict)})
        doc_rejects = dict(base["accounting"]["rows_rejected"])
        docs = {"rows_in": base["accounting"]["rows_in"],
                "chunked": documents.get("chunked", 0),
                "rows_dropped": documents.get("dropped", {}), "rows_rejected": doc_rejects}
        total = docs["chunked"] + sum(docs["rows_dropped"].values()) + sum(doc_rejects.values())
        if total != docs["rows_in"]:
            raise RuntimeError(f"internal error, documents were lost: {docs}")
        data = [g["shards"]["data"] for g in groups]
        real = [g["shards"]["real"] for g in groups]
        request_rejects = [g["shards"]["rejects"] for g in groups]
        self._remove_stale({e["path"] for e in data + real + request_rejects} | {
            e["path"] for e in base["outputs"]["rejects"]})
        order = [s.name for s in spec.styles]
        per_style = {}
        for name, phash in zip(order, spec.prompt_hashes, strict=True):
            s = styles.get(name, {"requests": 0, "rephrased": 0, "rejected": {},
                                  "tokens_in": 0, "tokens_out": 0, "kept_tokens": 0})
            per_style[name] = {**s, "prompt_hash": phash}
        sent = sum(w["requests_sent"] for w in workers.values())
        busy = sum(w["busy_s"] for w in workers.values())
        out_new = sum(w["tokens_out"] for w in workers.values())
        sendable = requests.get("total", 0) - requests.get("rejected", {}).get("too_long", 0)
        rephrased = requests.get("rephrased", 0)
        base["outputs"].update(
            shards=data, real=real,
            rejects=[*request_rejects, *({**e, "unit": "documents"}
                                         for e in base["outputs"]["rejects"])],
            rows=sum(e["rows"] for e in data), tokens=sum(e["tokens"] for e in data),
            real_rows=sum(e["rows"] for e in real), real_tokens=sum(e["tokens"] for e in real),
            schema=[{"name": f.name, "type": str(f.type)} for f in DATA_SCHEMA])
        base["accounting"] = {"rows_in": requests.get("total", 0), "rows_kept": rephrased,
                              "rows_dropped": {}, "rows_rejected": requests.get("rejected", {}),
                              "unit": "requests: one per (chunk, style)"}
        mix = self._mixture(real, data, per_style)
        write_atomically(join(spec.out_dir, MIXTURE),
                         lambda sink: sink.write(mf.dumps(mix)))
        return {
            **base,
            "documents": docs,
            "chunks": {**{k: chunks.get(k, 0) for k in ("made", "sent", "too_long",
                                                         "too_short", "tokens")},
                       "target_tokens": spec.target_tokens, "max_tokens": spec.max_tokens,
                       "min_tokens": spec.min_tokens, "tokenizer": spec.tokenizer_key(),
                       "rule": (f"sentences packed to about {spec.target_tokens} tokens, never "
                                f"split; a last chunk under {spec.min_tokens} tokens merges "
                                f"into the one before; a document whose only chunk is under "
                                f"{spec.min_tokens} tokens is dropped as too_short; a chunk "
                                f"over {spec.max_tokens} tokens is not sent (too_long)")},
            "model": {"backend": spec.backend.kind, "id": spec.model_id,
                      "sampling": spec.backend.sampling.as_dict(), "seed": spec.seed,
                      "template": spec.header.selector.get("template")},
            "styles": per_style,
            "postprocess": {
                "meta_stripped": meta.get("stripped", 0),
                "meta_rejected": requests.get("rejected", {}).get("meta_phrase", 0),
                "residual_meta": meta.get("residual", 0),
                "residual_meta_rate": meta.get("residual", 0) / rephrased if rephrased else 0.0,
                "length_ratio": [spec.rules.min_ratio, spec.rules.max_ratio],
                "max_repetition": spec.rules.max_repetition},
            "requests": {"sent_this_run": sent, "reused": sendable - sent,
                         "groups": len(groups),
                         "groups_reused": sum(g["reused_group"] for g in groups),
                         "backend": backend},
            "throughput": {"workers": workers, "busy_s": busy,
                           "wall_s": time.time() - self.started,
                           "output_tokens_per_busy_s": out_new / busy if busy else None,
                           "requests_per_busy_s": sent / busy if busy else None},
            "mixture": MIXTURE,
        }

    def _mixture(self, real: list[dict], data: list[dict], per_style: dict) -> dict:
        spec = self.spec
        style_tokens = {name: s["kept_tokens"] for name, s in per_style.items()}
        plan = mixture(sum(e["tokens"] for e in real), style_tokens, spec.mix["real"],
                       spec.mix["synthetic"], spec.mix["shares"] or None, spec.mix["tokens"])
        sources = [{"name": name, "shards": "real" if name == "real" else "synthetic",
                    "filter": None if name == "real" else {"style": name}, **s}
                   for name, s in plan["sources"].items()]
        return {"schema_version": mf.SCHEMA_VERSION, "kind": "rephrase-mixture",
                "config_hash": spec.header.config_hash,
                "ratio": {"real": spec.mix["real"], "synthetic": spec.mix["synthetic"]},
                "total_tokens": plan["total_tokens"], "missing": plan["missing"],
                "pair_key": {"real": "id", "synthetic": "chunk_id"},
                "shards": {"real": real, "synthetic": data}, "sources": sources}

    def _remove_stale(self, keep: set[str]) -> None:
        """Shards of groups or settings this run no longer has (the journal stays)."""
        for folder in (mf.DATA, REAL, mf.REJECTS):
            fs, inner = filesystem(join(self.spec.out_dir, folder))
            for info in fs.get_file_info(pafs.FileSelector(inner, allow_not_found=True)):
                if info.type == pafs.FileType.File and f"{folder}/{info.base_name}" not in keep:
                    fs.delete_file(info.path)
