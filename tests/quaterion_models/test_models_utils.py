"""utils: class import paths, meta merging, device moves, activation by name, progress bars."""

import logging
from collections import Counter, namedtuple

import pytest
import torch
from torch import nn

from quaterion_models.modules import ActivationFromFnName
from quaterion_models.utils import merge_meta, move_to_device, restore_class, save_class_import
from quaterion_models.utils.classes import check_plain_key, restore_subclass
from quaterion_models.utils.progress import track


def test_restore_class_and_save_class_import():
    assert restore_class({"module": "torch.nn", "class": "Linear"})(10, 10).out_features == 10
    assert save_class_import(Counter()) == {"class": "Counter", "module": "collections"}
    nested = restore_class({"module": "collections", "class": "OrderedDict.fromkeys"})
    assert nested("ab") == {"a": None, "b": None}


def test_class_record_errors_are_explicit(caplog):
    with pytest.raises(ImportError, match="no class 'Nope'"):
        restore_class({"module": "torch.nn", "class": "Nope"})
    with pytest.raises(ValueError, match="'module' and 'class'"):
        restore_class({"class": "Linear"})
    main_class = type("Local", (), {"__module__": "__main__"})
    with caplog.at_level(logging.WARNING):
        assert save_class_import(main_class()) == {"module": "__main__", "class": "Local"}
    assert "__main__" in caplog.text


def test_merge_meta_is_item_wise_and_does_not_mutate():
    two_encoders = {"a": [{"a": 1}, {"a": 2}, {"a": 3}], "b": [{"b": 4}, {"b": 5}, {"b": 6}]}
    assert merge_meta(two_encoders) == [{"a": 1, "b": 4}, {"a": 2, "b": 5}, {"a": 3, "b": 6}]
    assert two_encoders["a"] == [{"a": 1}, {"a": 2}, {"a": 3}]
    three_encoders = {"a": [{"a": 1}, {"a": 2}], "b": [{}, {}], "c": [{"c": 0}, {"c": 9}]}
    assert merge_meta(three_encoders) == [{"a": 1, "c": 0}, {"a": 2, "c": 9}]
    assert merge_meta({}) == []
    with pytest.raises(ValueError, match="one meta dict per record"):
        merge_meta({"a": [{}], "b": [{}, {}]})


def test_move_to_device_recurses_and_keeps_container_types():
    Pair = namedtuple("Pair", "left right")
    batch = {"x": [torch.ones(2), (torch.zeros(1), "label")], "pair": Pair(torch.ones(1), 3)}
    moved = move_to_device(batch, "meta")
    assert moved["x"][0].is_meta and moved["x"][1][0].is_meta and moved["x"][1][1] == "label"
    assert isinstance(moved["pair"], Pair) and moved["pair"].left.is_meta
    assert isinstance(moved["x"][1], tuple) and moved["pair"].right == 3
    assert not batch["x"][0].is_meta
    assert move_to_device(batch, None) is batch


def test_activation_from_fn_name():
    inputs = torch.randn(4)
    torch.testing.assert_close(
        ActivationFromFnName("gelu")(inputs), torch.nn.functional.gelu(inputs)
    )
    with pytest.raises(ValueError, match="torch.nn.functional"):
        ActivationFromFnName("not_an_activation")


def test_track_yields_everything_enabled_disabled_and_nested(monkeypatch, capsys):
    assert list(track(range(5), description="x")) == list(range(5))
    assert list(track(iter(range(3)), total=3, enabled=False)) == [0, 1, 2]
    nested = [(i, list(track(range(2)))) for i in track(range(2))]
    assert nested == [(0, [0, 1]), (1, [0, 1])]
    monkeypatch.setenv("QUATERION_PROGRESS", "0")
    assert list(track(range(4))) == [0, 1, 2, 3]
    assert capsys.readouterr().out == ""


def test_restore_subclass_refuses_other_classes_naming_source_class_and_base():
    record = {"module": "torch.nn", "class": "Linear"}
    assert restore_subclass(record, nn.Module, "cfg.json") is nn.Linear
    with pytest.raises(TypeError, match=r"cfg\.json names torch\.nn\.Linear .*subclass of Counter"):
        restore_subclass(record, Counter, "cfg.json")
    with pytest.raises(TypeError, match=r"os\.system \(builtin_function_or_method\)"):
        restore_subclass({"module": "os", "class": "system"}, nn.Module, "cfg.json")


@pytest.mark.parametrize("key", ["", ".", "..", "../x", "a/b", "a\\b", "x..y", 3, None])
def test_check_plain_key_refuses_path_like_keys(key):
    with pytest.raises(ValueError, match="cfg.json has the invalid key"):
        check_plain_key(key, "cfg.json")


def test_check_plain_key_accepts_plain_names():
    assert [check_plain_key(key, "cfg") for key in ["default", "text_1", "a.b"]] == [
        "default",
        "text_1",
        "a.b",
    ]
