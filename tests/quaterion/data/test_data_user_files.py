"""Users' CSV / JSONL files of pairs and groups -> samples, with errors naming file and line."""

import json

import pytest

from quaterion.data import DataFileError, read_group_samples, read_pair_samples
from quaterion.dataset import SimilarityGroupSample, SimilarityPairSample


def test_csv_pairs_with_optional_subgroup(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text('obj_a,obj_b,score,subgroup\ncat,"kitten, small",1,0\ncat,car,0.0,\n')
    assert read_pair_samples(path) == [
        SimilarityPairSample("cat", "kitten, small", 1.0, 0),
        SimilarityPairSample("cat", "car", 0.0, 0),
    ]
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text("score\tobj_a\tobj_b\n0.5\ta\tb\n")
    assert read_pair_samples(tsv) == [SimilarityPairSample("a", "b", 0.5, 0)]


def test_jsonl_groups_keep_json_objects(tmp_path):
    path = tmp_path / "groups.jsonl"
    records = [{"obj": {"text": "a", "tags": [1]}, "group": 3}, {"obj": "b", "group": "4"}]
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    assert read_group_samples(path) == [
        SimilarityGroupSample({"text": "a", "tags": [1]}, 3),
        SimilarityGroupSample("b", 4),
    ]


@pytest.mark.parametrize(
    ("name", "content", "reader", "line", "message"),
    [
        ("p.csv", "obj_a,obj_b\nx,y\n", read_pair_samples, 1, "header lacks column"),
        ("p.csv", "obj_a,obj_b,score\nx,y,1\nx,,1\n", read_pair_samples, 3, "'obj_b'"),
        ("p.csv", "obj_a,obj_b,score\nx,y,high\n", read_pair_samples, 2, "must be a number"),
        ("p.csv", "obj_a,obj_b,score,subgroup\nx,y,1,a\n", read_pair_samples, 2, "integer"),
        ("g.jsonl", '{"obj": 1, "group": 1}\n{"obj": 2}\n', read_group_samples, 2, "'group'"),
        ("g.jsonl", '{"obj": 1, "group": 1.5}\n', read_group_samples, 1, "integer"),
        ("g.jsonl", '{"obj": 1, "group": true}\n', read_group_samples, 1, "integer"),
        ("g.jsonl", '\n{"obj": 1,\n', read_group_samples, 2, "invalid JSON"),
        ("g.jsonl", "[1, 2]\n", read_group_samples, 1, "JSON object"),
        ("p.jsonl", '{"obj_a": 1, "obj_b": 2, "score": NaN}\n', read_pair_samples, 1, "finite"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path, name, content, reader, line, message):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataFileError, match=message) as error:
        reader(path)
    assert error.value.line == line
    assert str(error.value).startswith(f"{path}, line {line}:")


def test_unsupported_or_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_pair_samples(tmp_path / "none.csv")
    (tmp_path / "data.xlsx").write_text("x")
    with pytest.raises(ValueError, match=r"unsupported extension '\.xlsx'"):
        read_group_samples(tmp_path / "data.xlsx")


def test_string_labels_are_kept_stripped_and_integer_files_give_ints(tmp_path):
    path = tmp_path / "intents.csv"
    path.write_text("obj,group\nwhere is my parcel, shipping \nI forgot my password,password\n")
    assert read_group_samples(path) == [
        SimilarityGroupSample("where is my parcel", "shipping"),
        SimilarityGroupSample("I forgot my password", "password"),
    ]
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("obj,group\na,7\nb,x\n")  # one non-integer label: all stay strings
    assert [s.group for s in read_group_samples(mixed)] == ["7", "x"]


def test_a_byte_order_mark_is_skipped(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes("obj,group\ncafé,drinks\ntea,drinks\n".encode("utf-8-sig"))
    assert read_group_samples(path)[0] == SimilarityGroupSample("café", "drinks")
    jsonl = tmp_path / "bom.jsonl"
    jsonl.write_bytes('{"obj": "a", "group": "x"}\n'.encode("utf-8-sig"))
    assert read_group_samples(jsonl) == [SimilarityGroupSample("a", "x")]


@pytest.mark.parametrize("name", ["latin.csv", "latin.jsonl"])
def test_another_encoding_names_the_line_and_how_to_convert(tmp_path, name):
    path = tmp_path / name
    rows = ["a,x", "b,x", "c,y", "crème brûlée,y"]
    if name.endswith(".jsonl"):
        rows = [
            json.dumps({"obj": r.split(",")[0], "group": "x"}, ensure_ascii=False) for r in rows
        ]
    else:
        rows = ["obj,group", *rows]
    path.write_bytes(("\n".join(rows) + "\n").encode("latin-1"))
    with pytest.raises(DataFileError) as error:
        read_group_samples(path)
    expected_line = 5 if name.endswith(".csv") else 4
    assert error.value.line == expected_line
    assert "not UTF-8" in str(error.value) and "0xe8" in str(error.value)
    assert f"iconv -f latin1 -t utf-8 {path}" in str(error.value)


def test_a_field_longer_than_the_csv_default_limit_is_read(tmp_path):
    import csv

    long_text = "word " * 40_000  # 200 kB, beyond csv's 128 KiB field limit
    path = tmp_path / "long.csv"
    path.write_text(f'obj,group\n"{long_text}",a\nshort,b\n')
    limit = csv.field_size_limit()
    assert read_group_samples(path)[0].obj == long_text
    assert csv.field_size_limit() == limit  # the module-wide limit is restored


def test_a_row_with_more_fields_than_the_header_is_refused(tmp_path):
    path = tmp_path / "commas.csv"
    path.write_text("obj,group\nhello,a\nI am leaving, cancel everything,cancel\n")
    with pytest.raises(DataFileError, match="3 fields, but the header names 2; quote") as error:
        read_group_samples(path)
    assert error.value.line == 3


def test_an_object_under_two_groups_is_counted_in_a_warning(tmp_path):
    path = tmp_path / "dup.csv"
    path.write_text("obj,group\na,x\na,y\nb,x\nb,z\nc,x\nc,x\n")
    with pytest.warns(UserWarning, match=r"2 object\(s\) are listed under two groups or more"):
        samples = read_group_samples(path)
    assert len(samples) == 6


def test_columns_name_the_files_own_headers(tmp_path):
    path = tmp_path / "intents.csv"
    path.write_text("id,text,category\n1,where is my parcel,shipping\n2,reset it,password\n")
    columns = {"obj": "text", "group": "category"}
    assert read_group_samples(path, columns) == [
        SimilarityGroupSample("where is my parcel", "shipping"),
        SimilarityGroupSample("reset it", "password"),
    ]
    with pytest.raises(DataFileError, match=r"lacks column\(s\) \['obj', 'group'\].*data.columns"):
        read_group_samples(path)
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"q": "cat?", "a": "a feline", "score": 1}\n')
    assert read_pair_samples(qa, {"obj_a": "q", "obj_b": "a"}) == [
        SimilarityPairSample("cat?", "a feline", 1.0, 0)
    ]
    with pytest.raises(DataFileError, match="missing field 'answer'"):  # the file's name
        read_pair_samples(qa, {"obj_a": "q", "obj_b": "answer"})
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['label'\]"):
        read_group_samples(path, {"label": "category"})
