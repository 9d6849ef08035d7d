#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite plus the linter.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check quaterion quaterion_models tests bench examples docs
# the documentation site: --strict fails on broken links, missing references, bad docstrings
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
NO_MKDOCS_2_WARNING=1 PYTHONPATH=. .venv/bin/mkdocs build --strict --quiet --site-dir "$site"
# the browser tests drive Debian's chromium; when apt cannot install it, they skip saying why
if ! command -v chromium >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
  { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium; } \
    >/dev/null 2>&1 || echo "chromium could not be installed with apt: browser tests will skip" >&2
fi
.venv/bin/python -m pytest "$@"
