"""mkdocs hooks: the API reference and the command-line page are generated from the code.

Nothing here is written to docs/: the pages exist only in the build, so they cannot drift
from the modules and parsers they describe.
"""

from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("quaterion_models", "quaterion")
SKIPPED = ("quaterion.cli",)  # documented by the command-line page instead
CLI_PAGE = "cli.md"


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
        "# Command line\n",
        "Generated from the `quaterion` command's argument parsers when the site is built. "
        "Each command also prints this with `--help`.\n",
        f"```text\n{parser.format_help()}```\n",
    ]
    for name, sub in subparsers.choices.items():
        sections.append(f"## quaterion {name}\n\n```text\n{sub.format_help()}```\n")
    return "\n".join(sections)


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    config.nav.insert(config.nav.index({"Serving": "serving.md"}), {"Command line": CLI_PAGE})
    config.nav.append({"API reference": reference_nav()})
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, CLI_PAGE, content=cli_page()))
    for package in PACKAGES:
        for module in public_modules(package):
            page = File.generated(config, reference_uri(module), content=reference_page(module))
            files.append(page)
    return files
