"""The per-clip cache: parts written whole, read back exactly in key order whatever order
they were written in, missing axes as zeros, and a cache of other embedders refused."""

from __future__ import annotations

import numpy as np
import pytest

from tamis.storage.clip_cache import ClipCache, clip_key
from tamis.storage.errors import CacheError

AXES = {"speaker": 4, "semantic": 3}
IDS = {"speaker": {"content_hash": "sha256:aa"}, "semantic": {"content_hash": "sha256:bb"}}


def _rows(names):
    return [{"id": n, "key": clip_key(f"/data/{n}.wav", 0.0, 2.0 + i), "source": f"/data/{n}.wav",
             "offset": 0.0, "seconds": 2.0 + i, "speaker": f"s{i % 2}",
             "transcript": None if i == 1 else f"words {i}", "speech_ratio": 0.5}
            for i, n in enumerate(names)]


def test_parts_read_back_exactly_in_key_order(tmp_path):
    cache = ClipCache.create(str(tmp_path / "c"), AXES, IDS)
    rng = np.random.default_rng(0)
    speaker = rng.normal(size=(3, 4)).astype(np.float32)
    semantic = rng.normal(size=(3, 3)).astype(np.float32)
    semantic[1] = np.nan  # no transcript: no semantic vector
    rows = _rows(["a", "b", "c"])
    cache.write("1", rows[2:], {"speaker": speaker[2:], "semantic": semantic[2:]})
    cache.write("0", rows[:2], {"speaker": speaker[:2], "semantic": semantic[:2]})
    assert cache.has("0") and not cache.has("9")
    got = ClipCache.open(str(tmp_path / "c")).read()
    order = np.argsort([r["key"] for r in rows])
    assert got["id"] == [rows[i]["id"] for i in order]
    assert np.array_equal(got["vectors"]["speaker"], speaker[order])
    want = np.nan_to_num(semantic[order])
    assert np.array_equal(got["vectors"]["semantic"], want)
    assert got["transcript"] == [rows[i]["transcript"] for i in order]
    assert np.array_equal(got["seconds"], np.array([rows[i]["seconds"] for i in order]))


def test_the_same_clip_has_the_same_key_and_other_embedders_are_refused(tmp_path):
    assert clip_key("/x.wav", 0.5, 2.0) == clip_key("/x.wav", 0.5000000001, 2.0)
    assert clip_key("/x.wav", 0.5, 2.0) != clip_key("/x.wav", 1.5, 2.0)
    ClipCache.create(str(tmp_path / "c"), AXES, IDS)
    assert ClipCache.create(str(tmp_path / "c"), AXES, IDS).axes == AXES
    with pytest.raises(CacheError, match="other embedders"):
        ClipCache.create(str(tmp_path / "c"), AXES,
                         {**IDS, "speaker": {"content_hash": "sha256:cc"}})
    with pytest.raises(CacheError, match="not a clip cache"):
        ClipCache.open(str(tmp_path / "none"))
    with pytest.raises(ValueError, match="shape"):
        ClipCache.open(str(tmp_path / "c")).write("x", _rows(["a"]), {"speaker": np.zeros(4)})
    assert ClipCache.open(str(tmp_path / "c")).read()["id"] == []
