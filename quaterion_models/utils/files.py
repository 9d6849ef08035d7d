"""Crash-safe writes and clear-error reads for everything Quaterion puts on disk.

Files are written under a temporary name and renamed into place; whole directories
(servables, caches, exports) are built under a hidden sibling and renamed at the end, so
an interrupted write never leaves something that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

PathLike = str | os.PathLike


class CorruptFileError(ValueError):
    """A file exists but cannot be parsed (truncated, edited or not what it claims to be)."""


def _sibling(path: Path, tag: str) -> Path:
    return path.with_name(f".{path.name}.{tag}-{uuid.uuid4().hex[:12]}")


def create_staging_file(path: PathLike) -> tuple[Path, int]:
    """Create an empty hidden sibling of `path` to write into; return it and the mode an
    ordinary new file gets here (0o666 less the umask: 0o644 under umask 022).

    Writers that create their files private (safetensors, ONNX, `mkstemp` all give 0o600)
    `chmod` the finished file to that mode, so a service user can read what was saved.

    Args:
        path: the file that will be written (the staging file is created beside it).

    Returns:
        (staging file, mode to give it once written).
    """
    staging = _sibling(Path(path), "tmp")
    handle = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        mode = stat.S_IMODE(os.fstat(handle).st_mode)
    finally:
        os.close(handle)
    return staging, mode


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _replace_directory(source: Path, target: Path) -> None:
    """Rename `source` onto `target`; an existing `target` is moved aside, then deleted."""
    if not target.exists():
        os.replace(source, target)
        return
    backup = _sibling(target, "old")
    os.replace(target, backup)
    try:
        os.replace(source, target)
    except BaseException:
        os.replace(backup, target)
        raise
    shutil.rmtree(backup, ignore_errors=True)


@contextmanager
def atomic_directory(path: PathLike) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces `path` when the block succeeds.

    The directory is a hidden sibling of `path` (same file system, so the final rename is
    atomic). On an exception it is deleted and `path` is left untouched. An existing
    directory at `path` is replaced as a whole: callers decide whether that is allowed.

    Args:
        path: the directory to write.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise FileExistsError(f"Cannot write a directory to {target}: a file is in the way")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(target, "tmp")
    staging.mkdir()
    try:
        yield staging
        _replace_directory(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_json_atomic(path: PathLike, obj: Any) -> None:
    """Write `obj` as indented JSON to `path` through a temporary file and a rename.

    Args:
        path: the file to write.
        obj: a JSON-serialisable value.
    """
    target = Path(path)
    staging = _sibling(target, "tmp")
    try:
        with open(staging, "w", encoding="utf-8") as handle:
            json.dump(obj, handle, indent=2)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def read_json(path: PathLike, what: str) -> Any:
    """Parse the JSON file `path`; `what` names it in errors ("head config", ...).

    Args:
        path: the file to read.
        what: a description of the file for errors.

    Returns:
        the parsed value.
    """
    source = Path(path)
    try:
        with open(source, encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"Missing {what}: {source} does not exist") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(
            f"Corrupted {what}: {source} is not valid JSON ({exc}); re-save the model"
        ) from exc


def _unshared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detached, contiguous CPU tensors, copying any that share storage with an earlier one."""
    seen: set[int] = set()
    result = {}
    for name, tensor in tensors.items():
        tensor = tensor.detach().cpu().contiguous()
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen and tensor.numel() > 0:
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        result[name] = tensor
    return result


def save_tensors_atomic(tensors: dict[str, torch.Tensor], path: PathLike) -> None:
    """Write `tensors` to the safetensors file `path` through a temporary file and a rename.

    Args:
        tensors: name -> tensor.
        path: the file to write.
    """
    target = Path(path)
    staging, mode = create_staging_file(target)
    try:
        save_file(_unshared(tensors), str(staging))
        os.chmod(staging, mode)
        _fsync(staging)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)


def load_tensors(path: PathLike, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Read a safetensors file onto `device`, naming the file if it is missing or corrupted.

    Args:
        path: a safetensors file.
        device: where the tensors are placed.

    Returns:
        name -> tensor.
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"Missing weights file: {source} does not exist")
    try:
        return load_file(str(source), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CorruptFileError(
            f"Corrupted weights file {source}: {exc}; re-save the model"
        ) from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def directory_manifest(root: PathLike) -> dict[str, dict[str, Any]]:
    """`{relative posix path: {"size", "sha256"}}` for every regular file under `root`.

    Args:
        root: the directory.

    Returns:
        relative path -> `{"size", "sha256"}` of every file under it.
    """
    base = Path(root)
    return {
        path.relative_to(base).as_posix(): {"size": path.stat().st_size, "sha256": _sha256(path)}
        for path in sorted(base.rglob("*"))
        if path.is_file()
    }


def member_file(root: PathLike, relative: Any, what: str) -> Path:
    """`root / relative` after checking that `relative` is a plain relative path (no `..`, not
    absolute), that it resolves inside `root` (no symlink leading out) and that it is a
    regular file (never a FIFO, device or socket, which could block or feed anything).

    Args:
        root: the directory the path must stay in.
        relative: a posix path relative to `root`, as a manifest lists it.
        what: a description of the directory for errors.

    Returns:
        the checked path.
    """
    base = Path(root)
    parts = relative.split("/") if isinstance(relative, str) else []
    if not parts or any(part in ("", ".", "..") or "\\" in part or "\0" in part for part in parts):
        raise CorruptFileError(
            f"{what} {base} lists the path {relative!r}, which is not a plain path inside its "
            "directory (absolute paths and '..' are refused); it was edited or not written by "
            "Quaterion"
        )
    path = base / relative
    if not path.resolve().is_relative_to(base.resolve()):
        raise CorruptFileError(
            f"{what} {base}: {relative} is a link leading outside the directory "
            f"(to {path.resolve()}); replace it with the file itself or re-save the model"
        )
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"Missing file in {what} {base}: {relative}") from exc
    if not stat.S_ISREG(mode):
        raise CorruptFileError(
            f"{what} {base}: {relative} is not a regular file (a directory, FIFO, device or "
            "socket); only regular files are read, re-save the model"
        )
    return path


def _unlisted_entries(base: Path, listed: set[str]) -> list[str]:
    """Relative paths of everything under `base` that is neither a directory nor listed."""
    unlisted = []
    for directory, subdirectories, files in os.walk(base):
        for name in subdirectories + files:
            path = Path(directory) / name
            relative = path.relative_to(base).as_posix()
            if relative not in listed and not (name in subdirectories and not path.is_symlink()):
                unlisted.append(relative)
    return sorted(unlisted)


def verify_manifest(
    root: PathLike, manifest: Any, what: str, unlisted: tuple[str, ...] = ()
) -> None:
    """Raise, naming the file, if a file listed in `manifest` is missing, changed, not a
    regular file or outside `root`, or if `root` holds anything the manifest does not list
    (other than the `unlisted` paths: the file holding the manifest), so that a loader that
    reads only inside `root` reads only files whose checksums were verified.

    Args:
        root: the directory the paths are relative to.
        manifest: a `directory_manifest` result (anything else is refused).
        what: a description of the directory for errors.
        unlisted: paths under `root` that may exist without being listed.
    """
    base = Path(root)
    if not isinstance(manifest, dict) or not all(
        isinstance(entry, dict) and {"size", "sha256"} <= entry.keys()
        for entry in manifest.values()
    ):
        raise CorruptFileError(
            f"{what} {base} has no valid file manifest (the 'files' entry of its config); it was "
            "edited or written by an older version: re-save it with SimilarityModel.save"
        )
    for relative, expected in manifest.items():
        path = member_file(base, relative, what)
        if path.stat().st_size != expected["size"] or _sha256(path) != expected["sha256"]:
            raise CorruptFileError(
                f"Corrupted file in {what} {base}: {relative} does not match the checksum "
                "recorded when it was saved; re-save the model"
            )
    extra = _unlisted_entries(base, set(manifest) | set(unlisted))
    if extra:
        raise CorruptFileError(
            f"{what} {base} holds files its manifest does not list: {', '.join(extra[:5])}"
            f"{' ...' if len(extra) > 5 else ''}; they were added after it was saved and would "
            "be read unchecked: remove them, or re-save the model"
        )
