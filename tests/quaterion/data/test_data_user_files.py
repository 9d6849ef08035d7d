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
