"""What the ``bilingual`` job writes besides the selection tail's: the annotation columns of
each row (spilled between passes, then written beside the kept rows) and its manifest section.

Columns added to the input's:

=============================  ===============  ==================================================
column                         type             meaning
=============================  ===============  ==================================================
language                       string           lid.176's top language (ISO 639-1 where there is
                                                one), ``short`` or ``none`` when not identified
language_score                 float64          its probability, on the 2**-16 grid
language_alternatives          list<string>     the next languages, most likely first
language_alternative_scores    list<float64>    their probabilities
language_script                string           ISO 639-3 and the text's script (``fra_Latn``)
foreign_share                  float64          share of the letters in paragraphs (or lines) of
                                                another language than the document's
mojibake_share                 float64          share of the characters in UTF-8 read as cp1252 or
                                                Latin-1 (``Ã©`` for ``é``)
bilingual_score                float64          sigmoid(log-odds / 8) of the base-language
                                                classifier: its ranking, without the ties at 1
                                                of a probability sure of itself
bilingual_reason               string           annotate_only: the fate it would have had
=============================  ===============  ==================================================
"""

from __future__ import annotations

import io

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tamis.embeddings.langid import content_hash
from tamis.pipelines.tail import selected_schema
from tamis.storage.errors import DataError
from tamis.storage.files import filesystem, join, write_atomically
from tamis.storage.records import ROW, SRC

SCORE = "bilingual_score"
GATE = "__gate"
REASON = "bilingual_reason"
ANNOTATIONS = (
    pa.field("language", pa.string()),
    pa.field("language_score", pa.float64()),
    pa.field("language_alternatives", pa.list_(pa.string())),
    pa.field("language_alternative_scores", pa.list_(pa.float64())),
    pa.field("language_script", pa.string()),
    pa.field("foreign_share", pa.float64()),
    pa.field("mojibake_share", pa.float64()),
)
#: Every column the job adds (an input holding one of them is refused at plan time).
COLUMNS = (*(f.name for f in ANNOTATIONS), SCORE, REASON)


def annotation_table(table: pa.Table, found, foreign: np.ndarray, mojibake: np.ndarray,
                     gate: np.ndarray, quality: np.ndarray) -> pa.Table:
    """One batch's annotations, row for row, with its row numbers to check them against."""
    quality = np.asarray(quality, dtype=np.float64)
    columns = [
        table.column(ROW),
        pa.array(found.language, pa.string()),
        pa.array(np.asarray(found.score, dtype=np.float64)),
        pa.array(found.alternatives, pa.list_(pa.string())),
        pa.array([[float(v) for v in s] for s in found.alternative_scores],
                 pa.list_(pa.float64())),
        pa.array(found.iso3, pa.string()),
        pa.array(np.asarray(foreign, dtype=np.float64)),
        pa.array(np.asarray(mojibake, dtype=np.float64)),
        pa.array(quality, pa.float64(), mask=np.isnan(quality)),
        pa.array(np.asarray(gate, dtype=np.int8)),
    ]
    names = [ROW, *(f.name for f in ANNOTATIONS), SCORE, GATE]
    return pa.Table.from_arrays(columns, names=names)


def output_columns(notes: pa.Table, keep: np.ndarray, drops: dict | None) -> dict:
    """The annotation columns of the kept rows (with ``drops``, annotate_only: the reason each
    row would have been dropped for, null when it would stay)."""
    mask = pa.array(keep)
    out = {f.name: notes.column(f.name).filter(mask).combine_chunks() for f in ANNOTATIONS}
    out[SCORE] = notes.column(SCORE).filter(mask).combine_chunks()
    if drops is not None:
        reasons = np.full(len(keep), None, dtype=object)
        for reason, hit in drops.items():
            reasons[np.asarray(hit, bool) & (reasons == None)] = reason  # noqa: E711
        out[REASON] = pa.array(reasons[keep].tolist(), pa.string())
    return out


def output_schema(spec) -> pa.Schema:
    extra = [*ANNOTATIONS, pa.field(SCORE, pa.float64())]
    if spec.annotate_only:
        extra.append(pa.field(REASON, pa.string()))
    return selected_schema(spec.inputs, *extra)


def _spill_path(spill_dir: str, table: pa.Table) -> str:
    src = int(table.column(SRC)[0].as_py())
    first = int(table.column(ROW)[0].as_py())
    return join(spill_dir, f"{src:05d}-{first:012d}.parquet")


def write_spill(spill_dir: str, table: pa.Table, annotations: pa.Table) -> None:
    buffer = io.BytesIO()
    pq.write_table(annotations, buffer)
    write_atomically(_spill_path(spill_dir, table), lambda f: f.write(buffer.getvalue()))


def read_spill(spill_dir: str, table: pa.Table) -> pa.Table:
    path = _spill_path(spill_dir, table)
    fs, inner = filesystem(path)
    try:
        with fs.open_input_stream(inner) as f:
            annotations = pq.read_table(io.BytesIO(f.read()))
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"the annotations of a batch ({path}) are missing: the inputs changed "
                        f"while the job ran ({exc})") from None
    if annotations.column(ROW).to_pylist() != table.column(ROW).to_pylist():
        raise DataError(f"the annotations {path} do not match the rows read: the inputs "
                        f"changed while the job ran")
    return annotations


def _merge(items) -> dict:
    out: dict = {}
    for item in items:
        for key, value in item.items():
            out[key] = value if key not in out else out[key] + value
    return out


class MergeHistograms(beam.CombineFn):
    def create_accumulator(self):
        return {}

    def add_input(self, acc, item):
        return _merge([acc, item])

    def merge_accumulators(self, accs):
        return _merge(accs)

    def extract_output(self, acc):
        return acc


def delete_spill(spill_dir: str) -> None:
    """The annotations are needed only while the job runs: removed once its manifest is due."""
    fs, inner = filesystem(spill_dir)
    try:
        fs.delete_dir(inner)
    except (FileNotFoundError, OSError):
        pass


def _by_language(items) -> dict:
    out: dict = {}
    for lang, reason, rows, tokens in items:
        entry = out.setdefault(lang, {"rows_in": 0, "tokens_in": 0, "rows_kept": 0,
                                      "tokens_kept": 0, "rows_dropped": {},
                                      "tokens_dropped": {}})
        entry["rows_in"] += rows
        entry["tokens_in"] += tokens
        if reason == "kept":
            entry["rows_kept"] += rows
            entry["tokens_kept"] += tokens
        else:
            entry["rows_dropped"][reason] = entry["rows_dropped"].get(reason, 0) + rows
            entry["tokens_dropped"][reason] = entry["tokens_dropped"].get(reason, 0) + tokens
    for entry in out.values():
        entry["rows_dropped"] = dict(sorted(entry["rows_dropped"].items()))
        entry["tokens_dropped"] = dict(sorted(entry["tokens_dropped"].items()))
    return dict(sorted(out.items()))


class Finish:
    """The manifest's ``selector``: per-language counts, cut-offs, score distributions, the
    classifier's figures and the mixture."""

    def __init__(self, spec) -> None:
        self.spec = spec

    def __call__(self, base: dict, languages, trained, decided) -> dict:
        spec = self.spec
        trained, decided = trained[0], decided[0]
        counts = _by_language(languages)
        per_language = {}
        for lang in sorted(set(counts) | set(decided["languages"])):
            made = decided["languages"].get(lang, {})
            entry = {**counts.get(lang, {}), **{k: v for k, v in made.items()
                                                  if k != "rows_above_cut"}}
            cut = decided["min_scores"].get(lang)
            if cut is None and spec.default_min_score is not None and lang not in (
                    "none", "short"):
                cut = {"min_score": spec.default_min_score, "how": "configured"}
            if cut is not None:
                entry["min_language_score"] = cut["min_score"]
                entry["min_language_score_from"] = cut["how"]
            q = decided["language_score_quantiles"].get(lang)
            if q is not None:
                entry["language_score_quantiles"] = q
            if spec.scores and not spec.annotate_only and lang not in ("none", "short"):
                entry["keep_top"] = spec.cut_setting(spec.keep_top, lang)
                entry["threshold"] = spec.cut_setting(spec.threshold, lang)
            per_language[lang] = entry
        base["selector"].update({
            "method": "bilingual", "base_language": spec.base_language,
            "languages": list(spec.languages) or None, "classifier": spec.classifier,
            "annotate_only": spec.annotate_only,
            "language_id": {"model": "lid.176", "content_hash": content_hash(spec.lid_path),
                            "min_letters": spec.min_letters,
                            "alternatives": spec.alternatives - 1,
                            "min_score_bounds": list(spec.min_score_bounds)},
            "foreign": {"unit": spec.foreign_unit, "min_score": spec.foreign_min_score,
                        "max_share": spec.max_foreign_share},
            "max_mojibake_share": spec.max_mojibake_share,
            "quantiles": [0.1, 0.25, 0.5, 0.75, 0.9],
            "by_language": per_language, "mixing": decided["mixing"],
            "classifier_training": {k: v for k, v in trained.items() if k != "path"} or None,
            "model": trained.get("path")})
        warnings = list(decided["mixing"]["warnings"]) if decided["mixing"] else []
        for lang in spec.languages:
            entry = per_language.get(lang)
            if not entry or not entry.get("rows_kept"):
                warnings.append(f"no row of '{lang}' was kept: check its thresholds and that "
                                f"the inputs hold it")
        if spec.scores and not trained.get("reused"):
            if trained.get("heldout_auc") is None:
                warnings.append("the classifier could not be measured: too few positives or "
                                "negatives to hold out; give more of them")
            elif trained["heldout_auc"] < 0.8:
                warnings.append(f"the classifier separates the base language's positives from "
                                f"its negatives poorly (held-out AUC "
                                f"{trained['heldout_auc']:.2f}): check both sets")
            if trained.get("negatives", 0) < 0.5 * trained.get("positives", 0):
                warnings.append(f"only {trained['negatives']} negatives for "
                                f"{trained['positives']} positives: give 'negatives' (or a pool "
                                f"with more base-language rows of the positives' lengths)")
        base["warnings"] += warnings
        delete_spill(spec.spill_dir)
        return base
