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
