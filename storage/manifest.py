"""The manifest beside a job's shards: writing it, verifying it, and reading the records.

This module imports no Beam: a trainer can ``from tamis.storage.manifest import
ManifestReader`` with only pyarrow and numpy installed.

Layout of an output folder::

    manifest.json          what was read, written, kept, dropped and rejected
    data/part-00000-of-00004.parquet ...
    rejects/part-00000.parquet ...   (only when some rows were rejected)
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tamis.storage.errors import VerifyError
from tamis.storage.files import filesystem, join, sha256_file, write_atomically

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
DATA, REJECTS = "data", "rejects"
#: Models a job trained or fitted (quality classifiers, LSI).
MODELS = "models"
#: The one field that differs between two runs of the same job on the same inputs.
TIMESTAMP_FIELD = "created_at"


@dataclass(frozen=True)
class Header:
    """What a job knows at launch and its manifest opens with. Workers write it, never read
    data from it: whatever a stage computes with travels in its typed spec.

    ``selector`` holds launch-time statistics of the selection (histogram coverage, the index
    kind), copied into the manifest's ``selector`` section."""

    job: str
    config: Mapping[str, Any]  # the resolved configuration, as plain JSON data
    config_hash: str
    seed: int
    warnings: tuple[str, ...] = ()
    selector: Mapping[str, Any] = field(default_factory=dict)

    def opening(self) -> dict:
        """The manifest's first fields: job, config, config_hash, seed."""
        return {"job": self.job, "config": dict(self.config), "config_hash": self.config_hash,
                "seed": self.seed}


def versions() -> dict[str, str]:
    """Versions of tamis and the libraries that shape its outputs."""
    found = {"python": platform.python_version()}
    for name in ("tamis", "apache-beam", "pyarrow", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def dumps(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def write_manifest(out_dir: str, manifest: dict) -> None:
    write_atomically(join(out_dir, MANIFEST), lambda f: f.write(dumps(manifest)))


def load_manifest(out_dir: str) -> dict:
    try:
        fs, inner = filesystem(join(out_dir, MANIFEST))
        with fs.open_input_stream(inner) as f:
            manifest = json.loads(f.read())
    except FileNotFoundError:
        raise VerifyError(f"{out_dir}: no {MANIFEST} (the job did not finish?)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise VerifyError(f"{join(out_dir, MANIFEST)}: not a readable manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise VerifyError(f"{join(out_dir, MANIFEST)}: not a manifest (a JSON object)")
    return manifest


def accounting_problem(acc: dict) -> str | None:
    """Why the accounting does not add up, or None."""
    dropped = sum(acc["rows_dropped"].values())
    rejected = sum(acc["rows_rejected"].values())
    total = acc["rows_kept"] + dropped + rejected
    if acc["rows_in"] != total:
        return (f"accounting: rows_in {acc['rows_in']} != rows_kept {acc['rows_kept']} "
                f"+ dropped {dropped} + rejected {rejected} (= {total})")
    return None


def verify(out_dir: str) -> dict:
    """Check every shard's size, checksum, rows, tokens and weights, and the accounting.

    Returns the manifest; raises :class:`VerifyError` naming the first mismatch.
    """
    manifest = load_manifest(out_dir)
    if manifest.get("schema_version") != SCHEMA_VERSION:
        raise VerifyError(f"{MANIFEST}: schema_version {manifest.get('schema_version')!r}, "
                          f"this tamis reads {SCHEMA_VERSION}")
    outputs, acc = manifest["outputs"], manifest["accounting"]
    rows = documents = tokens = 0
    for shard in outputs["shards"]:
        columns = ["n_tokens"] + (["weight"] if "weight_sum" in shard else []) + (
            ["window"] if "documents" in shard else [])
        table = _check_file(out_dir, shard, columns)
        rows += shard["rows"]
        tokens += shard["tokens"]
        _expect(shard, "tokens", int(np.sum(table.column("n_tokens").to_numpy())))
        if "documents" in shard:
            documents += shard["documents"]
            _expect(shard, "documents", int(np.sum(table.column("window").to_numpy() == 0)))
        if "weight_sum" in shard:
            weight_sum = float(np.sum(table.column("weight").to_numpy()))
            if not np.isclose(weight_sum, shard["weight_sum"], rtol=1e-9, atol=1e-9):
                raise VerifyError(f"{shard['path']}: weight_sum {weight_sum} != manifest "
                                  f"{shard['weight_sum']}")
    # Row-per-document jobs keep shard rows; embedding caches keep one row per window.
    kept = documents if "documents" in outputs else rows
    reasons: dict[str, int] = {}
    documents_rejected: dict[str, int] = {}
    for shard in outputs["rejects"]:
        table = _check_file(out_dir, shard, ["reason"])
        # A job whose rows are not documents (rephrase: requests) lists its rejected input
        # rows apart, with the unit "documents"; they add up in its "documents" section.
        into = documents_rejected if shard.get("unit") == "documents" else reasons
        for reason in table.column("reason").to_pylist():
            into[reason] = into.get(reason, 0) + 1
    for shard in outputs.get("real", []):
        _check_file(out_dir, shard, ["n_tokens"])
    if "documents" in manifest and documents_rejected != manifest["documents"][
            "rows_rejected"]:
        raise VerifyError(f"documents: rejects shards hold {documents_rejected}, "
                          f"rows_rejected says {manifest['documents']['rows_rejected']}")
    if rows != outputs["rows"]:
        raise VerifyError(f"outputs: shards hold {rows} rows, manifest says {outputs['rows']}")
    if kept != acc["rows_kept"]:
        raise VerifyError(f"accounting: shards hold {kept} documents, rows_kept says "
                          f"{acc['rows_kept']}")
    if tokens != outputs["tokens"]:
        raise VerifyError(f"outputs: shards hold {tokens} tokens, manifest says "
                          f"{outputs['tokens']}")
    if reasons != acc["rows_rejected"]:
        raise VerifyError(f"accounting: rejects shards hold {reasons}, rows_rejected says "
                          f"{acc['rows_rejected']}")
    problem = accounting_problem(acc)
    if problem:
        raise VerifyError(problem)
    _check_no_strays(out_dir, [s["path"] for s in outputs["shards"] + outputs["rejects"]
                               + outputs.get("real", [])])
    return manifest


def _check_file(out_dir: str, entry: dict, columns: list[str]):
    fs, inner = filesystem(join(out_dir, entry["path"]))
    info = fs.get_file_info(inner)
    if info.size is None:
        raise VerifyError(f"{entry['path']}: missing")
    _expect(entry, "bytes", info.size)
    _expect(entry, "sha256", sha256_file(fs, inner))
    with fs.open_input_file(inner) as f:
        table = pq.read_table(f, columns=columns)
    _expect(entry, "rows", table.num_rows)
    return table


def _expect(entry: dict, key: str, actual: Any) -> None:
    if entry[key] != actual:
        raise VerifyError(f"{entry['path']}: {key} is {actual}, manifest says {entry[key]}")


def _check_no_strays(out_dir: str, listed: Sequence[str]) -> None:
    import pyarrow.fs as pafs

    fs, inner = filesystem(out_dir)
    for folder in (DATA, REJECTS, "real"):
        selector = pafs.FileSelector(join(inner, folder), recursive=True, allow_not_found=True)
        for info in fs.get_file_info(selector):
            rel = info.path[len(inner):].lstrip("/")
            if info.type == pafs.FileType.File and rel not in listed:
                raise VerifyError(f"{rel}: a file the manifest does not list")


class ManifestReader:
    """Iterate or sample the records a job kept, from its manifest; no Beam needed.

    Each shard is checked when it is opened: its size and sha256 must be those the manifest
    lists (Parquet pages carry no checksum, so a flipped byte could otherwise come back as
    altered text). ``verify=False`` skips the checksum (the size is still checked) to save
    one pass over the bytes. A missing or altered shard raises :class:`VerifyError` naming it.

    >>> reader = ManifestReader("out/demo-sample")        # doctest: +SKIP
    >>> for record in reader.records(columns=["id", "text"]): ...  # doctest: +SKIP
    """

    def __init__(self, out_dir: str, verify: bool = True) -> None:
        self.out_dir = out_dir
        self.verify = verify
        self.manifest = load_manifest(out_dir)

    @property
    def shards(self) -> list[str]:
        return [join(self.out_dir, s["path"]) for s in self.manifest["outputs"]["shards"]]

    def __len__(self) -> int:
        return self.manifest["accounting"]["rows_kept"]

    def _open(self, index: int) -> pq.ParquetFile:
        """Shard ``index``, checked against its manifest entry."""
        entry = self.manifest["outputs"]["shards"][index]
        path = self.shards[index]
        fs, inner = filesystem(path)
        size = fs.get_file_info(inner).size
        if size is None:
            raise VerifyError(f"{path}: missing (the manifest of {self.out_dir} lists it)")
        if size != entry["bytes"]:
            raise VerifyError(f"{path}: {size} bytes, the manifest says {entry['bytes']}: the "
                              f"shard was altered or truncated")
        if not self.verify:
            return pq.ParquetFile(fs.open_input_file(inner))
        with fs.open_input_stream(inner) as f:
            data = f.read()
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise VerifyError(f"{path}: sha256 differs from the manifest's: the shard was "
                              f"altered (ManifestReader(verify=False) reads it anyway)")
        return pq.ParquetFile(pa.BufferReader(data))

    def batches(self, columns: Sequence[str] | None = None, batch_size: int = 1024) -> Iterator:
        """Arrow record batches, shard after shard, in the order the manifest lists them."""
        for index in range(len(self.shards)):
            yield from self._open(index).iter_batches(batch_size=batch_size, columns=columns)

    def records(self, columns: Sequence[str] | None = None) -> Iterator[dict]:
        """Every kept record once, as a dict."""
        for batch in self.batches(columns):
            yield from batch.to_pylist()

    def sample(self, n: int, seed: int = 0, by: str = "weight",
               columns: Sequence[str] | None = None) -> list[dict]:
        """``n`` records drawn with replacement, with probability proportional to ``by``
        (``weight``, or ``n_samples`` to replay a resampled selection)."""
        if by not in ("weight", "n_samples"):
            raise ValueError(f"by must be 'weight' or 'n_samples', got {by!r}")
        sizes, weights = [], []
        for index in range(len(self.shards)):
            column = self._open(index).read(columns=[by]).column(by).to_numpy()
            sizes.append(len(column))
            weights.append(np.asarray(column, dtype=np.float64))
        p = np.concatenate(weights) if weights else np.zeros(0)
        if p.size == 0 or p.sum() <= 0:
            raise ValueError(f"{self.out_dir}: no record has a positive {by}")
        picks = np.random.default_rng(seed).choice(p.size, size=n, p=p / p.sum())
        starts = np.cumsum([0, *sizes])
        out: list[dict | None] = [None] * n
        for s in range(len(self.shards)):
            mine = np.flatnonzero((picks >= starts[s]) & (picks < starts[s + 1]))
            if mine.size == 0:
                continue
            table = self._open(s).read(columns=columns)
            rows = table.take(picks[mine] - starts[s]).to_pylist()
            for slot, row in zip(mine, rows, strict=True):
                out[slot] = row
        return out  # type: ignore[return-value]
