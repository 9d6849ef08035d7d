"""The layering of DESIGN.md, enforced: a module imports only its own layer or layers below.

cli -> main -> train -> (eval, loss) -> (dataset, distances, utils) -> quaterion_models -> torch.
Optional integrations (data, export, serving) sit beside `train` and may use what is below it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Higher number = higher layer. A module may import modules of a lower or equal layer.
LAYERS: dict[str, int] = {
    "quaterion_models": 0,
    "quaterion.utils": 1,
    "quaterion.distances": 1,
    "quaterion.dataset": 1,
    "quaterion.loss": 2,
    "quaterion.eval": 2,
    "quaterion.data": 2,
    "quaterion.train": 3,
    "quaterion.export": 3,
    "quaterion.serving": 3,
    "quaterion.main": 4,
    "quaterion.plots": 5,
    "quaterion.demo": 6,
    "quaterion.cli": 6,
    "quaterion": 6,  # the package __init__ re-exports the entry points lazily
}


def layer_of(module: str) -> int | None:
    """Layer of a dotted module name: its longest registered prefix."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYERS:
            return LAYERS[prefix]
    return None


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


SOURCES = sorted(p for pkg in ("quaterion", "quaterion_models") for p in (ROOT / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_only_downward(path: Path) -> None:
    own = module_name(path)
    own_layer = layer_of(own)
    assert own_layer is not None, f"{own} is not assigned to a layer in this test"
    upward = [
        name
        for name in imported_modules(path)
        if (layer := layer_of(name)) is not None and layer > own_layer
    ]
    assert not upward, f"{own} (layer {own_layer}) imports higher layers: {upward}"


def test_inference_package_never_imports_training_stack() -> None:
    banned = ("quaterion.", "pytorch_lightning", "lightning")
    offenders = {
        module_name(path): [
            n for n in imported_modules(path) if n.startswith(banned) or n == "quaterion"
        ]
        for path in (ROOT / "quaterion_models").rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}


def test_serving_never_imports_training_code() -> None:
    """The HTTP service and the stores run on `quaterion_models` alone (DESIGN.md, Serving)."""
    allowed = ("quaterion.serving", "quaterion.utils", "quaterion_models")
    offenders = {
        module_name(path): [
            name
            for name in imported_modules(path)
            if (name == "quaterion" or name.startswith("quaterion."))
            and not name.startswith(allowed)
        ]
        for path in (ROOT / "quaterion" / "serving").rglob("*.py")
    }
    assert not {k: v for k, v in offenders.items() if v}
