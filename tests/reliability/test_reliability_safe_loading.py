"""Loading a servable or a cache never runs code from the files.

A planted pickle whose `__reduce__` creates a marker file stands where the original Quaterion
kept pickles (head/weights.bin, encoder weights, cache files) or where safetensors are expected;
loading must leave the marker absent, and either ignore the file or refuse it clearly. A
config.json naming an arbitrary module/class must not get it executed or even imported either.
The rest is what a hostile servable directory can hold: manifest paths leading out of it,
symlinks leading out, FIFOs and devices, files its manifest does not list.
"""

from __future__ import annotations

import builtins
import json
import os
import pickle
import stat
import sys
from pathlib import Path

import pytest
import torch
from reliability_support import MlpEncoder, SimpleModel, group_loader, group_samples

from quaterion.train.cache import CacheConfig, CacheType
from quaterion_models import SimilarityModel
from quaterion_models.heads import LinearHead
from quaterion_models.utils.classes import UntrustedModuleError
from quaterion_models.utils.files import CorruptFileError, directory_manifest

PROBE = [torch.randn(16, generator=torch.Generator().manual_seed(i)) for i in range(4)]


class Planted:
    """Unpickling this creates `marker`: proof that code from the file ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (builtins.open, (self.marker, "w"))


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "code-ran"


def _plant(path: Path, marker: Path, kind: str = "pickle") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "torch":  # what torch.save writes: a zip archive holding a pickle
        torch.save({"weight": Planted(marker)}, path)
    else:
        path.write_bytes(pickle.dumps(Planted(marker)))


def _servable(tmp_path: Path) -> tuple[Path, SimilarityModel]:
    model = SimilarityModel(MlpEncoder(), LinearHead(32, output_size=8))
    path = tmp_path / "servable"
    model.save(path)
    return path, model


def _rewrite_manifest(path: Path) -> None:
    """Recompute the manifest over the directory as it is now, as an attacker would."""
    config = json.loads((path / "config.json").read_text())
    manifest = directory_manifest(path)
    config["files"] = {name: entry for name, entry in manifest.items() if name != "config.json"}
    (path / "config.json").write_text(json.dumps(config))


def _edit_manifest(path: Path, edit) -> None:
    config = json.loads((path / "config.json").read_text())
    edit(config["files"])
    (path / "config.json").write_text(json.dumps(config))


def test_pickles_where_the_original_kept_weights_are_refused_unrun(tmp_path: Path, marker: Path):
    """Files the manifest does not list would be read unchecked by a library's loader."""
    path, model = _servable(tmp_path)
    _plant(path / "head" / "weights.bin", marker)
    _plant(path / "encoders" / "default" / "weights.bin", marker, kind="torch")
    with pytest.raises(CorruptFileError, match=r"does not list: encoders/default/weights\.bin"):
        SimilarityModel.load(path)
    assert not marker.exists()
    for planted in path.rglob("weights.bin"):
        planted.unlink()
    loaded = SimilarityModel.load(path)
    expected = model.encode(PROBE, to_numpy=False)
    assert torch.allclose(loaded.encode(PROBE, to_numpy=False), expected, atol=1e-6)


@pytest.mark.parametrize("kind", ["pickle", "torch"])
@pytest.mark.parametrize("manifest", ["kept", "rewritten"])
@pytest.mark.parametrize("where", ["head", "encoders/default"])
def test_pickle_in_place_of_safetensors_is_refused_unrun(
    tmp_path: Path, marker: Path, kind: str, manifest: str, where: str
):
    path, _ = _servable(tmp_path)
    _plant(path / where / "weights.safetensors", marker, kind)
    if manifest == "rewritten":  # checksums that match the swap: the format still refuses it
        _rewrite_manifest(path)
    with pytest.raises(CorruptFileError, match="weights.safetensors"):
        SimilarityModel.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "entry", ["../outside.json", "/etc/hostname", "head/../../outside.json", "head//config.json"]
)
def test_manifest_paths_leading_out_of_the_directory_are_refused(tmp_path: Path, entry: str):
    path, _ = _servable(tmp_path)
    (tmp_path / "outside.json").write_text("{}")
    _edit_manifest(path, lambda files: files.update({entry: {"size": 2, "sha256": "0" * 64}}))
    with pytest.raises(CorruptFileError, match="not a plain path inside its directory"):
        SimilarityModel.load(path)


def test_a_symlink_leading_out_is_refused_even_with_matching_checksums(tmp_path: Path):
    path, _ = _servable(tmp_path)
    weights = path / "head" / "weights.safetensors"
    outside = tmp_path / "elsewhere.safetensors"
    outside.write_bytes(weights.read_bytes())  # same bytes: only the link itself is wrong
    weights.unlink()
    weights.symlink_to(outside)
    with pytest.raises(
        CorruptFileError, match=r"head/weights\.safetensors is a link leading outside"
    ):
        SimilarityModel.load(path)
    weights.unlink()
    (path / "head").rename(tmp_path / "head-elsewhere")  # a whole directory linked out
    (path / "head").symlink_to(tmp_path / "head-elsewhere")
    with pytest.raises(CorruptFileError, match="link leading outside"):
        SimilarityModel.load(path)


def test_a_symlink_to_a_device_is_refused(tmp_path: Path):
    path, _ = _servable(tmp_path)
    config = path / "head" / "config.json"
    config.unlink()
    config.symlink_to("/dev/zero")  # reading it would never end
    with pytest.raises(CorruptFileError, match="link leading outside"):
        SimilarityModel.load(path)


@pytest.mark.parametrize("where", ["head/config.json", "config.json", "encoders/default/extra"])
def test_fifos_are_refused_without_blocking(tmp_path: Path, where: str):
    """Opening a FIFO blocks until someone writes: the type is checked before any open."""
    path, _ = _servable(tmp_path)
    fifo = path / where
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    with pytest.raises(CorruptFileError, match=rf"{where}|{path}") as raised:
        SimilarityModel.load(path)
    assert "not a regular file" in str(raised.value) or "does not list" in str(raised.value)


def test_files_added_after_saving_are_refused(tmp_path: Path):
    """A transformers directory reads optional files when they exist (added_tokens.json, ...):
    any file the manifest does not list is refused, not silently read."""
    path, _ = _servable(tmp_path)
    (path / "encoders" / "default" / "added_tokens.json").write_text('{"[X]": 1}')
    with pytest.raises(CorruptFileError, match=r"added_tokens\.json.*remove them, or re-save"):
        SimilarityModel.load(path)


@pytest.mark.parametrize(("umask", "file_mode"), [(0o022, 0o644), (0o027, 0o640)])
def test_saved_files_get_ordinary_permissions(tmp_path: Path, umask: int, file_mode: int):
    """A service user must be able to read what a training user saved (safetensors alone
    would create its files 0600)."""
    previous = os.umask(umask)
    try:
        path, _ = _servable(tmp_path)
    finally:
        os.umask(previous)
    modes = {
        str(item.relative_to(path)): stat.S_IMODE(item.stat().st_mode) for item in path.rglob("*")
    }
    files = {name: mode for name, mode in modes.items() if (path / name).is_file()}
    assert "head/weights.safetensors" in files
    assert set(files.values()) == {file_mode}, files
    assert {mode for name, mode in modes.items() if name not in files} == {0o777 & ~umask}


def _cache_rows(save_dir: Path) -> tuple[torch.Tensor, torch.Tensor]:
    samples = group_samples()
    model = SimpleModel(cache=CacheConfig(CacheType.CPU, save_dir=str(save_dir)))
    model.setup_cache(None, group_loader(samples), None)
    rows = model.model.encoders["default"].embeddings("train")
    model.unwrap_cache()
    with torch.no_grad():
        fresh = model.model.encoders["default"](torch.stack([s.obj for s in samples]))
    return rows, fresh


@pytest.mark.parametrize("kind", ["pickle", "torch"])
def test_cache_files_replaced_by_pickles_are_rebuilt_unrun(tmp_path: Path, marker: Path, kind: str):
    save_dir = tmp_path / "cache"
    _cache_rows(save_dir)
    (stored,) = save_dir.rglob("train.safetensors")
    _plant(stored, marker, kind)
    for original in ("encoders/default", "train_labels", "val_labels"):  # the original's layout
        _plant(save_dir / original, marker, kind)
    rows, fresh = _cache_rows(save_dir)
    assert not marker.exists()
    assert torch.allclose(rows, fresh, atol=1e-6)


def _name_class(path: Path, part: str, record: dict, key: str = "default") -> None:
    """Edit config.json as an attacker would (it holds the manifest, not a checksum of itself)."""
    config = json.loads((path / "config.json").read_text())
    if part == "head":
        config["head"] = record
    else:
        config["encoders"] = [{"key": key, **record}]
    (path / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("part", ["head", "encoder"])
@pytest.mark.parametrize(
    "record",
    [{"module": "os", "class": "system"}, {"module": "subprocess", "class": "Popen"}],
    ids=["os.system", "subprocess.Popen"],
)
def test_config_naming_an_arbitrary_callable_does_not_run_it(
    tmp_path: Path, marker: Path, part: str, record: dict, monkeypatch: pytest.MonkeyPatch
):
    path, _ = _servable(tmp_path)
    _name_class(path, part, record)
    called = []
    monkeypatch.setattr("os.system", lambda *a, **k: called.append(a))
    monkeypatch.setattr("subprocess.Popen", lambda *a, **k: called.append(a))
    with pytest.raises(Exception):  # noqa: B017 - any refusal; the clear one is checked below
        SimilarityModel.load(path)
    assert called == []


def test_config_naming_a_non_head_class_gets_a_clear_error(tmp_path: Path):
    path, _ = _servable(tmp_path)
    _name_class(path, "head", {"module": "os", "class": "system"})
    with pytest.raises(TypeError, match="EncoderHead"):
        SimilarityModel.load(path)


@pytest.mark.parametrize("key", ["default", "../planted"])
def test_config_naming_a_pickle_loading_class_does_not_unpickle(
    tmp_path: Path, marker: Path, key: str
):
    pytest.importorskip("gensim")
    path, _ = _servable(tmp_path)
    target = path / "encoders" / key
    if target.is_dir():
        for file in target.iterdir():
            file.unlink()
        target.rmdir()
    _plant(target, marker)
    _name_class(path, "encoder", {"module": "gensim.models", "class": "KeyedVectors"}, key=key)
    with pytest.raises(Exception):  # noqa: B017 - refusing in any way is fine; running is not
        SimilarityModel.load(path)
    assert not marker.exists()


@pytest.fixture
def planted_module(tmp_path: Path, marker: Path, monkeypatch: pytest.MonkeyPatch):
    """An importable module `planted_module` whose import creates `marker`."""
    (tmp_path / "planted_module.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "planted_module"
    sys.modules.pop("planted_module", None)


@pytest.mark.parametrize("part", ["head", "encoder"])
def test_config_naming_an_untrusted_module_never_imports_it(
    tmp_path: Path, marker: Path, part: str, planted_module: str
):
    """Importing runs the module: a module outside quaterion, quaterion_models and the
    caller's `trusted_modules` is refused before the import, not after the class check."""
    path, _ = _servable(tmp_path)
    _name_class(path, part, {"module": "planted_module", "class": "Anything"})
    with pytest.raises(
        UntrustedModuleError, match=r"'planted_module'.*trusted_modules=\['planted_module'\]"
    ):
        SimilarityModel.load(path)
    assert not marker.exists() and "planted_module" not in sys.modules
    # the caller may trust it explicitly: it is imported, and the class check still applies
    with pytest.raises(ImportError, match="has no class 'Anything'"):
        SimilarityModel.load(path, trusted_modules=["planted_module"])
    assert marker.exists()


def test_config_naming_module_this_is_refused_unimported(tmp_path: Path):
    if "this" in sys.modules:
        pytest.skip("`this` was imported by something else in this process")
    path, _ = _servable(tmp_path)
    _name_class(path, "encoder", {"module": "this", "class": "s"})
    with pytest.raises(UntrustedModuleError, match="'this', which is not trusted"):
        SimilarityModel.load(path)
    assert "this" not in sys.modules


def test_switch_encoder_options_obey_the_same_trust(
    tmp_path: Path, marker: Path, planted_module: str
):
    """Nested configs (a SwitchEncoder's options) are checked against the caller's list too."""
    from quaterion_models.encoders.switch_encoder import SwitchEncoder

    model = SimilarityModel(SwitchEncoder({"a": MlpEncoder()}), LinearHead(32, output_size=8))
    path = tmp_path / "servable"
    model.save(path)
    nested = path / "encoders" / "default" / "config.json"
    nested.write_text(json.dumps({"encoders": {"a": {"module": "planted_module", "class": "X"}}}))
    _rewrite_manifest(path)
    with pytest.raises(UntrustedModuleError, match="SwitchEncoder config"):
        SimilarityModel.load(path)
    assert not marker.exists()
