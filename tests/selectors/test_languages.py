"""Language codes, scripts, letter evidence, segments, foreign shares and FineWeb-2's
minimum score."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tamis.selectors.languages import (
    CJK_WEIGHT,
    ISO3,
    LID_CODES,
    foreign_share,
    foreign_shares,
    letter_counts,
    min_score_from_histogram,
    normalize,
    script_of,
    segments,
    with_script,
)


@pytest.mark.parametrize("code", ["__label__fr", "fr", "FR", "fra", "fre", "fra_Latn", "fr-FR",
                                  "fr_FR", " fr "])
def test_normalize_reads_every_spelling_of_french(code):
    assert normalize(code) == "fr"


@pytest.mark.parametrize(("code", "expected"), [
    ("zh-Hans", "zh"), ("zh_CN", "zh"), ("zho_Hani", "zh"), ("chi", "zh"), ("cmn_Hani", "zh"),
    ("ger", "de"), ("deu_Latn", "de"), ("dut", "nl"), ("cze", "cs"), ("gre", "el"),
    ("per", "fa"), ("rum", "ro"), ("slo", "sk"), ("alb", "sq"), ("arm", "hy"), ("baq", "eu"),
    ("bur", "my"), ("geo", "ka"), ("ice", "is"), ("mac", "mk"), ("may", "ms"), ("tib", "bo"),
    ("wel", "cy"), ("nob_Latn", "no"), ("arb_Arab", "ar"), ("gsw", "als"), ("als", "als"),
    ("hbs", "sh"), ("bih", "bh"), ("yue_Hant", "yue"), ("__label__eml", "eml"), ("iw", "he"),
])
def test_normalize_maps_iso_639_3_and_bibliographic_codes_back(code, expected):
    assert normalize(code) == expected


@pytest.mark.parametrize("code", ["xx", "klingon", "tlh_Latn", "mao", "", "__label__"])
def test_normalize_names_a_code_lid176_does_not_know(code):
    with pytest.raises(ValueError, match=f"unknown language code '{code}'"):
        normalize(code)


def test_iso3_covers_every_lid_code_once():
    assert len(LID_CODES) == 176 and len(set(LID_CODES)) == 176
    assert set(ISO3) == set(LID_CODES)
    assert len(set(ISO3.values())) == 176
    assert all(len(v) == 3 and v.isalpha() for v in ISO3.values())
    assert (ISO3["zh"], ISO3["no"], ISO3["sh"], ISO3["als"], ISO3["eml"]) == (
        "zho", "nor", "hbs", "gsw", "eml")
    assert all(normalize(code) == code and normalize(ISO3[code]) == code for code in LID_CODES)


def test_with_script_builds_fineweb2_names():
    assert with_script("fr", "Latn") == "fra_Latn"
    assert with_script("zh-CN", "hani") == "zho_Hani"
    with pytest.raises(ValueError, match="ISO 15924"):
        with_script("fr", "Latin")


def test_script_of_names_the_script_of_most_letters():
    texts = ["Bonjour à tous", "Привет, мир", "中文的句子", "ひらがなとカタカナ", "漢字とかな",
             "한국어 문장", "韓國語 한국어", "مرحبا بالعالم", "שלום עולם", "Καλημέρα",
             "नमस्ते दुनिया", "สวัสดีครับ", "", "123 + 456 = 579 !", "ᏣᎳᎩ ᎦᏬᏂᎯᏍᏗ",
             "Linux ядро kernel"]
    assert script_of(texts) == ["Latn", "Cyrl", "Hani", "Jpan", "Jpan", "Kore", "Kore", "Arab",
                                "Hebr", "Grek", "Deva", "Thai", "Zyyy", "Zyyy", "Zzzz", "Latn"]
    assert script_of([]) == []


def test_letter_counts_weigh_ideographs_kana_and_hangul_syllables():
    counts = letter_counts(["abc 12 !", "Ça va", "中文", "ひらカタ", "한국", "ㄱㄴ", "", "١٢٣"])
    assert counts.dtype == np.int64
    assert counts.tolist() == [3, 4, 2 * CJK_WEIGHT, 4 * CJK_WEIGHT, 2 * CJK_WEIGHT, 2, 0, 0]
    text = "Ein Satz mit Wörtern und 漢字 \U0002000b"
    expected = sum(CJK_WEIGHT if ord(c) >= 0x3000 else 1 for c in text if c.isalpha())
    assert letter_counts([text])[0] == expected


def test_letter_counts_match_str_isalpha_on_random_code_points():
    rng = np.random.default_rng(0)
    points = rng.integers(0, 0x2FFFF, size=(50, 40))
    texts = ["".join(chr(int(p)) for p in row if not 0xD800 <= p < 0xE000) for row in points]
    heavy = letter_counts(texts) - np.array([sum(c.isalpha() for c in t) for t in texts])
    assert (heavy >= 0).all() and (heavy % (CJK_WEIGHT - 1) == 0).all()


def test_segments_split_paragraphs_at_blank_lines_and_lines():
    text = "  First line\nsecond line\n\n \t \nNext paragraph  \n\n\n\nLast\r\n"
    assert segments(text, "paragraph") == ["First line\nsecond line", "Next paragraph", "Last"]
    assert segments(text, "line") == ["First line", "second line", "Next paragraph", "Last"]
    assert segments("", "paragraph") == [] and segments(" \n ", "line") == []
    with pytest.raises(ValueError, match="unit must be"):
        segments(text, "sentence")


def test_foreign_share_counts_confident_other_language_letters():
    letters = np.array([60, 30, 10])
    assert foreign_share(letters, ["fr", "en", "fr"], np.array([0.9, 0.8, 0.9]), "fr",
                         0.5) == pytest.approx(0.3)
    # the English segment is not sure enough: it counts as French
    assert foreign_share(letters, ["fr", "en", "fr"], np.array([0.9, 0.4, 0.9]), "fr",
                         0.5) == 0.0
    # a short segment (score 0) counts in the denominator only
    assert foreign_share(np.array([50, 50]), ["en", "short"], np.array([0.9, 0.0]), "fr",
                         0.5) == pytest.approx(0.5)
    assert foreign_share(np.array([0, 0]), ["en", "en"], np.array([0.9, 0.9]), "fr", 0.5) == 0
    assert foreign_share(np.zeros(0, int), [], np.zeros(0), "fr", 0.5) == 0.0
    with pytest.raises(ValueError, match=r"min_score must be in \(0, 1\]"):
        foreign_share(letters, ["fr", "en", "fr"], np.ones(3), "fr", 0.0)


def test_foreign_shares_batch_by_document_index():
    document = np.array([0, 0, 2, 2, 2, 3])
    letters = np.array([10, 30, 5, 5, 10, 7])
    languages = ["de", "en", "zh", "ja", "en", "en"]
    scores = np.array([1.0, 0.6, 0.9, 0.49, 0.5, 1.0])
    shares = foreign_shares(document, letters, languages, scores, ["de", "fr", "zh", "en"], 0.5)
    assert shares.tolist() == [0.75, 0.0, 0.5, 0.0]
    one = [foreign_share(letters[document == d], [x for x, o in zip(languages, document,
                                                                     strict=True) if o == d],
                         scores[document == d], lang, 0.5)
           for d, lang in enumerate(["de", "fr", "zh", "en"])]
    assert shares.tolist() == one
    with pytest.raises(ValueError, match="must index 4 documents"):
        foreign_shares(document + 1, letters, languages, scores, ["de", "fr", "zh", "en"], 0.5)
    with pytest.raises(ValueError, match="differ in length"):
        foreign_shares(document, letters[:2], languages, scores, ["de"] * 4, 0.5)


def _brute_min_score(scores: np.ndarray, step: float, low: float, high: float) -> float:
    ordered = np.sort(scores)
    median = ordered[(len(ordered) - 1) // 2]
    value = min(max(median - float(np.std(scores)), low), high)
    return math.floor(value / step + 1e-9) * step


@pytest.mark.parametrize("step", [2.0**-8, 0.01])
@pytest.mark.parametrize("seed", range(5))
def test_min_score_from_histogram_is_median_less_sigma_clamped(step, seed):
    rng = np.random.default_rng(seed)
    bins = int(round(1 / step)) + 1
    cells = np.minimum(rng.binomial(bins - 1, rng.uniform(0.5, 0.95), size=rng.integers(1, 400)),
                       bins - 1)
    if seed == 0:
        cells = np.r_[cells, np.zeros(len(cells) // 2, int)]  # a tail of wrong labels
    counts = np.bincount(cells, minlength=bins)
    found = min_score_from_histogram(counts, step)
    assert found == pytest.approx(_brute_min_score(cells * step, step, 0.3, 0.9), abs=1e-12)
    assert 0.3 - step < found <= 0.9 and abs(found / step - round(found / step)) < 1e-9
    shuffled = np.bincount(rng.permutation(cells), minlength=bins)
    assert min_score_from_histogram(shuffled, step) == found


def test_min_score_from_histogram_clamps_and_refuses_an_empty_histogram():
    step = 2.0**-4
    counts = np.zeros(17, dtype=np.int64)
    counts[16] = 5  # every score 1.0, σ 0: clamped to high, rounded down to the grid
    assert min_score_from_histogram(counts, step) == math.floor(0.9 / step) * step
    counts[:] = 0
    counts[[0, 16]] = 1  # lower median 0.0
    assert min_score_from_histogram(counts, step, low=0.25) == 0.25
    assert min_score_from_histogram(np.array([0, 0, 3]), 0.5, low=0.0, high=1.0) == 1.0
    with pytest.raises(ValueError, match="empty histogram"):
        min_score_from_histogram(np.zeros(10, dtype=np.int64), step)
    with pytest.raises(ValueError, match="integer array"):
        min_score_from_histogram(np.ones(10) * 0.5, step)
    with pytest.raises(ValueError, match="negative"):
        min_score_from_histogram(np.array([3, -1]), step)


def test_mojibake_shares():
    from tamis.selectors.languages import mojibake_shares

    good = "Les données sont écrites à côté de l’élève « très » bien. Schön, Straße, 中文。"
    broken = good.encode("utf-8").decode("cp1252", "replace")
    latin = good.encode("utf-8").decode("latin-1")
    shares = mojibake_shares([good, broken, latin, "plain ascii", ""])
    assert shares[0] == 0 and shares[3] == 0 and shares[4] == 0
    assert shares[1] > 0.1 and shares[2] > 0.1
