"""The rephrase job's mixing manifest (``mixture.json``), read without Beam.

It names each source of the mixture (``real``: the chunks that were rephrased; one per style:
their rephrases), its share of the mixture's tokens, the tokens it has and the passes a trainer
makes over it. :class:`MixtureReader` iterates a source, pairs real chunks with their
rephrases, and samples records so that the sources' token shares are the manifest's.

>>> mix = MixtureReader("out/rephrased")            # doctest: +SKIP
>>> for pair in mix.pairs(): ...                    # doctest: +SKIP
>>> batch = mix.sample(1000, seed=0)                # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tamis.storage.errors import VerifyError
from tamis.storage.files import filesystem, join

MIXTURE = "mixture.json"


class MixtureReader:
    """The sources of ``out_dir``'s mixture; every shard is checked against its sha256 when
    it is opened (``verify=False``: its size only)."""

    def __init__(self, out_dir: str, verify: bool = True) -> None:
        self.out_dir, self.verify = out_dir, verify
        fs, inner = filesystem(join(out_dir, MIXTURE))
        try:
            with fs.open_input_stream(inner) as f:
                self.manifest = json.loads(f.read())
        except (FileNotFoundError, OSError):
            raise VerifyError(f"{out_dir} has no {MIXTURE} (a tamis rephrase output has "
                              f"one)") from None
        self.sources = {s["name"]: s for s in self.manifest["sources"]}

    def _table(self, entry: dict, columns: Sequence[str] | None = None) -> pa.Table:
        path = join(self.out_dir, entry["path"])
        fs, inner = filesystem(path)
        with fs.open_input_stream(inner) as f:
            data = f.read()
        if len(data) != entry["bytes"] or (
                self.verify and hashlib.sha256(data).hexdigest() != entry["sha256"]):
            raise VerifyError(f"{path}: differs from {MIXTURE}'s entry: the shard was altered")
        return pq.read_table(pa.BufferReader(data), columns=columns)

    def _shards(self, source: str) -> list[dict]:
        return self.manifest["shards"][self.sources[source]["shards"]]

    def batches(self, source: str, columns: Sequence[str] | None = None) -> Iterator[pa.Table]:
        """The rows of one source, shard after shard."""
        if source not in self.sources:
            raise KeyError(f"no source {source!r}: the mixture has {', '.join(self.sources)}")
        wanted = self.sources[source]["filter"]
        read = None if columns is None or not wanted else [*columns, *wanted]
        for entry in self._shards(source):
            table = self._table(entry, read)
            for name, value in (wanted or {}).items():
                table = table.filter(pc.equal(table.column(name), value))
            yield table if columns is None else table.select(list(columns))

    def records(self, source: str, columns: Sequence[str] | None = None) -> Iterator[dict]:
        for table in self.batches(source, columns):
            yield from table.to_pylist()

    def pairs(self) -> Iterator[dict]:
        """Each real chunk with its kept rephrases: ``{"chunk": row, "rephrases": {style:
        text}}``. A group's real and synthetic shards share a name, so pairing reads one
        group at a time."""
        synthetic = {e["path"].rsplit("/", 1)[-1]: e for e in self.manifest["shards"]["synthetic"]}
        for entry in self.manifest["shards"]["real"]:
            mine: dict[str, dict[str, str]] = {}
            other = synthetic.get(entry["path"].rsplit("/", 1)[-1])
            if other is not None:
                for row in self._table(other, ["chunk_id", "style", "text"]).to_pylist():
                    mine.setdefault(row["chunk_id"], {})[row["style"]] = row["text"]
            for row in self._table(entry).to_pylist():
                yield {"chunk": row, "rephrases": mine.get(row["id"], {})}

    def sample(self, n: int, seed: int = 0, columns: Sequence[str] = ("id", "text", "n_tokens")
               ) -> list[dict]:
        """``n`` records drawn with replacement; a record's source is drawn so that, in
        expectation, each source gives its share of the tokens (``source`` says which)."""
        rows, tokens = {}, {}
        for name, s in self.sources.items():
            if s["share"] > 0 and s["tokens_available"] > 0:
                counts = [t.num_rows for t in self.batches(name, ["n_tokens"])]
                rows[name], tokens[name] = sum(counts), s["tokens_available"]
        if not rows:
            raise ValueError(f"{self.out_dir}: the mixture has no source with tokens")
        names = sorted(rows)
        # P(source) ∝ share / mean tokens of its rows: its expected token share is its share.
        weight = np.array([self.sources[k]["share"] * rows[k] / tokens[k] for k in names])
        rng = np.random.default_rng(seed)
        picks = rng.choice(len(names), size=n, p=weight / weight.sum())
        out: list[dict | None] = [None] * n
        for i, name in enumerate(names):
            slots = np.flatnonzero(picks == i)
            if slots.size == 0:
                continue
            table = pa.concat_tables(list(self.batches(name, list(columns))))
            chosen = table.take(rng.integers(0, table.num_rows, slots.size)).to_pylist()
            for slot, row in zip(slots, chosen, strict=True):
                out[slot] = {**row, "source": name}
        return out  # type: ignore[return-value]
