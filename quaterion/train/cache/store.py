"""On-disk cache: `<save_dir>/<encoder>/<split>.safetensors` (`rows` [N, D], or hidden states as
`values` [total, D] + `offsets` [N + 1]; opened memory-mapped) and a JSON manifest (fingerprints,
layout, shape, dtype, checksum) written after it, both atomically; a file that does not match
its manifest is reported and rebuilt, never used."""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import torch

from quaterion.train.cache.fingerprint import tensor_checksum
from quaterion.train.cache.in_memory_cache_encoder import RaggedRows
from quaterion_models.utils.files import read_json, save_tensors_atomic, write_json_atomic

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "F64": torch.float64,
           "I64": torch.int64}  # fmt: skip


def _map_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file, memory-mapped (copy-on-write)."""
    try:
        with open(path, "rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(size)) if 0 < size <= path.stat().st_size - 8 else None
        tensors = {}
        for name, info in header.items():
            if name == "__metadata__":
                continue
            start, stop = (8 + size + offset for offset in info["data_offsets"])
            if stop > path.stat().st_size:
                raise ValueError(f"{stop - path.stat().st_size} bytes missing")
            raw = np.memmap(path, np.uint8, "c", offset=start, shape=(stop - start,))
            tensors[name] = torch.from_numpy(raw).view(_DTYPES[info["dtype"]]).view(info["shape"])
        return tensors
    except (TypeError, ValueError, KeyError, RuntimeError, AttributeError) as exc:
        raise ValueError(f"Corrupted cache file {path}: {exc}") from exc


def _parts(rows: torch.Tensor | RaggedRows) -> dict[str, torch.Tensor]:
    """The tensors a table is stored as: `rows`, or a ragged table's `values` and `offsets`."""
    if isinstance(rows, RaggedRows):
        return {"values": rows.values, "offsets": rows.offsets}
    return {"rows": rows}


def _checksum(parts: dict[str, torch.Tensor]) -> str:
    return "+".join(tensor_checksum(parts[name]) for name in sorted(parts))


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
            raise NotADirectoryError(f"CacheConfig.save_dir {self.root} is a file; use a directory")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise PermissionError("permission denied")
        except OSError as exc:
            raise type(exc)(
                f"CacheConfig.save_dir {self.root} cannot be created or is not writable "
                f"({exc.strerror or exc}); give a writable directory"
            ) from exc

    def _paths(self, encoder: str, split: str) -> tuple[Path, Path]:
        folder = self.root / re.sub(r"[^A-Za-z0-9_.-]", "_", encoder)
        return folder / f"{split}.safetensors", folder / f"{split}.json"

    def load(self, encoder: str, split: str, encoder_fingerprint: str
             ) -> tuple[torch.Tensor | RaggedRows, str] | None:  # fmt: skip
        """The stored rows (memory-mapped) and the fingerprint of the data they were computed
        from, if an identical encoder wrote them and the file matches its manifest; else None.

        Args:
            encoder: encoder name.
            split: `"train"` or `"val"`.
            encoder_fingerprint: fingerprint of the encoder now.
        """
        tensor_path, manifest_path = self._paths(encoder, split)
        where = f"cache of encoder '{encoder}' ({split})"
        if not manifest_path.is_file():
            logger.info("Building the %s: nothing stored in %s yet", where, self.root)
            return None
        try:
            manifest = read_json(manifest_path, "cache manifest")
            if manifest["format"] != FORMAT_VERSION:
                raise KeyError("format")
            keys = ("encoder_fingerprint", "shape", "dtype", "checksum", "data_fingerprint")
            fingerprint, shape, dtype, checksum, data = (manifest[key] for key in keys)
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("Rebuilding the %s: unreadable manifest %s (%s)", where, manifest_path,
                           exc)  # fmt: skip
            return None
        try:
            if fingerprint != encoder_fingerprint:
                raise LookupError("the encoder changed (weights or configuration) since "
                                  f"{manifest_path} was written")  # fmt: skip
            parts = _map_tensors(tensor_path)
            ragged = manifest.get("layout") == "ragged"
            names = ["offsets", "values"] if ragged else ["rows"]
            if sorted(parts) != names:
                raise ValueError(f"{tensor_path} is corrupted (holds {sorted(parts)}, manifest "
                                 f"says {names})")  # fmt: skip
            main = parts[names[-1]]
            if [list(main.shape), str(main.dtype)] != [list(shape), dtype]:
                raise ValueError(f"{tensor_path} is corrupted (shape {tuple(main.shape)} "
                                 f"{main.dtype}, manifest says {shape} {dtype})")  # fmt: skip
            if _checksum(parts) != checksum:
                raise ValueError(f"{tensor_path} is corrupted (checksum mismatch)")
        except (OSError, ValueError, LookupError) as exc:
            logger.warning("Rebuilding the %s: %s", where, exc)
            return None
        return (RaggedRows(parts["values"], parts["offsets"]) if ragged else main), data

    def save(self, encoder: str, split: str, rows: torch.Tensor | RaggedRows,
             encoder_fingerprint: str, data_fingerprint: str) -> None:  # fmt: skip
        """Write `rows` and then its manifest.

        Args:
            encoder: encoder name.
            split: `"train"` or `"val"`.
            rows: `[N, D]` the rows, or a partly trainable encoder's `RaggedRows`.
            encoder_fingerprint: fingerprint of the encoder.
            data_fingerprint: fingerprint of the split's data.
        """
        tensor_path, manifest_path = self._paths(encoder, split)
        tensor_path.parent.mkdir(parents=True, exist_ok=True)
        parts = {name: t.detach().cpu().contiguous() for name, t in _parts(rows).items()}
        save_tensors_atomic(parts, tensor_path)
        main = parts.get("rows", parts.get("values"))
        layout = {} if "rows" in parts else {"layout": "ragged", "rows": len(rows)}
        write_json_atomic(manifest_path, {
            "format": FORMAT_VERSION, "encoder": encoder, "split": split, **layout,
            "encoder_fingerprint": encoder_fingerprint, "data_fingerprint": data_fingerprint,
            "shape": list(main.shape), "dtype": str(main.dtype), "checksum": _checksum(parts),
        })  # fmt: skip
