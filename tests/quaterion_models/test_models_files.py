"""utils.files: atomic directory/file writes and reads that name the damaged file."""

import os

import pytest
import torch

from quaterion_models.utils.files import (
    CorruptFileError,
    atomic_directory,
    load_tensors,
    read_json,
    save_tensors_atomic,
    write_json_atomic,
)


def test_atomic_directory_publishes_on_success_and_replaces_existing(tmp_path):
    target = tmp_path / "nested" / "out"
    with atomic_directory(target) as staging:
        assert staging.parent == target.parent and not target.exists()
        (staging / "a.txt").write_text("first")
    assert (target / "a.txt").read_text() == "first"
    with atomic_directory(target) as staging:
        (staging / "b.txt").write_text("second")
    assert os.listdir(target) == ["b.txt"]
    assert os.listdir(target.parent) == ["out"]


def test_atomic_directory_discards_everything_on_error(tmp_path):
    target = tmp_path / "out"
    with atomic_directory(target) as staging:
        (staging / "a.txt").write_text("kept")
    with pytest.raises(KeyboardInterrupt), atomic_directory(target) as staging:
        (staging / "a.txt").write_text("half")
        raise KeyboardInterrupt
    assert (target / "a.txt").read_text() == "kept"
    assert os.listdir(tmp_path) == ["out"]


def test_atomic_directory_refuses_a_file_in_the_way(tmp_path):
    (tmp_path / "out").write_text("file")
    with pytest.raises(FileExistsError, match="a file is in the way"):
        with atomic_directory(tmp_path / "out"):
            pass


def test_json_round_trip_and_errors(tmp_path):
    path = tmp_path / "c.json"
    write_json_atomic(path, {"a": [1, 2.5, None]})
    assert read_json(path, "test config") == {"a": [1, 2.5, None]}
    assert os.listdir(tmp_path) == ["c.json"]
    path.write_text("{oops")
    with pytest.raises(CorruptFileError, match=r"Corrupted test config: .*c\.json"):
        read_json(path, "test config")
    with pytest.raises(FileNotFoundError, match=r"Missing test config: .*none\.json"):
        read_json(tmp_path / "none.json", "test config")
    with pytest.raises(TypeError):
        write_json_atomic(path, {"bad": object()})
    assert os.listdir(tmp_path) == ["c.json"]


def test_tensors_round_trip_including_shared_storage(tmp_path):
    weight = torch.randn(3, 2)
    tensors = {"w": weight, "tied": weight, "view": weight[1], "empty": torch.empty(0)}
    save_tensors_atomic(tensors, tmp_path / "t.safetensors")
    loaded = load_tensors(tmp_path / "t.safetensors")
    assert loaded.keys() == tensors.keys()
    for name, tensor in tensors.items():
        torch.testing.assert_close(loaded[name], tensor)
    assert os.listdir(tmp_path) == ["t.safetensors"]


def test_load_tensors_names_missing_and_corrupted_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"Missing weights file: .*x\.safetensors"):
        load_tensors(tmp_path / "x.safetensors")
    (tmp_path / "x.safetensors").write_bytes(b"\x00" * 3)
    with pytest.raises(CorruptFileError, match=r"Corrupted weights file .*x\.safetensors"):
        load_tensors(tmp_path / "x.safetensors")
