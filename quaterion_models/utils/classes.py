"""Record a class as an import path and import it back (used in servable configs).

Loading a servable (`restore_subclass`) imports a module a config names only when it is
trusted: part of `quaterion` or `quaterion_models`, or named by the caller through
`trusting_modules` (what `SimilarityModel.load(trusted_modules=...)` does), because importing a
module runs its code before any class check could refuse it. A module the process has already
imported is looked up without importing anything (its code has run already, at the caller's
wish), so a service that imports its own encoder classes loads their servables as before.
It then refuses anything that is not a subclass of the expected base class before any of its
methods runs, and `check_plain_key` keeps config keys from escaping the servable directory.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

logger = logging.getLogger(__name__)

TRUSTED_PACKAGES = ("quaterion", "quaterion_models")
_caller_trusted: ContextVar[tuple[str, ...]] = ContextVar("trusted_modules", default=())


class UntrustedModuleError(ValueError):
    """A saved config names a module the loader was not allowed to import."""


@contextmanager
def trusting_modules(modules: Iterable[str]) -> Iterator[None]:
    """Let `restore_subclass` import `modules` (and their submodules) inside the block, in
    addition to `quaterion` and `quaterion_models`.

    Args:
        modules: absolute module or package names, e.g. `["my_service.encoders"]`.
    """
    names = tuple(modules)
    for name in names:
        if not isinstance(name, str) or not name or name.startswith("."):
            raise ValueError(f"trusted_modules takes absolute module names, got {name!r}")
    token = _caller_trusted.set(_caller_trusted.get() + names)
    try:
        yield
    finally:
        _caller_trusted.reset(token)


def is_trusted_module(module_name: str) -> bool:
    """Whether `module_name` is, or is inside, a trusted package or caller-named module.

    Args:
        module_name: an absolute module name.
    """
    return any(
        module_name == trusted or module_name.startswith(f"{trusted}.")
        for trusted in TRUSTED_PACKAGES + _caller_trusted.get()
    )


def save_class_import(obj: Any) -> dict[str, str]:
    """Import path of `obj`'s class: `{"module": ..., "class": ...}`.

    Classes defined in `__main__` are recorded too, with a warning: another process
    cannot import them back.

    Args:
        obj: an instance of an importable class.
    """
    module = type(obj).__module__
    if module == "__main__":
        logger.warning(
            "%s is defined in __main__: a saved model that refers to it can only be loaded "
            "by a script that defines it again. Move the class into an importable module.",
            type(obj).__qualname__,
        )
    return {"module": module, "class": type(obj).__qualname__}


def restore_class(data: dict[str, str]) -> type:
    """The class named by a `save_class_import` record (nested qualnames supported).

    Args:
        data: a `save_class_import` record.

    Returns:
        the class (its module is imported).
    """
    try:
        module_name, qualname = data["module"], data["class"]
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"A class record must be a dict with 'module' and 'class' keys, got {data!r}"
        ) from exc
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise ImportError(
                f"Module {module_name!r} has no class {qualname!r}: was it renamed or removed "
                "since the model was saved?"
            ) from exc
    return target


def restore_subclass(data: dict[str, str], base: type, source: str) -> type:
    """`restore_class(data)` for a trusted module only (`UntrustedModuleError` before any
    import otherwise), refused with a TypeError unless it is a subclass of `base`.

    `source` names the config the record comes from, for the error message.

    Args:
        data: a `save_class_import` record.
        base: the class the result must derive from.
        source: the file the record came from, named in the error.

    Returns:
        the class.
    """
    module_name = data.get("module") if isinstance(data, dict) else None
    if (
        isinstance(module_name, str)
        and module_name not in sys.modules
        and not is_trusted_module(module_name)
    ):
        top = module_name.split(".")[0]
        raise UntrustedModuleError(
            f"{source} names module {module_name!r}, which is not trusted: loading imports "
            f"only {' and '.join(TRUSTED_PACKAGES)} and modules the caller names, because an "
            "import runs the module's code. If you trust it, pass "
            f"trusted_modules=[{top!r}] to SimilarityModel.load (or import it first)"
        )
    target = restore_class(data)
    if not (isinstance(target, type) and issubclass(target, base)):
        raise TypeError(
            f"{source} names {data['module']}.{data['class']} ({type(target).__name__}), which "
            f"is not a subclass of {base.__name__}; only {base.__name__} subclasses can be "
            "loaded from a config"
        )
    return target


def check_plain_key(key: Any, source: str) -> str:
    """`key` if it is a plain name (a non-empty str, no path separators, not '.' or '..').

    Args:
        key: the value to check.
        source: the file it came from, named in the error.

    Returns:
        `key`.
    """
    if (
        not isinstance(key, str)
        or key in ("", ".")
        or ".." in key
        or any(char in key for char in "/\\\0")
    ):
        raise ValueError(
            f"{source} has the invalid key {key!r}: keys must be plain names without '/', "
            "'\\' or '..'; the config was edited or not written by Quaterion"
        )
    return key
