"""On-disk cache: one safetensors file per encoder and split, with a JSON manifest beside it.

Layout under `save_dir`: `<encoder>/<split>.safetensors` (one tensor `rows` [N, D]) and
`<encoder>/<split>.json` (fingerprints, shape, dtype, checksum). Both are written to a temporary
name and renamed, the manifest last, so a manifest always describes a complete file; a file
that does not match its manifest (truncated, edited) is reported and rebuilt, never used.
Stored rows open memory-mapped: a cache larger than the memory it may take trains from the
page cache, and pages that are not read are never loaded.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from quaterion.train.cache.fingerprint import tensor_checksum
from quaterion_models.utils.files import (
    CorruptFileError,
    read_json,
    save_tensors_atomic,
    write_json_atomic,
)

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64}


@dataclass(frozen=True)
class StoredEntry:
    """What a manifest says about one encoder's rows of one split.

    Args:
        encoder_fingerprint: fingerprint of the encoder that computed the rows.
        data_fingerprint: fingerprint of the split's data.
        shape: `[N, D]` of the rows.
        dtype: their dtype.
        checksum: digest of the rows file.
    """

    encoder_fingerprint: str
    data_fingerprint: str
    shape: tuple[int, int]
    dtype: str
    checksum: str


def map_rows(path: Path) -> torch.Tensor:
    """The tensor `rows` of the safetensors file `path`, memory-mapped (copy-on-write).

    Args:
        path: a safetensors file written by `CacheStore.save`.
    """
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(size)) if 0 < size <= path.stat().st_size - 8 else None
        info = header["rows"]
        start, stop = (8 + size + offset for offset in info["data_offsets"])
        if stop > path.stat().st_size:
            raise ValueError(f"{stop - path.stat().st_size} bytes missing")
        raw = np.memmap(path, np.uint8, "c", offset=start, shape=(stop - start,))
        return torch.from_numpy(raw).view(_DTYPES[info["dtype"]]).view(info["shape"])
    except (TypeError, ValueError, KeyError, RuntimeError) as exc:
        raise CorruptFileError(f"Corrupted cache file {path}: {exc}") from exc


class CacheStore:
    """Reads and writes cached rows under `root`; every refusal is logged with its reason.

    Args:
        root: the `save_dir`.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def ensure_writable(self) -> None:
        """Create the directory, or say what is wrong with it before any work is done."""
        if self.root.exists() and not self.root.is_dir():
            raise NotADirectoryError(
                f"CacheConfig.save_dir {self.root} is a file; give a directory"
            )
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise type(exc)(
                f"CacheConfig.save_dir {self.root} cannot be created or is not writable "
                f"({exc.strerror or exc}); give a writable directory"
            ) from exc
        if not os.access(self.root, os.W_OK):
            raise PermissionError(
                f"CacheConfig.save_dir {self.root} is not writable; give a writable directory"
            )

    def _paths(self, encoder: str, split: str) -> tuple[Path, Path]:
        folder = self.root / re.sub(r"[^A-Za-z0-9_.-]", "_", encoder)
        return folder / f"{split}.safetensors", folder / f"{split}.json"

    def entry(self, encoder: str, split: str, encoder_fingerprint: str) -> StoredEntry | None:
        """The manifest of (`encoder`, `split`) if it was built by an identical encoder.

        Args:
            encoder: encoder name.
            split: `"train"` or `"val"`.
            encoder_fingerprint: fingerprint of the encoder now.
        """
        _, manifest_path = self._paths(encoder, split)
        where = f"cache of encoder '{encoder}' ({split})"
        if not manifest_path.is_file():
            logger.info("Building the %s: nothing stored in %s yet", where, self.root)
            return None
        try:
            manifest = read_json(manifest_path, "cache manifest")
            if manifest["format"] != FORMAT_VERSION:
                raise KeyError("format")
            fields = StoredEntry.__dataclass_fields__
            entry = StoredEntry(**{name: manifest[name] for name in fields})
        except (CorruptFileError, KeyError, TypeError) as exc:
            logger.warning(
                "Rebuilding the %s: unreadable manifest %s (%s)", where, manifest_path, exc
            )
            return None
        if entry.encoder_fingerprint != encoder_fingerprint:
            logger.warning(
                "Rebuilding the %s: the encoder changed (weights or configuration) since %s was "
                "written", where, manifest_path,
            )  # fmt: skip
            return None
        return entry

    def load(self, encoder: str, split: str, entry: StoredEntry, data_fingerprint: str,
             num_rows: int) -> torch.Tensor | None:  # fmt: skip
        """The stored rows (memory-mapped) if they are of this data (`data_fingerprint`,
        `num_rows`) and the file matches its manifest; else None, logged.

        Args:
            encoder: encoder name.
            split: `"train"` or `"val"`.
            entry: its manifest, from `entry`.
            data_fingerprint: fingerprint of the split's data now.
            num_rows: number of rows the data needs.
        """
        tensor_path, _ = self._paths(encoder, split)
        where = f"cache of encoder '{encoder}' ({split})"
        if entry.data_fingerprint != data_fingerprint:
            logger.warning("Rebuilding the %s: the data changed since it was stored", where)
            return None
        try:
            rows = map_rows(tensor_path)
        except (FileNotFoundError, CorruptFileError) as exc:
            logger.warning("Rebuilding the %s: %s", where, exc)
            return None
        problem = None
        if list(rows.shape) != list(entry.shape) or str(rows.dtype) != entry.dtype:
            problem = (
                f"shape {tuple(rows.shape)} {rows.dtype}, manifest says {entry.shape} {entry.dtype}"
            )
        elif tensor_checksum(rows) != entry.checksum:
            problem = "checksum mismatch"
        if problem is not None:
            logger.warning("Rebuilding the %s: %s is corrupted (%s)", where, tensor_path, problem)
            return None
        if len(rows) != num_rows:
            logger.warning(
                "Rebuilding the %s: %d rows stored, %d expected", where, len(rows), num_rows
            )
            return None
        logger.info("Reusing the %s from %s", where, self.root)
        return rows

    def save(self, encoder: str, split: str, rows: torch.Tensor, encoder_fingerprint: str,
             data_fingerprint: str) -> None:  # fmt: skip
        """Write `rows` [N, D] and then its manifest.

        Args:
            encoder: encoder name.
            split: `"train"` or `"val"`.
            rows: `[N, D]` the rows.
            encoder_fingerprint: fingerprint of the encoder.
            data_fingerprint: fingerprint of the split's data.
        """
        tensor_path, manifest_path = self._paths(encoder, split)
        tensor_path.parent.mkdir(parents=True, exist_ok=True)
        rows = rows.detach().cpu().contiguous()
        save_tensors_atomic({"rows": rows}, tensor_path)
        manifest = StoredEntry(encoder_fingerprint, data_fingerprint, list(rows.shape),
                               str(rows.dtype), tensor_checksum(rows))  # fmt: skip
        manifest = {"format": FORMAT_VERSION, "encoder": encoder, "split": split, **vars(manifest)}
        write_json_atomic(manifest_path, manifest)
