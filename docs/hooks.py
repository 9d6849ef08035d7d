"""mkdocs hooks: the API reference and the command-line page are generated from the code.

Nothing here is written to docs/: the pages exist only in the build, so they cannot drift
from the modules and parsers they describe.
"""

from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # mkdocs is needed to build the site, not to list the modules (tests do)
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("quaterion_models", "quaterion")
SKIPPED = ("quaterion.cli",)  # documented by the command-line page instead
CLI_PAGE = "cli.md"
CONFIG_CLASSES = ("FitConfig", "DataConfig", "EncoderConfig", "ComponentConfig")


def public_modules(package: str) -> list[str]:
    """Dotted names of the package's public modules (no `_private` parts), sorted."""
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        name = ".".join(parts)
        if any(part.startswith("_") for part in parts) or name.startswith(SKIPPED):
            continue
        names.append(name)
    return names


def own_members(path: Path) -> list[str]:
    """Public classes and functions defined in the file itself (not imported into it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        node.name
        for node in tree.body
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and not node.name.startswith("_")
    ]


def reference_page(module: str) -> str:
    """Markdown of one module's page: mkdocstrings renders it from the docstrings.

    A package's page shows its docstring and what its `__init__` defines itself; the names it
    re-exports are documented on their own modules' pages.
    """
    path = ROOT / Path(*module.split("."))
    if not path.is_dir():
        return f"::: {module}\n"
    members = own_members(path / "__init__.py")
    listed = "[" + ", ".join(members) + "]" if members else "false"
    return f"::: {module}\n    options:\n      members: {listed}\n"


def reference_uri(module: str) -> str:
    """Where a module's page lives: a package's page is the index of its folder."""
    path = "reference/" + module.replace(".", "/")
    if (ROOT / Path(*module.split("."))).is_dir():
        return path + "/index.md"
    return path + ".md"


def reference_nav() -> list:
    """One section per package, one entry per public module."""
    return [
        {package: [{module: reference_uri(module)} for module in public_modules(package)]}
        for package in PACKAGES
    ]


def cli_page() -> str:
    """The `quaterion` command's help, as argparse prints it, for the command and each
    sub-command."""
    from quaterion.cli import build_parser

    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal; fix the width
    parser = build_parser()
    subparsers = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    sections = [
        "# Command-line reference\n",
        "Generated from the `quaterion` command's argument parsers and the fit-config schema "
        "when the site is built; each command also prints its part with `--help`. The "
        "[command-line guide](command-line.md) explains how the commands fit together.\n",
        f"```text\n{parser.format_help()}```\n",
    ]
    for name, sub in subparsers.choices.items():
        sections.append(f"## quaterion {name}\n\n```text\n{sub.format_help()}```\n")
    sections.append(config_reference())
    return "\n".join(sections)


def field_comments(path: Path, class_name: str) -> dict[str, str]:
    """The trailing `# ...` comment of each field of dataclass `class_name` in `path`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    tree = ast.parse("\n".join(lines))
    node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
    comments = {}
    for item in node.body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            line = lines[item.end_lineno - 1]
            comments[item.target.id] = line.split("  # ", 1)[1] if "  # " in line else ""
    return comments


def config_reference() -> str:
    """Markdown tables of the `quaterion fit` config: sections, fields, types, defaults, and
    the names a config may use, read from the schema and the component tables."""
    import dataclasses

    from quaterion.cli import components, config

    source = ROOT / "quaterion" / "cli" / "config.py"
    sections = ["## Config reference\n", "Generated from `quaterion.cli.config` at build time.\n"]
    for class_name in CONFIG_CLASSES:
        kind = getattr(config, class_name)
        comments = field_comments(source, class_name)
        rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
        for item in dataclasses.fields(kind):
            if item.default is not dataclasses.MISSING:
                default = f"`{item.default!r}`"
            elif item.default_factory is not dataclasses.MISSING:
                default = f"`{item.default_factory()!r}`"
            else:
                default = "required"
            type_name = str(item.type).replace("|", "\\|").replace("[", "\\[")
            meaning = comments[item.name].replace("{", "&#123;").replace("}", "&#125;")
            rows.append(f"| `{item.name}` | {type_name} | {default} | {meaning} |")
        doc = (kind.__doc__ or "").strip()
        sections.append(f"### `{class_name}`\n\n{doc}\n\n" + "\n".join(rows) + "\n")
    kinds = "\n".join(f"| `{name}` | {text} |" for name, text in config.DATA_KINDS.items())
    sections.append(f"### Data kinds (`data.kind`)\n\n| kind | data |\n|---|---|\n{kinds}\n")
    encoders = "\n".join(
        f"| `{name}` | {choice.help} |" for name, choice in components.ENCODERS.items()
    )
    sections.append(f"### Encoders (`encoder.name`)\n\n| name | encoder |\n|---|---|\n{encoders}\n")
    sections.append(
        "### Heads and losses (`head.name`, `loss.name`)\n\n"
        f"Heads: {', '.join(f'`{name}`' for name in components.HEADS)}.\n\n"
        f"Group losses: {', '.join(f'`{name}`' for name in components.GROUP_LOSSES)}.\n\n"
        f"Pair losses: {', '.join(f'`{name}`' for name in components.PAIR_LOSSES)}.\n\n"
        f"`kwargs` are the class's constructor arguments, except "
        f"{', '.join(f'`{name}`' for name in components.DERIVED_ARGUMENTS)}, which "
        "`quaterion fit` works out from the encoder and the data.\n"
    )
    return "\n".join(sections)


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    config.nav.insert(
        config.nav.index({"Serving": "serving.md"}),
        {"Command line": [{"Guide": "command-line.md"}, {"Reference": CLI_PAGE}]},
    )
    config.nav.append({"API reference": reference_nav()})
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    from mkdocs.structure.files import File

    files.append(File.generated(config, CLI_PAGE, content=cli_page()))
    for package in PACKAGES:
        for module in public_modules(package):
            page = File.generated(config, reference_uri(module), content=reference_page(module))
            files.append(page)
    return files
