"""Every text-quality signal, checked against values worked out by hand; the rule filters
drop with the name of the first rule failed."""

from __future__ import annotations

import numpy as np
import pytest

from tamis.selectors.rules import DEFAULT_SET, first_failure, rule_names, ruleset
from tamis.selectors.signals import SIGNALS, signals, stop_list

LINES = "The cat sat.\nThe cat sat.\n- item one\nwww.example.com ..."
REPEATS = "a b c d e f a b c d e f"
CHINESE = "我爱猫。我爱猫。"
PARAGRAPHS = "Hello world.\n\nHello world.\n\nBye."
MARKUP = "<div>42</div> & x=1"


@pytest.fixture(scope="module")
def values() -> dict[str, np.ndarray]:
    return signals([LINES, REPEATS, CHINESE, PARAGRAPHS, MARKUP, ""])


def row(values, i: int) -> dict[str, float]:
    return {name: float(values[name][i]) for name in SIGNALS}


def test_lines_words_and_characters(values):
    v = row(values, 0)
    # words: The cat sat. The cat sat. - item one www.example.com ...  (46 word chars)
    assert v["n_words"] == 11 and v["n_chars"] == 56
    assert v["mean_word_length"] == pytest.approx(46 / 11)
    assert v["symbol_word_ratio"] == pytest.approx(1 / 11)  # one "..."
    assert v["alpha_word_share"] == pytest.approx(9 / 11)  # "-" and "..." have no letter
    assert v["stop_words"] == 2  # "the" twice (Gopher's eight)
    normal = ["the", "cat", "sat", "the", "cat", "sat", "-", "item", "one", "www.example.com",
              "..."]
    english = stop_list("en")
    assert v["stop_word_ratio"] == pytest.approx(sum(w in english for w in normal) / 11)
    assert v["punct_line_share"] == 0.75  # the last line ends in "."
    assert v["bullet_line_share"] == 0.25 and v["ellipsis_line_share"] == 0.25
    assert v["short_line_share"] == 1.0
    assert v["dup_line_chars"] == pytest.approx(12 / 53)
    assert v["dup_paragraph_chars"] == 0.0  # one paragraph
    # bigrams "the cat" (6 chars) and "cat sat." (7) both twice: the longer one counts
    assert v["top_2gram_chars"] == pytest.approx(14 / 46)
    assert v["top_3gram_chars"] == pytest.approx(20 / 46)
    assert v["top_4gram_chars"] == 0.0  # no 4-gram occurs twice
    assert all(v[f"dup_{n}gram_chars"] == 0.0 for n in range(5, 11))
    assert v["upper_ratio"] == pytest.approx(2 / 38)
    assert v["digit_ratio"] == 0.0 and v["markup_ratio"] == 0.0
    assert v["url_density"] == pytest.approx(1 / 11)
    assert v["newline_ratio"] == pytest.approx(3 / 11)


def test_repeated_ngrams_count_each_character_once(values):
    v = row(values, 1)
    assert v["n_words"] == 12 and v["mean_word_length"] == 1.0
    assert v["top_2gram_chars"] == pytest.approx(4 / 12)
    assert v["top_3gram_chars"] == pytest.approx(6 / 12)
    assert v["top_4gram_chars"] == pytest.approx(8 / 12)
    # the 5-grams repeated at words 6 and 7 cover words 6 to 11 once
    assert v["dup_5gram_chars"] == pytest.approx(6 / 12)
    assert v["dup_6gram_chars"] == pytest.approx(6 / 12)
    assert v["dup_7gram_chars"] == 0.0
    assert v["punct_line_share"] == 0.0 and v["short_line_share"] == 1.0


def test_chinese_ideographs_are_words(values):
    v = row(values, 2)
    assert v["n_words"] == 8  # 我 爱 猫 。 twice
    assert v["mean_word_length"] == 1.0
    assert v["alpha_word_share"] == pytest.approx(6 / 8)
    assert v["top_2gram_chars"] == pytest.approx(4 / 8)
    assert v["top_4gram_chars"] == pytest.approx(8 / 8)
    assert v["dup_5gram_chars"] == 0.0
    assert v["punct_line_share"] == 1.0  # "。" ends a sentence


def test_paragraphs_markup_digits_and_the_empty_text(values):
    v = row(values, 3)
    assert v["dup_paragraph_chars"] == pytest.approx(12 / 28)
    assert v["dup_line_chars"] == pytest.approx(12 / 28)  # blank lines are not lines
    v = row(values, 4)
    assert v["n_chars"] == 19
    assert v["markup_ratio"] == pytest.approx(6 / 19)  # < > < > & =
    assert v["digit_ratio"] == pytest.approx(3 / 19)
    assert v["upper_ratio"] == 0.0
    assert all(value == 0.0 for value in row(values, 5).values())


def test_a_batch_gives_each_text_the_values_it_has_alone():
    texts = [LINES, REPEATS, CHINESE, PARAGRAPHS, MARKUP, "", "one more text. " * 30]
    together = signals(texts)
    for i, text in enumerate(texts):
        alone = signals([text])
        for name in SIGNALS:
            assert together[name][i] == alone[name][0], (name, i)


PROSE = ("The history of the river valley is a story of farms and of the towns that grew "
         "around them. Each spring the water rose, and the people who lived there learned to "
         "build their houses on the higher ground. Over the centuries they dug canals, "
         "raised walls, and kept records of every flood that they could remember.")


TAGS = "river farm town wall canal flood house spring water people".split()


def reasons(texts: list[str], **limits) -> list[str | None]:
    rules = ruleset(DEFAULT_SET, "en", limits)
    failed = first_failure(rules, signals(texts))
    return [None if f < 0 else rules[f].name for f in failed]


def test_the_rules_drop_with_the_first_rule_failed():
    bullets = "\n".join(f"- the {w} stretches along the northern meadows." for w in
                        "river farm town wall canal flood house spring water people".split())
    texts = [
        PROSE,
        "The river rose again.",  # 4 words
        " ".join(["12"] * 60),  # short words, also no stop words
        " ".join(f"#{w}" for w in TAGS) + " " + PROSE,  # 10 of 66 words hold '#'
        bullets,
        "\n".join([PROSE] * 3),  # the same paragraph three times, on lines
        PROSE.replace(".", ""),  # no line ends in punctuation
    ]
    assert reasons(texts) == [None, "gopher_min_words", "gopher_short_words",
                              "gopher_symbol_ratio", "gopher_bullet_lines",
                              "dup_line_fraction", "fineweb_punct_lines"]


def test_limits_change_or_turn_off_a_rule():
    texts = [PROSE, " ".join(f"#{w}" for w in TAGS) + " " + PROSE]
    assert reasons(texts, gopher_min_words=1000) == ["gopher_min_words"] * 2
    assert reasons(texts, gopher_symbol_ratio=None) == [None, None]
    # the same tag ten times: with the symbol rule off, the repetition names the drop
    repeated = [" ".join(["#tag"] * 10) + " " + PROSE]
    assert reasons(repeated, gopher_symbol_ratio=None) == ["top_2gram_fraction"]
    assert "gopher_symbol_ratio" not in [r.name for r in ruleset(
        DEFAULT_SET, "en", {"gopher_symbol_ratio": None})]
    with pytest.raises(ValueError, match="unknown rule"):
        ruleset(DEFAULT_SET, "en", {"gopher_min_word": 10})
    with pytest.raises(ValueError, match="unknown rule set"):
        ruleset("c5", "en")


def test_languages_without_spaces_skip_the_word_length_rules():
    english, chinese = (ruleset(DEFAULT_SET, lang) for lang in ("en", "zh"))
    names = [r.name for r in chinese]
    assert "gopher_short_words" not in names and "gopher_short_words" in rule_names()
    assert {r.name: r.limit for r in chinese}["gopher_min_words"] == 100
    assert len(english) == len(rule_names())
