import re
from pathlib import Path

import pytest

from tamis.selectors.rephrase import (
    STYLES,
    SYSTEM,
    OutputRules,
    chunk_id,
    pack_sentences,
    prompt_hash,
    repetition,
    request_id,
    strip_meta,
    vicuna_prompt,
    wrap_styles,
)

METHODS = Path(__file__).resolve().parents[3] / "shared" / "METHODS.md"


def _documented() -> dict[str, str]:
    """The instructions as METHODS.md writes them (wrapped lines joined, \\" unescaped)."""
    text = METHODS.read_text()
    section = text[text.index("## WRAP"):text.index("## Bilingual")]
    section = re.sub(r"\n\s+", " ", section)
    found = dict(re.findall(r"- (easy|medium|hard|qa)[^:]*: \"(.*?:)\"", section))
    return {k: v.replace('\\"', '"') for k, v in found.items()}


@pytest.mark.skipif(not METHODS.exists(), reason="the methods notes are not beside the repo")
def test_the_four_styles_are_the_documented_prompts_word_for_word():
    documented = _documented()
    assert sorted(documented) == sorted(STYLES)
    assert documented == STYLES
    section = re.sub(r"\s+", " ", METHODS.read_text())
    assert f'"{SYSTEM}"' in section


def test_vicuna_prompt_has_system_user_and_assistant_in_order():
    style = wrap_styles(["qa"])[0]
    prompt = vicuna_prompt(style, "The cat sat.")
    assert prompt == f"{SYSTEM} USER: {STYLES['qa']}\nThe cat sat. ASSISTANT:"
    assert style.messages("x")[0] == {"role": "system", "content": SYSTEM}


def test_custom_styles_and_unknown_names():
    styles = wrap_styles(["easy", "legal"], {"legal": "Rewrite as a statute:"})
    assert [s.instruction for s in styles] == [STYLES["easy"], "Rewrite as a statute:"]
    with pytest.raises(ValueError, match="unknown style 'legal'"):
        wrap_styles(["legal"])


def test_prompt_hash_changes_with_instruction_system_and_template():
    easy = wrap_styles(["easy"])[0]
    hashes = {prompt_hash(easy, "vicuna"), prompt_hash(easy, "chat-abc"),
              prompt_hash(wrap_styles(["easy"], {"easy": "Simpler:"})[0], "vicuna"),
              prompt_hash(wrap_styles(["easy"], system="Be brief.")[0], "vicuna")}
    assert len(hashes) == 4
    assert prompt_hash(easy, "vicuna") == prompt_hash(wrap_styles(["easy"])[0], "vicuna")


def test_ids_are_stable_and_depend_on_every_part():
    assert chunk_id("doc-1", 0) == chunk_id("doc-1", 0)
    assert len({chunk_id("doc-1", 0), chunk_id("doc-1", 1), chunk_id("doc-2", 0)}) == 3
    base = dict(chunk="c", style="qa", model="m", phash="p",
                sampling={"temperature": 0.8, "top_p": 0.95}, seed=0)
    same = request_id(**{**base, "sampling": {"top_p": 0.95, "temperature": 0.8}})
    assert request_id(**base) == same
    changed = [request_id(**{**base, k: v}) for k, v in
               [("chunk", "d"), ("style", "easy"), ("model", "n"), ("phash", "q"),
                ("sampling", {"temperature": 1.0, "top_p": 0.95}), ("seed", 1)]]
    assert len({request_id(**base), *changed}) == 7


def test_packing_respects_the_target_and_never_splits_a_sentence():
    tokens = [120, 90, 80, 200, 50, 310, 40]
    chunks = pack_sentences(tokens, target=300, max_tokens=1000, min_tokens=60)
    assert [c[:2] for c in chunks] == [(0, 3), (3, 5), (5, 7)]
    assert all(sum(tokens[s:e]) <= 300 or e - s == 1 for s, e, _ in chunks[:2])
    # The 40-token tail was merged into the 310-token sentence before it.
    assert chunks[-1] == (5, 7, False)
    # Every sentence is in exactly one chunk, in order.
    assert [i for s, e, _ in chunks for i in range(s, e)] == list(range(len(tokens)))


def test_a_sentence_over_the_context_is_marked_and_a_tail_that_cannot_merge_stays():
    chunks = pack_sentences([100, 2000, 10], target=300, max_tokens=1024, min_tokens=50)
    assert chunks == [(0, 1, False), (1, 2, True), (2, 3, False)]
    with pytest.raises(ValueError, match="target <= max_tokens"):
        pack_sentences([1], target=400, max_tokens=300, min_tokens=0)


@pytest.mark.parametrize("output", [
    "Here is a paraphrase of the paragraph:\nThe cat rested on the rug.",
    "Sure! Here's a simpler version for a toddler:\n\nThe cat rested on the rug.",
    "Below is the paragraph rewritten in a conversational format:\nThe cat rested on the rug.",
])
def test_a_leading_meta_segment_is_stripped(output):
    assert strip_meta(output) == "The cat rested on the rug."


def test_text_without_a_meta_segment_is_unchanged():
    text = "Here the river bends: a mill stood on it."
    assert strip_meta(text) == text


def test_output_rules_name_each_reason():
    rules = OutputRules()
    source = "The old mill by the river was built in 1820 and ground wheat for the town."
    ok = "Built in 1820, the riverside mill once ground the town's wheat."
    assert rules.check(ok, source, "medium") == (ok, None)
    assert rules.check("  \n", source, "easy")[1] == "empty"
    assert rules.check("As an AI language model, I think the mill was old and nice.",
                       source, "easy")[1] == "meta_phrase"
    assert rules.check(ok, source, "qa")[1] == "qa_structure"
    qa = "Question: When was the mill built? Answer: In 1820, to grind wheat."
    assert rules.check(qa, source, "qa")[1] is None
    assert rules.check("Old mill.", source, "hard")[1] == "length_ratio"
    assert rules.check(" ".join([source] * 5), source, "medium")[1] == "length_ratio"
    loop = "the mill the mill the mill the mill the mill the mill by the river"
    assert rules.check(loop, source, "easy")[1] == "degenerate_repetition"


def test_repetition_share():
    assert repetition("a b c a b c".split()) == pytest.approx(1 / 4)
    assert repetition("a b".split()) == 0.0


def test_settle_keeps_a_backend_reason_and_marks_truncation():
    from tamis.selectors.rephrase import settle

    rules = OutputRules()
    source = "The cat sat on the mat and looked at the door for a long time."
    assert settle("x", "error", "timeout", source, "easy", rules) == ("x", "timeout")
    assert settle(source, "length", None, source, "easy", rules)[1] == "truncated"
    kept = settle("Here is a paraphrase:\n\n" + source, "stop", None, source, "easy", rules)
    assert kept == (source, None)


def test_mixture_holds_the_ratio_and_reads_one_source_exactly_once():
    from tamis.selectors.rephrase import mixture

    plan = mixture(1000, {"easy": 900, "qa": 3000}, real=1, synthetic=1)
    s = plan["sources"]
    assert s["real"]["share"] == 0.5 and s["easy"]["share"] == s["qa"]["share"] == 0.25
    # real is the scarcest for its share: 1000 / 0.5 = 2000 tokens in all, real read once
    assert plan["total_tokens"] == 2000 and s["real"]["passes"] == 1.0
    assert (s["easy"]["tokens"], s["qa"]["tokens"]) == (500, 500)
    assert s["easy"]["passes"] == pytest.approx(500 / 900)
    assert s["qa"]["passes"] == pytest.approx(500 / 3000)
    scarce = mixture(1000, {"easy": 100, "qa": 3000})
    assert scarce["total_tokens"] == 400 and scarce["sources"]["easy"]["passes"] == 1.0
    assert max(x["passes"] for x in scarce["sources"].values()) == 1.0


def test_mixture_with_a_total_may_repeat_and_shares_are_normalised():
    from tamis.selectors.rephrase import mixture

    plan = mixture(100, {"easy": 100, "qa": 100}, real=1, synthetic=3,
                   shares={"easy": 2, "qa": 1}, total=800)
    s = plan["sources"]
    assert (s["real"]["tokens"], s["easy"]["tokens"], s["qa"]["tokens"]) == (200, 400, 200)
    assert (s["real"]["passes"], s["easy"]["passes"], s["qa"]["passes"]) == (2.0, 4.0, 2.0)
    empty = mixture(100, {"easy": 0}, real=1, synthetic=1)
    assert empty["total_tokens"] == 0 and empty["missing"] == ["easy"]
    with pytest.raises(ValueError):
        mixture(100, {"easy": 10}, shares={"hard": 1})
