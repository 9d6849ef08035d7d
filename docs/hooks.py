"""mkdocs hooks: the API reference and the command-line page are generated from the code.

Nothing here is written to docs/: the pages exist only in the build, so they cannot drift
from the modules and parsers they describe.
"""

from __future__ import annotations

import argparse
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


def reference_page(module: str) -> str:
    """Markdown of one module's page: mkdocstrings renders it from the docstrings."""
    path = ROOT / Path(*module.split("."))
    options = ""
    if path.is_dir():  # a package page: its docstring; its members have their modules' pages
        options = "\n    options:\n      members: false"
    return f"::: {module}{options}\n"


def reference_uri(module: str) -> str:
    return "reference/" + module.replace(".", "/") + ".md"


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
    config.nav.append({"Command line": CLI_PAGE})
    config.nav.append({"API reference": reference_nav()})
    return config


def on_files(files: Files, config: MkDocsConfig) -> Files:
    files.append(File.generated(config, CLI_PAGE, content=cli_page()))
    for package in PACKAGES:
        for module in public_modules(package):
            page = File.generated(config, reference_uri(module), content=reference_page(module))
            files.append(page)
    return files
