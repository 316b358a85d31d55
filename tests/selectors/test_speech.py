"""Speech selection: z-scored late fusion, and budget-aware MMR in seconds against a
brute-force reference, with speaker caps, ties by id and the same picks in any input order."""

from __future__ import annotations

import numpy as np
import pytest

from tamis.selectors.precision import quantize
from tamis.selectors.speech import budget_mmr, fuse, zscore


def _world(n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    vectors = {"speaker": rng.normal(size=(n, 8)), "acoustic": rng.normal(size=(n, 5))}
    vectors["acoustic"][::7] = 0  # clips without this axis
    relevance = rng.normal(size=n)
    seconds = quantize(rng.uniform(1.0, 12.0, n))
    ids = [f"clip-{i:03d}" for i in range(n)]
    speakers = [f"s{i % 6}" for i in range(n)]
    return vectors, relevance, seconds, ids, speakers


def _reference(vectors, weights, relevance, seconds, budget, ids, lam, seed, speakers=None,
               cap=None):
    """The same greedy rule, one clip at a time in plain Python (a candidate list sorted by
    its (seed, id) key, so the first of equal gains wins)."""
    from tamis.selectors.precision import tie_keys

    keys = tie_keys(ids, seed)
    units = {a: [v / np.linalg.norm(v) if np.any(v) else v for v in x]
             for a, x in vectors.items()}
    finite = [r for r in relevance if np.isfinite(r)]
    lo, hi = min(finite), max(finite)
    unit = [float(quantize((r - lo) / (hi - lo))) for r in relevance]

    def sim(i, j):
        total = mass = 0.0
        for a, x in units.items():
            if np.any(x[i]) and np.any(x[j]):
                total += weights[a] * float(np.sum(x[i] * x[j]))
                mass += weights[a]
        return float(quantize(total / mass)) if mass else 0.0

    picked, spent, by_speaker = [], 0.0, {}
    while True:
        best = None
        for i in sorted(range(len(ids)), key=lambda i: keys[i]):
            if i in picked or spent + seconds[i] > budget + 1e-9:
                continue
            if cap is not None and by_speaker.get(speakers[i], 0.0) + seconds[i] > cap + 1e-9:
                continue
            closest = max([0.0, *(sim(i, j) for j in picked)])
            gain = float(quantize(lam * unit[i] + (1 - lam) * (1 - closest)))
            if best is None or gain > best[0]:
                best = (gain, i)
        if best is None:
            return picked
        i = best[1]
        picked.append(i)
        spent += seconds[i]
        by_speaker[speakers[i] if speakers else i] = by_speaker.get(
            speakers[i] if speakers else i, 0.0) + seconds[i]


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.7, 1.0])
def test_budget_mmr_matches_the_brute_force_reference(lam):
    vectors, relevance, seconds, ids, _ = _world()
    weights = {"speaker": 2.0, "acoustic": 1.0}
    got = budget_mmr(vectors, weights, relevance, seconds, 60.0, ids, lam=lam, seed=3)
    assert got.tolist() == _reference(vectors, weights, relevance, seconds, 60.0, ids, lam, 3)


def test_the_budget_is_filled_in_seconds_and_never_passed():
    vectors, relevance, seconds, ids, _ = _world()
    got = budget_mmr(vectors, {"speaker": 1.0}, relevance, seconds, 45.0, ids)
    spent = seconds[got].sum()
    assert spent <= 45.0
    left = np.setdiff1d(np.arange(len(ids)), got)
    assert (seconds[left] > 45.0 - spent).all()  # nothing else would have fitted
    assert len(budget_mmr(vectors, {"speaker": 1.0}, relevance, seconds, 0.0, ids)) == 0
    everything = budget_mmr(vectors, {"speaker": 1.0}, relevance, seconds, 1e6, ids)
    assert sorted(everything.tolist()) == list(range(len(ids)))


def test_speaker_caps_hold_and_match_the_reference():
    vectors, relevance, seconds, ids, speakers = _world()
    weights = {"speaker": 1.0, "acoustic": 1.0}
    got = budget_mmr(vectors, weights, relevance, seconds, 120.0, ids, speakers=speakers,
                     speaker_cap=15.0)
    by = {}
    for i in got:
        by[speakers[i]] = by.get(speakers[i], 0.0) + seconds[i]
    assert max(by.values()) <= 15.0 and len(by) == 6
    assert got.tolist() == _reference(vectors, weights, relevance, seconds, 120.0, ids, 0.7, 0,
                                      speakers, 15.0)


def test_the_same_picks_in_any_input_order():
    vectors, relevance, seconds, ids, _ = _world()
    weights = {"speaker": 1.0, "acoustic": 0.5}
    got = budget_mmr(vectors, weights, relevance, seconds, 50.0, ids, seed=7)
    perm = np.random.default_rng(1).permutation(len(ids))
    again = budget_mmr({a: v[perm] for a, v in vectors.items()}, weights, relevance[perm],
                       seconds[perm], 50.0, [ids[i] for i in perm], seed=7)
    assert [ids[i] for i in got] == [ids[perm[i]] for i in again]


def test_ties_go_by_the_seeded_id_key():
    n = 6
    vectors = {"speaker": np.eye(n)}
    got = {tuple(budget_mmr(vectors, {"speaker": 1.0}, np.zeros(n), np.ones(n), 1.0,
                            [f"c{i}" for i in range(n)], seed=s).tolist()) for s in range(8)}
    assert len(got) > 1  # the seed, not the input order, breaks the tie


def test_diversity_prefers_another_voice():
    base = np.array([1.0, 0.0, 0.0])
    vectors = {"speaker": np.stack([base, base * 0.999 + [0, 0.04, 0], [0.0, 1.0, 0.0]])}
    relevance = np.array([1.0, 0.99, 0.9])
    ids = ["a", "b", "c"]
    assert budget_mmr(vectors, {"speaker": 1.0}, relevance, np.ones(3), 2.0, ids,
                      lam=1.0).tolist() == [0, 1]
    assert budget_mmr(vectors, {"speaker": 1.0}, relevance, np.ones(3), 2.0, ids,
                      lam=0.5).tolist() == [0, 2]


def test_zscore_and_fusion_skip_missing_axes():
    z = zscore(np.array([1.0, 2.0, 3.0, np.nan]))
    assert np.isnan(z[3]) and z[1] == 0.0 and z[0] == -z[2]
    assert (zscore(np.full(3, 5.0)) == 0).all()
    fused = fuse({"speaker": np.array([1.0, 2.0, 3.0]),
                  "semantic": np.array([np.nan, 30.0, 10.0])}, {"speaker": 1.0, "semantic": 3.0})
    zs, zm = zscore(np.array([1.0, 2.0, 3.0])), zscore(np.array([np.nan, 30.0, 10.0]))
    assert fused[0] == zs[0]  # no transcript: the speaker axis alone
    assert fused[1] == pytest.approx((zs[1] + 3 * zm[1]) / 4, abs=2 ** -16)
    assert np.isnan(fuse({"a": np.array([np.nan])}, {"a": 1.0})[0])
    with pytest.raises(ValueError, match="positive weight"):
        fuse({"a": np.zeros(2)}, {"a": 0.0})


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="lambda"):
        budget_mmr({"a": np.eye(2)}, {"a": 1}, np.zeros(2), np.ones(2), 1, ["x", "y"], lam=2)
    with pytest.raises(ValueError, match="duration"):
        budget_mmr({"a": np.eye(2)}, {"a": 1}, np.zeros(2), np.zeros(2), 1, ["x", "y"])


def test_axis_relevance_top_k_against_brute_force_and_centroids():
    pytest.importorskip("faiss")
    from tamis.selectors.speech import axis_relevance

    rng = np.random.default_rng(2)
    target = rng.normal(size=(30, 6)) + [3, 0, 0, 0, 0, 0]
    pool = np.vstack([rng.normal(size=(20, 6)) + [3, 0, 0, 0, 0, 0], rng.normal(size=(20, 6)),
                      np.zeros((2, 6))])
    got = axis_relevance(pool, target, k=5)
    t = target / np.linalg.norm(target, axis=1, keepdims=True)
    p = pool[:40] / np.linalg.norm(pool[:40], axis=1, keepdims=True)
    brute = np.sort(p @ t.T, axis=1)[:, -5:].mean(axis=1)
    assert np.allclose(got[:40], brute, atol=2 ** -15)
    assert np.isnan(got[40:]).all()  # clips without this axis
    assert got[:20].mean() > got[20:40].mean() + 0.3
    central = axis_relevance(pool, target, mode="centroids", centroids=4)
    assert np.isnan(central[40:]).all() and central[:20].mean() > central[20:40].mean()
    assert np.array_equal(central, axis_relevance(pool, target, mode="centroids",
                                                  centroids=4), equal_nan=True)
    assert np.isnan(axis_relevance(pool, np.zeros((3, 6)))).all()
    with pytest.raises(ValueError, match="mode"):
        axis_relevance(pool, target, mode="nearest")


def test_select_clips_finds_the_target_condition_within_budget():
    pytest.importorskip("faiss")
    from tamis.selectors.speech import select_clips

    rng = np.random.default_rng(4)
    n = 200
    condition = rng.random(n) < 0.25  # a quarter of the pool is in the target's condition
    acoustic = rng.normal(size=(n, 8)) + np.where(condition[:, None], 4.0, 0.0) * np.eye(8)[0]
    speaker = rng.normal(size=(n, 16))
    seconds = quantize(rng.uniform(2, 8, n))
    ids = [f"clip-{i:04d}" for i in range(n)]
    target = {"acoustic": rng.normal(size=(20, 8)) + 4.0 * np.eye(8)[0],
              "speaker": rng.normal(size=(20, 16))}
    pool = {"acoustic": acoustic, "speaker": speaker}
    budget = 0.1 * seconds.sum()
    out = select_clips(pool, target, {"acoustic": 1.0, "speaker": 0.2}, seconds, ids, budget,
                       seed=1)
    picked = out["picked"]
    assert seconds[picked].sum() <= budget
    precision = seconds[picked][condition[picked]].sum() / seconds[picked].sum()
    assert precision > 0.9 and condition.mean() < 0.3
    assert out["candidates"] < n and set(out["relevance"]) == {"acoustic", "speaker"}
    again = select_clips(pool, target, {"acoustic": 1.0, "speaker": 0.2}, seconds, ids,
                         budget, seed=1)
    assert np.array_equal(again["picked"], picked)
    wide = select_clips(pool, target, {"acoustic": 1.0, "speaker": 0.2}, seconds, ids, budget,
                        seed=1, prefilter=1e9)
    assert wide["candidates"] == n
    with pytest.raises(ValueError, match="prefilter"):
        select_clips(pool, target, {"acoustic": 1.0}, seconds, ids, budget, prefilter=0.5)
