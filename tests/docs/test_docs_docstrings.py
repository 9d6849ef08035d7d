"""Every public class and function of both packages documents what it does and each argument.

The API reference is generated from these docstrings (docs/hooks.py), so a gap here is a gap in
the site. "Public" is what the reference shows: modules, classes, functions and methods whose
names do not start with an underscore (the `quaterion` command is documented by its parsers).
"""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs"))
from hooks import PACKAGES, public_modules  # noqa: E402

MODULES = [module for package in PACKAGES for module in public_modules(package)]


def documented_parameters(docstring: str) -> set[str]:
    """Names listed in the docstring's `Args:` section (Google style: `name: text`)."""
    section = re.search(r"^Args:\n((?:[ \t]+.*\n?|\n)*)", docstring, re.M)
    if section is None:
        return set()
    return set(re.findall(r"^ {4}\**(\w+)(?: \(.*?\))?:", section.group(1), re.M))


def own_parameters(function) -> list[str]:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # builtins without a signature
        return []
    return [name for name in signature.parameters if name not in ("self", "cls")]


def public_members(module):
    for name, value in vars(module).items():
        if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
            continue
        if getattr(value, "__name__", name) != name:  # an alias: documented under its own name
            continue
        if inspect.isclass(value) or inspect.isfunction(value):
            yield name, value


def methods(cls):
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        function = value.fget if isinstance(value, property) else value
        function = getattr(function, "__func__", function)  # classmethod / staticmethod
        if inspect.isfunction(function):
            yield name, getattr(cls, name) if not isinstance(value, property) else value


def base_documents(cls, name: str, parameters: set[str]) -> bool:
    """An override may leave its arguments to the base method it overrides, when that one lists
    them (the reference links the base class)."""
    for base in cls.__mro__[1:]:
        method = vars(base).get(name)
        if method is not None and parameters <= documented_parameters(inspect.getdoc(method) or ""):
            return True
    return False


def framework_hook(cls, name: str) -> bool:
    """A method that overrides a Lightning hook (``training_step``, ``on_train_start``, ...):
    its arguments are Lightning's, documented there."""
    return any(
        name in vars(base) and base.__module__.startswith(("pytorch_lightning", "lightning"))
        for base in cls.__mro__[1:]
    )


def gaps(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    found = [] if module.__doc__ else [f"{module_name}: no module docstring"]
    for name, value in public_members(module):
        doc = inspect.getdoc(value) or ""
        if not doc:
            found.append(f"{name}: no docstring")
            continue
        signature_of = value.__init__ if inspect.isclass(value) else value
        if inspect.isclass(value) and "__init__" not in vars(value):
            signature_of = None  # inherits its constructor and that constructor's docs
        if signature_of is not None:
            missing = set(own_parameters(signature_of)) - documented_parameters(doc)
            if missing:
                found.append(f"{name}: Args: does not list {sorted(missing)}")
        if not inspect.isclass(value):
            continue
        for method_name, method in methods(value):
            method_doc = inspect.getdoc(method) or ""
            if not method_doc:
                found.append(f"{name}.{method_name}: no docstring")
                continue
            if isinstance(method, property):
                continue
            missing = set(own_parameters(method)) - documented_parameters(method_doc)
            if missing and not (
                base_documents(value, method_name, missing) or framework_hook(value, method_name)
            ):
                found.append(f"{name}.{method_name}: Args: does not list {sorted(missing)}")
    return found


@pytest.mark.parametrize("module_name", MODULES)
def test_public_api_is_documented(module_name):
    assert gaps(module_name) == []
