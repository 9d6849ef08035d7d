"""Lazy imports of optional packages, failing with the pip extra that provides them."""

from __future__ import annotations

import importlib
from types import ModuleType


def import_optional(module: str, extra: str, purpose: str) -> ModuleType:
    """Import `module`, or raise ImportError naming `purpose` and `pip install quaterion[extra]`.

    Optional integrations call this inside functions, so importing Quaterion never needs them.

    Args:
        module: module to import.
        extra: the `quaterion[extra]` that installs it.
        purpose: what needs it, named in the error.

    Returns:
        the imported module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs the optional package `{module.split('.')[0]}` "
            f"({exc}); install it with `pip install quaterion[{extra}]`"
        ) from exc
