import pyarrow as pa

from tamis.selectors.tokens import count_tokens, estimate_tokens


def test_counts_words_and_punctuation_in_any_script():
    texts = pa.array(["Hello, world!", "it's", "café naïve", "日本語 テキスト", None, "", "  "])
    assert count_tokens(texts).tolist() == [4, 3, 2, 2, 0, 0, 0]


def test_counts_chunked_arrays():
    texts = pa.chunked_array([["a b"], ["c"]])
    assert count_tokens(texts).tolist() == [2, 1]


def test_estimate_scales_with_bytes():
    assert estimate_tokens(0) == 0
    assert estimate_tokens(48_000) == 10_000


def test_the_byte_classes_count_as_the_regex_does():
    import numpy as np
    import pyarrow.compute as pc

    from tamis.selectors.tokens import TOKEN_PATTERN

    rng = np.random.default_rng(0)
    alphabet = [chr(i) for i in range(128)] + [
        "é", "日", "\u00a0", "\u2003", "\u2028", "’", "—", "«", "\u0301", "٣", "€", "😀",
        "𝔸", "ß", "Ω", "\u200b", "\ufeff", "ﬁ", "\U0001F3FD", "ـ", "々"]
    texts = ["".join(rng.choice(alphabet, size=rng.integers(0, 40))) for _ in range(2000)]
    texts += ["word", "a_b-c", "  lead", "trail  ", "x", "", "\x0b\x00", "it's 2024!"]
    array = pa.array(texts + [None])
    regex = pc.fill_null(pc.count_substring_regex(array, TOKEN_PATTERN), 0).to_numpy()
    assert count_tokens(array).tolist() == regex.tolist()
    # a slice (non-zero offset), large strings, and a text's first word after another's last
    sliced = array.slice(5, 300)
    assert count_tokens(sliced).tolist() == regex[5:305].tolist()
    large = array.cast(pa.large_string())
    assert count_tokens(large).tolist() == regex.tolist()
    assert count_tokens(pa.array(["ab", "cd", "e f"])).tolist() == [1, 1, 2]
    # code points newer than this Python's Unicode tables are classed by the regex engine
    newer = pa.array(["\U00031350\U00031351\U00031352", "a\u0cf3b"])
    regex = pc.fill_null(pc.count_substring_regex(newer, TOKEN_PATTERN), 0).to_numpy()
    assert count_tokens(newer).tolist() == regex.tolist()
