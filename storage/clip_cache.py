"""The per-clip cache of speech selection: every clip's duration, speaker, transcript, speech
share and its vector on each axis, written once, so that sweeps over λ, the budget or the
axis weights read it back in seconds instead of decoding and embedding again.

A cache is a folder: ``cache.json`` (the axes, their dimensions and each embedder's identity,
content hash included) and Parquet parts ``part-<key>.parquet``, each written whole or not at
all (:func:`~tamis.storage.files.write_atomically`), so a killed run leaves only whole parts
and a rerun writes the missing ones. A clip's ``key`` is a hash of its audio source, offset
and duration: the same clip has the same key on every machine. A clip without an axis (no
transcript for the semantic one) has ``has_<axis>`` false there, and reads back as zeros.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tamis.storage.errors import CacheError
from tamis.storage.files import exists, filesystem, join, write_atomically

MANIFEST = "cache.json"
FIELDS = (("id", pa.string()), ("key", pa.string()), ("source", pa.string()),
          ("offset", pa.float64()), ("seconds", pa.float64()), ("speaker", pa.string()),
          ("transcript", pa.string()), ("speech_ratio", pa.float64()))


def clip_key(source: str, offset: float, duration: float | None) -> str:
    """A clip's cache key: the same clip, the same key, on every machine."""
    text = json.dumps([source, round(float(offset), 6),
                       None if duration is None else round(float(duration), 6)])
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _schema(axes: Mapping[str, int]) -> pa.Schema:
    return pa.schema([pa.field(n, t) for n, t in FIELDS]
                     + [pa.field(f"vec_{a}", pa.list_(pa.float32(), d)) for a, d in axes.items()]
                     + [pa.field(f"has_{a}", pa.bool_()) for a in axes])


class ClipCache:
    """A cache folder: :meth:`create` or :meth:`open` it, :meth:`write` parts, :meth:`read`."""

    def __init__(self, folder: str, axes: Mapping[str, int], identities: Mapping[str, dict]):
        self.folder, self.axes, self.identities = folder, dict(axes), dict(identities)

    @classmethod
    def create(cls, folder: str, axes: Mapping[str, int], identities: Mapping[str, dict]
               ) -> ClipCache:
        """A new cache, or the one already there if it was made with the same embedders
        (else :class:`CacheError`: the cached vectors would not be comparable)."""
        if exists(join(folder, MANIFEST)):
            cache = cls.open(folder)
            if cache.axes != dict(axes) or cache.identities != dict(identities):
                raise CacheError(f"the clip cache {folder} was made with other embedders "
                                 f"({sorted(cache.axes)}): choose another folder")
            return cache
        text = json.dumps({"axes": dict(axes), "identities": dict(identities)}, indent=1,
                          sort_keys=True).encode()
        write_atomically(join(folder, MANIFEST), lambda f: f.write(text))
        return cls(folder, axes, identities)

    @classmethod
    def open(cls, folder: str) -> ClipCache:
        path = join(folder, MANIFEST)
        if not exists(path):
            raise CacheError(f"{folder} is not a clip cache (no {MANIFEST})")
        fs, inner = filesystem(path)
        with fs.open_input_stream(inner) as f:
            data = json.loads(f.read())
        return cls(folder, data["axes"], data["identities"])

    def has(self, part: str) -> bool:
        return exists(join(self.folder, f"part-{part}.parquet"))

    def write(self, part: str, rows: Sequence[Mapping], vectors: Mapping[str, np.ndarray]
              ) -> None:
        """Write one part: ``rows`` (the :data:`FIELDS` of each clip) and, per axis, an
        ``(n, dim)`` array (rows of NaN or a missing axis: null)."""
        n = len(rows)
        columns = {name: pa.array([r.get(name) for r in rows], typ) for name, typ in FIELDS}
        for axis, dim in self.axes.items():
            x = np.asarray(vectors.get(axis, np.full((n, dim), np.nan)), dtype=np.float32)
            if x.shape != (n, dim):
                raise ValueError(f"axis {axis!r}: vectors of shape {x.shape}, not {(n, dim)}")
            missing = np.isnan(x).any(axis=1)
            x[missing] = 0.0
            columns[f"vec_{axis}"] = pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), dim)
            columns[f"has_{axis}"] = pa.array(~missing)
        table = pa.Table.from_pydict(columns, schema=_schema(self.axes))
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        write_atomically(join(self.folder, f"part-{part}.parquet"),
                         lambda f: f.write(buffer.getvalue()))

    def read(self) -> dict:
        """Every cached clip, in key order (the same whatever order the parts were written
        in): the :data:`FIELDS` as lists and arrays, and ``vectors`` per axis (zeros where
        a clip has none)."""
        import pyarrow.fs as pafs

        fs, root = filesystem(self.folder)
        found = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
        tables = []
        for info in sorted(found, key=lambda i: i.base_name):
            if info.is_file and info.base_name.startswith("part-") and \
                    info.base_name.endswith(".parquet"):
                with fs.open_input_stream(info.path) as f:
                    tables.append(pq.read_table(io.BytesIO(f.read())))
        table = (pa.concat_tables(tables) if tables else _schema(self.axes).empty_table())
        table = table.sort_by("key")
        out = {name: table.column(name).to_pylist() for name, _ in FIELDS}
        for name in ("offset", "seconds", "speech_ratio"):
            out[name] = np.array([np.nan if v is None else v for v in out[name]], np.float64)
        out["vectors"] = {}
        for axis, dim in self.axes.items():
            column = table.column(f"vec_{axis}").combine_chunks()
            x = column.flatten().to_numpy().reshape(-1, dim).astype(np.float32, copy=True)
            x[~table.column(f"has_{axis}").to_numpy(zero_copy_only=False)] = 0.0
            out["vectors"][axis] = x
        return out
