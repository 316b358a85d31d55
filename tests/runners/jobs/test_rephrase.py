"""``tamis rephrase`` end to end through the OpenAI-compatible backend, against a real HTTP
server on loopback that misbehaves on purpose: every (chunk, style) ends as one row with its
reason, the accounting adds up, a rerun sends nothing, a killed run resumes from its journal,
and the mixing manifest holds the ratio."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from corpora import write_config
from http_fault_server import FaultServer

from tamis.storage.manifest import verify
from tamis.storage.mixture import MixtureReader

pytest.importorskip("sentencex")
pytest.importorskip("aiohttp")
pytestmark = pytest.mark.slow

BASE = ("The harbour was built in the twelfth century by merchants from the north. Ships "
        "carried wool, salt and timber along the coast. In winter the storms closed the port "
        "for weeks at a time. The town grew rich and built a stone church above the quay. "
        "Its records survive in the county archive, with lists of cargoes and tolls. ")
#: marker → the reason every style of that chunk ends with (None: rephrased)
FAULTS = {"": None, "FAULT_500x2": None, "FAULT_429": None, "FAULT_BADJSON": None,
          "FAULT_TRUNCATE": None, "FAULT_NOUSAGE": None, "FAULT_500x99": "retries_exhausted",
          "FAULT_SLOWx99": "timeout", "FAULT_400": "http_error", "FAULT_LENGTHx99": "truncated",
          "FAULT_REFUSEx99": "meta_phrase", "FAULT_FILTERx99": "refusal"}
KEY = "sk-test-0123456789abcdef"


def _tokenizer() -> str:
    from tamis.embeddings.sentence import DEFAULT_MODEL, model_info

    return model_info(DEFAULT_MODEL, False, None).path


@pytest.fixture
def corpus(tmp_path) -> Path:
    rows = [{"id": f"doc-{i:02d}", "text": BASE + (f"A clerk wrote {m} in the margin. " if m
                                                  else "")}
            for i, m in enumerate(FAULTS)]
    rows.append({"id": "tiny", "text": "Too short."})
    rows.append({"id": "long", "text": " ".join(["word"] * 400)})  # one sentence, too long
    path = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _config(tmp_path, corpus, server, **more) -> Path:
    keys = {"inputs": [str(corpus)], "output": str(tmp_path / "out"), "backend": "openai",
            "model": "fault-model", "tokenizer": _tokenizer(),
            "chunk": {"target_tokens": 200, "max_tokens": 200, "min_tokens": 8},
            "sampling": {"max_new_tokens": 200},
            "http": {"base_url": server.url, "api_key_env": "TAMIS_TEST_KEY", "timeout_s": 0.3,
                     "max_retries": 3, "backoff_s": 0.01, "max_backoff_s": 0.05,
                     "concurrency": 16, "retry_budget": 1.0},
            "batch_size": 12, **more}
    return write_config(tmp_path / "r.yaml", **keys)


def _rows(folder: Path, prefix: str = "") -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in sorted(folder.glob(prefix + "*.parquet"))])


def test_every_request_ends_as_one_row_with_its_reason_and_a_rerun_sends_none(
        tmp_path, corpus, run_cli, monkeypatch):
    monkeypatch.setenv("TAMIS_TEST_KEY", KEY)
    with FaultServer(slow_s=1.0) as server:
        config = _config(tmp_path, corpus, server)
        code, out, err = run_cli("rephrase", config, "--workers", "1")
        assert code == 0, err
        out_dir = tmp_path / "out"
        manifest = verify(str(out_dir))
        sent = server.count

        # 12 chunks sent in 4 styles; the long one's 4 are rejected unsent, the tiny doc dropped
        acc = manifest["accounting"]
        assert acc["rows_in"] == 13 * 4 and manifest["chunks"]["too_long"] == 1
        assert manifest["documents"] == {"rows_in": 14, "chunked": 13,
                                         "rows_dropped": {"too_short": 1}, "rows_rejected": {}}
        kept = _rows(out_dir / "data")
        rejected = _rows(out_dir / "rejects", "requests-")
        assert kept.num_rows + rejected.num_rows == 52
        assert sorted(kept.column("id").to_pylist() + rejected.column("id").to_pylist()) == \
            sorted(set(kept.column("id").to_pylist() + rejected.column("id").to_pylist()))
        fate = {r["doc_id"]: set() for r in kept.to_pylist() + rejected.to_pylist()}
        for r in kept.to_pylist():
            fate[r["doc_id"]].add(None)
        for r in rejected.to_pylist():
            fate[r["doc_id"]].add(r["reason"])
        for i, (marker, reason) in enumerate(FAULTS.items()):
            assert fate[f"doc-{i:02d}"] == {reason}, marker
        assert fate["long"] == {"too_long"}
        expected = {r: 4 * list(FAULTS.values()).count(r) for r in set(FAULTS.values()) if r}
        assert acc["rows_rejected"] == {**expected, "too_long": 4}
        assert acc["rows_kept"] == 4 * list(FAULTS.values()).count(None) == kept.num_rows

        # the 400 was not retried; retries stayed within each request's and the job's budget
        # (here 1.0 per request + 10: which requests a tight budget stops depends on timing)
        assert server.attempts("FAULT_400") == 4
        assert sent <= 48 + 3 * 4 * 6 and sent - 48 <= 1.0 * 48 + 10
        qa = [r["text"] for r in kept.to_pylist() if r["style"] == "qa"]
        assert qa and all("Question:" in t and "Answer:" in t for t in qa)
        assert {r["authorization"] for r in server.requests} == {f"Bearer {KEY}"}
        assert KEY not in (out_dir / "manifest.json").read_text() + out + err

        assert manifest["requests"]["sent_this_run"] == 48
        styles = manifest["styles"]
        assert set(styles) == {"easy", "medium", "hard", "qa"}
        assert sum(s["requests"] for s in styles.values()) == 52

        # a second run: every group is finished, nothing is sent
        code, _, err = run_cli("rephrase", config, "--workers", "1")
        assert code == 0, err
        again = verify(str(out_dir))
        assert server.count == sent and again["requests"]["sent_this_run"] == 0
        assert again["requests"]["reused"] == 48
        assert _rows(out_dir / "data").equals(kept)


def test_a_killed_run_resumes_from_its_journal_and_loses_only_what_was_in_flight(
        tmp_path, corpus, run_cli, monkeypatch):
    monkeypatch.setenv("TAMIS_TEST_KEY", KEY)
    with FaultServer() as server:
        config = _config(tmp_path, corpus, server, batch_size=8)
        assert run_cli("rephrase", config, "--workers", "1")[0] == 0
        out_dir = tmp_path / "out"
        first = verify(str(out_dir))
        kept = _rows(out_dir / "data")
        # What a kill mid-group leaves: the batches that returned, no shards, no done record.
        journal = next((out_dir / "journal").iterdir())
        batches = sorted(journal.glob("r*.parquet"))
        assert len(batches) == -(-48 // 8)
        lost = pq.read_metadata(batches[2]).num_rows
        batches[2].unlink()
        for done in journal.glob("done-*.json"):
            done.unlink()
        (out_dir / "manifest.json").unlink()
        before = server.count
        code, _, err = run_cli("rephrase", config, "--workers", "1")
        assert code == 0, err
        resumed = verify(str(out_dir))
        # distinct requests: a faulty one is attempted more than once
        again = {json.dumps(r["body"], sort_keys=True) for r in server.requests[before:]}
        assert resumed["requests"]["sent_this_run"] == lost == len(again)
        assert resumed["accounting"] == first["accounting"]
        assert _rows(out_dir / "data").column("id").to_pylist() == kept.column("id").to_pylist()


def test_the_mixing_manifest_holds_the_ratio_and_pairs_chunks_with_rephrases(
        tmp_path, corpus, run_cli, monkeypatch):
    monkeypatch.setenv("TAMIS_TEST_KEY", KEY)
    with FaultServer() as server:
        config = _config(tmp_path, corpus, server, styles=["easy", "qa"],
                         mix={"real": 1, "synthetic": 3, "shares": [
                             {"style": "easy", "share": 2}, {"style": "qa", "share": 1}]})
        assert run_cli("rephrase", config, "--workers", "1")[0] == 0
    mix = json.loads((tmp_path / "out" / "mixture.json").read_text())
    sources = {s["name"]: s for s in mix["sources"]}
    assert sources["real"]["share"] == pytest.approx(0.25)
    assert sources["easy"]["share"] == pytest.approx(0.5)
    assert sources["qa"]["share"] == pytest.approx(0.25)
    total = mix["total_tokens"]
    for s in sources.values():
        assert s["tokens"] == pytest.approx(total * s["share"], abs=1)
        assert s["passes"] == pytest.approx(s["tokens"] / s["tokens_available"], abs=1e-2)
    assert max(s["passes"] for s in sources.values()) == pytest.approx(1.0, rel=1e-3)
    reader = MixtureReader(str(tmp_path / "out"))
    pairs = list(reader.pairs())
    assert len(pairs) == 12  # the chunks sent (the too_long one is not a real source)
    for pair in pairs:
        for style, text in pair["rephrases"].items():
            assert set(text.split()) <= set(pair["chunk"]["text"].split()) | {
                "Question:", "What", "is", "said", "next?", "Answer:"}, style
    drawn = reader.sample(4000, seed=1)
    tokens = {}
    for r in drawn:
        tokens[r["source"]] = tokens.get(r["source"], 0) + r["n_tokens"]
    share = {k: v / sum(tokens.values()) for k, v in tokens.items()}
    for name, s in sources.items():
        assert share[name] == pytest.approx(s["share"], abs=0.04)


def test_the_dry_run_writes_nothing_and_prices_the_job(tmp_path, corpus, run_cli):
    with FaultServer() as server:
        config = _config(tmp_path, corpus, server, tokens_per_second=1000.0)
        code, out, err = run_cli("rephrase", config, "--dry-run")
        assert code == 0, err
        assert server.count == 0
    assert not (tmp_path / "out").exists()
    assert "requests: ~" in out and "at 1,000 output tokens/s (config rate" in out
