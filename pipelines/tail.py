"""The end every selection job shares: sample, crisp, dsir, relevance and quality.

A job's selecting DoFn decides, for each batch, which rows stay and why the others go, as a
:class:`Fate`. :class:`SelectionTail` turns that into the same outputs in every job:

* kept rows with ``weight`` and ``n_samples`` (times the input's, when the input is an earlier
  selection), the job's own columns, split into shards by their (seed, id) order key;
* one Beam counter per fate (``rows_kept``, ``rows_dropped_<reason>``);
* :class:`Tally` items from which :func:`selection_manifest` writes the accounting, the
  selected rows, tokens and draws, and the mixture per input file.

:func:`write_selection` then writes shards, rejects, checksums and the manifest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.metrics import Metrics

from tamis.pipelines.read import NAMESPACE
from tamis.pipelines.write import manifest_base, write_outputs
from tamis.selectors.sampling import row_keys
from tamis.storage.inputs import IN_SAMPLES, IN_WEIGHT, InputPlan
from tamis.storage.manifest import Header
from tamis.storage.records import SRC

KEY = "__key"
#: The columns every selection adds to its input's (an input may carry them from an earlier
#: selection: they are then read and composed, not copied).
SELECTION_COLUMNS = ("n_tokens", "weight", "n_samples")
#: Salts the (seed, id) hash that orders rows in shards, so that their order is independent of
#: the (seed, id) uniforms that decided which rows were kept.
ORDER_SALT = 0x9E3779B97F4A7C15


class Tally(NamedTuple):
    """A batch's contribution to the manifest: ``rows`` and ``tokens`` of a ``kind`` of rows
    (``dropped`` by reason, ``source`` by input file, ``drawn``: draws and tokens with repeats,
    ``max_draws``: the most draws of one row in ``rows``)."""

    kind: str
    key: str | int | None
    rows: int
    tokens: int


@dataclass(frozen=True, kw_only=True)
class SelectionSpec:
    """What every selection job's spec holds: its inputs, where it writes, what opens its
    manifest, the seed of its (seed, id) draws and order, and its number of shards."""

    inputs: InputPlan
    out_dir: str
    header: Header
    seed: int
    num_shards: int


@dataclass
class Fate:
    """What happens to each row of a batch: ``keep`` (bool, shape (n,)), and for the others one
    drop reason each (``drops``: reason → bool mask; the masks and ``keep`` partition the rows).
    ``weight`` and ``n_samples`` are per kept row (arrays in kept order) or one value for all;
    ``columns`` are the job's own output columns, per kept row."""

    keep: np.ndarray
    drops: Mapping[str, np.ndarray]
    weight: np.ndarray | float = 1.0
    n_samples: np.ndarray | int = 1
    columns: Mapping[str, pa.Array | np.ndarray] = field(default_factory=dict)


class SelectionTail:
    """Used by a selecting DoFn: create it in ``__init__``, call :meth:`setup` from the DoFn's
    ``setup`` and ``yield from tail.emit(table, fate)`` for each batch."""

    def __init__(self, spec: SelectionSpec) -> None:
        if spec.num_shards < 1:
            raise ValueError(f"num_shards must be >= 1, got {spec.num_shards}")
        self.seed, self.num_shards = spec.seed, spec.num_shards

    def setup(self) -> None:
        self._kept = Metrics.counter(NAMESPACE, "rows_kept")
        self._dropped: dict[str, object] = {}

    def _count(self, reason: str, n: int) -> None:
        if reason not in self._dropped:
            self._dropped[reason] = Metrics.counter(NAMESPACE, f"rows_dropped_{reason}")
        self._dropped[reason].inc(n)

    def emit(self, table: pa.Table, fate: Fate) -> Iterator:
        keep = np.asarray(fate.keep, dtype=bool)
        covered = keep.astype(np.int64)
        tokens = table.column("n_tokens").to_numpy()
        for reason, mask in fate.drops.items():
            mask = np.asarray(mask, dtype=bool)
            covered += mask
            if mask.any():
                self._count(reason, int(mask.sum()))
                yield beam.pvalue.TaggedOutput(
                    "tally", Tally("dropped", reason, int(mask.sum()), int(tokens[mask].sum())))
        if not np.all(covered == 1):
            raise RuntimeError("internal error: a row was neither kept nor dropped once")
        self._kept.inc(int(keep.sum()))
        if not keep.any():
            return
        kept = table.filter(pa.array(keep))
        n = kept.num_rows
        kept = kept.append_column("weight", pa.array(_per_row(fate.weight, n, np.float64)))
        kept = kept.append_column("n_samples", pa.array(_per_row(fate.n_samples, n, np.int64)))
        for name, values in fate.columns.items():
            kept = kept.append_column(name, values if isinstance(values, pa.Array)
                                      else pa.array(values))
        kept = compose_upstream(kept)
        yield from (beam.pvalue.TaggedOutput("tally", t) for t in _kept_tallies(kept))
        yield from split_by_shard(kept, self.seed, self.num_shards)


def _per_row(value, n: int, dtype) -> np.ndarray:
    return np.array(np.broadcast_to(np.asarray(value, dtype=dtype), (n,)))


def _kept_tallies(kept: pa.Table) -> Iterator[Tally]:
    tokens = kept.column("n_tokens").to_numpy()
    draws = kept.column("n_samples").to_numpy()
    src = kept.column(SRC).to_numpy()
    for f in np.unique(src):
        mine = src == f
        yield Tally("source", int(f), int(mine.sum()), int(tokens[mine].sum()))
    yield Tally("drawn", None, int(draws.sum()), int((draws * tokens).sum()))
    yield Tally("max_draws", None, int(draws.max()), 0)


def compose_upstream(kept: pa.Table) -> pa.Table:
    """Rows read from an earlier selection: weights and draw counts multiply."""
    for name, carried in (("weight", IN_WEIGHT), ("n_samples", IN_SAMPLES)):
        if carried in kept.column_names and name in kept.column_names:
            product = pc.multiply(kept.column(name), kept.column(carried))
            kept = kept.set_column(kept.schema.get_field_index(name), name, product)
            kept = kept.drop_columns([carried])
    return kept


def split_by_shard(kept: pa.Table, seed: int, num_shards: int, key: str = KEY):
    """``(shard, rows)`` pairs of a table of kept rows. Each row gets an order key (a hash of
    (seed, id) under its own salt), by which shards are sorted, so a shard's rows come in
    random order, unrelated to why they were kept; its shard comes from the key's low bits:
    the same on any worker, in any order."""
    order = row_keys(kept.column("id").to_pylist(), int(seed) ^ ORDER_SALT)
    column = pa.array(order, pa.uint64())
    if key in kept.column_names:
        kept = kept.set_column(kept.schema.get_field_index(key), key, column)
    else:
        kept = kept.append_column(key, column)
    shard = (order & np.uint64(0xFFFFFFFF)) % np.uint64(num_shards)
    for s in np.unique(shard):
        yield int(s), kept.filter(pa.array(shard == s))


def selected_schema(plan: InputPlan, *extra: pa.Field) -> pa.Schema:
    """The schema of selected rows: the inputs' columns, ``n_tokens``, ``weight``,
    ``n_samples``, then the job's own columns (scores, cluster ids)."""
    added = [pa.field("n_tokens", pa.int64()), pa.field("weight", pa.float64()),
             pa.field("n_samples", pa.int64()), *extra]
    return pa.schema(list(plan.schema) + added)


def sum_tally(items: list) -> dict:
    """Sum :class:`Tally` items into ``{kind: {key: [rows, tokens]}}`` (``max_draws``: the
    largest)."""
    out: dict = {}
    for kind, key, rows, tokens in items:
        slot = out.setdefault(kind, {}).setdefault(key, [0, 0])
        if kind == "max_draws":
            slot[0] = max(slot[0], rows)
        else:
            slot[0] += rows
            slot[1] += tokens
    return out


def selection_manifest(plan: InputPlan, header: Header, schema: pa.Schema, checksums, rows_in,
                       shards, rejects, tally) -> dict:
    """The manifest of a selection job before its own sections: inputs, shards, rejects, the
    accounting, ``mixture.by_source`` and the selection's size in ``selector``."""
    base, rows_per_file = manifest_base(plan, header, checksums, rows_in, shards, rejects)
    sums = sum_tally(tally)
    shards = base["outputs"]["shards"]
    kept = sum(e["rows"] for e in shards)
    tokens = sum(e["tokens"] for e in shards)
    base["outputs"].update(rows=kept, tokens=tokens, schema=[
        {"name": f.name, "type": str(f.type)} for f in schema])
    base["accounting"].update(rows_kept=kept, rows_dropped={
        k: v[0] for k, v in sorted(sums.get("dropped", {}).items()) if v[0]})
    by_source = sums.get("source", {})
    base["mixture"] = {"by_source": {
        f.rel: {"rows_in": rows_per_file[i], "rows_kept": by_source.get(i, [0, 0])[0],
                "tokens_kept": by_source.get(i, [0, 0])[1]}
        for i, f in enumerate(plan.files)}}
    drawn = sums.get("drawn", {}).get(None, [0, 0])
    base["selector"] = {
        "selected_rows": kept, "selected_tokens": tokens, "selected_draws": drawn[0],
        "selected_tokens_with_repeats": drawn[1],
        "max_repetition": sums.get("max_draws", {}).get(None, [0, 0])[0]}
    return base


class _SelectionManifest:
    """The common sections, then the job's own: ``finish(base, **sides) -> manifest``."""

    def __init__(self, spec: SelectionSpec, schema: pa.Schema,
                 finish: Callable[..., dict]) -> None:
        self.spec, self.schema, self.finish = spec, schema, finish

    def __call__(self, checksums, rows_in, shards, rejects, tally, **sides) -> dict:
        base = selection_manifest(self.spec.inputs, self.spec.header, self.schema, checksums,
                                  rows_in, shards, rejects, tally)
        manifest = self.finish(base, **sides)
        manifest["warnings"] += budget_warnings(manifest["selector"])
        return manifest


#: A selection holding less than this share of its budget is warned about.
SHORT_BUDGET = 0.9


def budget_warnings(selector: dict) -> list[str]:
    """A warning when a selection holds clearly less than its budget asked."""
    if "budget_tokens" in selector:
        budget, unit = selector["budget_tokens"], "tokens"
    elif "budget" in selector and selector.get("unit") in ("rows", "tokens"):
        budget, unit = selector["budget"], selector["unit"]
    else:
        return []
    held = (selector["selected_tokens_with_repeats"] if unit == "tokens"
            else selector["selected_draws"])
    if not budget or held >= SHORT_BUDGET * budget:
        return []
    return [f"the selection holds {held:,} {unit}, {held / budget:.0%} of its budget of "
            f"{budget:,}: the pool has too little that qualifies (or a cap stopped it); the "
            f"budget is short by {budget - held:,} {unit}"]


def write_selection(pipeline: beam.Pipeline, spec: SelectionSpec, schema: pa.Schema, selected,
                    rows_in, rejects, finish: Callable[..., dict], **sides) -> None:
    """Shards from ``selected.kept``, rejects from every PCollection in ``rejects``, and the
    manifest: :func:`selection_manifest` from ``selected.tally``, completed by
    ``finish(base, **sides)`` (each side input a list)."""
    write_outputs(pipeline, spec.inputs, spec.out_dir, schema, spec.num_shards, selected.kept,
                  rows_in, rejects, _SelectionManifest(spec, schema, finish),
                  tally=selected.tally, **sides)
