from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from corpora import make_rows, write_parquet

from tamis.storage.errors import InputError
from tamis.storage.inputs import plan_inputs


def test_plans_units_from_footers(corpus):
    plan = plan_inputs([str(corpus)], "text")
    assert [f.rel for f in plan.files] == ["part-0.parquet", "part-1.parquet", "part-2.parquet"]
    assert plan.rows == 360
    assert [u.rows for u in plan.units] == [50, 50, 20] * 3
    assert [u.row_offset for u in plan.units[:3]] == [0, 50, 100]
    assert plan.id_column is None  # no input has ids: they will be hashed
    assert plan.schema.names[:2] == ["id", "text"]
    assert plan.estimated_tokens() > 0


def test_globs_and_relative_paths_from_the_common_root(tmp_path):
    write_parquet(tmp_path / "a" / "x.parquet", make_rows(3))
    write_parquet(tmp_path / "b" / "deep" / "x.parquet", make_rows(3))
    plan = plan_inputs([str(tmp_path / "a" / "*.parquet"), str(tmp_path / "b" / "**/*.parquet")],
                       "text")
    assert [f.rel for f in plan.files] == ["a/x.parquet", "b/deep/x.parquet"]
    one_level = plan_inputs([str(tmp_path / "b" / "*" / "x*")], "text")
    assert [f.rel for f in one_level.files] == ["deep/x.parquet"]
    with pytest.raises(InputError, match="matches no file"):  # '*' stays inside a folder
        plan_inputs([str(tmp_path / "b" / "*.parquet")], "text")


@pytest.mark.parametrize("setup,paths,message", [
    (None, ["missing"], "input .*missing does not exist"),
    (None, ["nothing/*.parquet"], "input glob .*nothing/\\*.parquet matches no file"),
    ("empty_dir", ["empty"], "input folder .*empty holds no file"),
    ("not_parquet", ["fake.parquet"], "fake.parquet: not a readable Parquet file"),
    ("no_text", ["notext.parquet"], "notext.parquet: no column 'text' \\(columns: body\\)"),
    ("odd", ["data.csv"], "data.csv: not a Parquet or JSONL file"),
])
def test_bad_inputs_stop_with_the_file_named(tmp_path, setup, paths, message):
    if setup == "empty_dir":
        (tmp_path / "empty").mkdir()
    elif setup == "not_parquet":
        (tmp_path / "fake.parquet").write_text("this is not parquet")
    elif setup == "no_text":
        pq.write_table(pa.table({"body": ["x"]}), tmp_path / "notext.parquet")
    elif setup == "odd":
        (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(InputError, match=message):
        plan_inputs([str(tmp_path / p) for p in paths], "text")


def test_required_and_reserved_columns(corpus):
    with pytest.raises(InputError, match="part-0.parquet: no column 'topic'"):
        plan_inputs([str(corpus)], "text", required_columns=["topic"])
    with pytest.raises(InputError, match="part-0.parquet: has a column 'score', which this job"):
        plan_inputs([str(corpus)], "text", reserved_columns=["score"])


def test_ids_must_be_in_all_inputs_or_none(tmp_path):
    write_parquet(tmp_path / "a.parquet", [{"id": "1", "text": "x"}])
    write_parquet(tmp_path / "b.parquet", [{"text": "y"}])
    with pytest.raises(InputError, match="b.parquet: no column 'id' while other inputs have one"):
        plan_inputs([str(tmp_path)], "text")


def test_conflicting_types_are_an_error(tmp_path):
    write_parquet(tmp_path / "a.parquet", [{"text": "x", "n": 1}])
    write_parquet(tmp_path / "b.parquet", [{"text": "y", "n": {"a": 1}}])
    with pytest.raises(InputError, match="inputs disagree on a column's type"):
        plan_inputs([str(tmp_path)], "text")


def test_non_string_text_column_is_a_warning_not_an_error(tmp_path):
    write_parquet(tmp_path / "a.parquet", [{"text": 1}, {"text": 2}])
    plan = plan_inputs([str(tmp_path)], "text")
    assert not plan.files[0].content_ok
    assert "rows will be rejected as non_string_text" in plan.warnings[0]


def test_jsonl_schema_from_first_lines(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"text": "x", "n": 1}\n\n{"text": "y", "n": 2}\n')
    plan = plan_inputs([str(tmp_path / "a.jsonl")], "text")
    assert plan.files[0].format == "jsonl" and plan.files[0].rows is None
    assert plan.schema.field("n").type == pa.int64()


def test_listing_order_and_repeats_do_not_matter(tmp_path):
    a = write_parquet(tmp_path / "a.parquet", make_rows(3))
    b = write_parquet(tmp_path / "b.parquet", make_rows(3))
    one = plan_inputs([str(b), str(a), str(tmp_path / "*.parquet")], "text")
    two = plan_inputs([str(a), str(b)], "text")
    assert one == two
    assert [f.rel for f in one.files] == ["a.parquet", "b.parquet"]


def test_an_earlier_selection_is_read_with_its_weights_carried(tmp_path):
    from tamis.pipelines.tail import compose_upstream
    from tamis.storage.records import read_unit

    pq.write_table(pa.table({"id": ["a", "b"], "text": ["x y", "z"], "n_tokens": [9, 9],
                             "weight": [2.0, None], "n_samples": [3, 1]}),
                   tmp_path / "sel.parquet")
    plan = plan_inputs([str(tmp_path / "sel.parquet")], "text",
                       reserved_columns=["n_tokens", "weight", "n_samples", "score"])
    assert plan.schema.names == ["id", "text"]  # the job writes these columns anew
    (records, _), = list(read_unit(plan, plan.units[0]))
    assert records.column("n_tokens").to_pylist() == [2, 1]
    records = records.append_column("weight", pa.array([0.5, 4.0]))
    records = records.append_column("n_samples", pa.array([2, 2]))
    out = compose_upstream(records)
    assert out.column("weight").to_pylist() == [1.0, 4.0]  # a null input weight counts as 1
    assert out.column("n_samples").to_pylist() == [6, 2]
    assert "__in_weight" not in out.column_names
    pq.write_table(pa.table({"id": ["a"], "text": ["x"], "weight": ["heavy"]}),
                   tmp_path / "odd.parquet")
    with pytest.raises(InputError, match="odd.parquet: column 'weight' is string"):
        plan_inputs([str(tmp_path / "odd.parquet")], "text")


def test_inputs_behind_a_uri_keep_their_scheme(tmp_path, monkeypatch):
    """A remote file system (gs://, s3://) names files by URI; planning and reading keep it."""
    import pyarrow.fs as pafs

    from tamis.storage import discovery, files, inputs, manifest, outputs, records

    write_parquet(tmp_path / "bucket" / "corpus" / "a.parquet", make_rows(5))
    write_parquet(tmp_path / "bucket" / "corpus" / "deep" / "b.parquet", make_rows(4))
    real = files.filesystem

    def fake(path: str):  # fake://x is tmp_path/x on a file system of its own
        if path.startswith("fake://"):
            return pafs.SubTreeFileSystem(str(tmp_path), pafs.LocalFileSystem()), path[7:]
        return real(path)

    for module in (discovery, files, inputs, manifest, outputs, records):
        monkeypatch.setattr(module, "filesystem", fake)
    plan = plan_inputs(["fake://bucket/corpus"], "text")
    assert [f.path for f in plan.files] == ["fake://bucket/corpus/a.parquet",
                                           "fake://bucket/corpus/deep/b.parquet"]
    assert [f.rel for f in plan.files] == ["a.parquet", "deep/b.parquet"]
    kept = sum(r.num_rows for u in plan.units for r, _ in records.read_unit(plan, u))
    assert kept == 9
    with pytest.raises(InputError, match="several file systems"):
        plan_inputs(["fake://bucket/corpus", str(tmp_path / "bucket")], "text")
    with pytest.raises(InputError, match="nosuch://x: not a file system tamis can read"):
        plan_inputs(["nosuch://x"], "text")
