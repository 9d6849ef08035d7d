#!/usr/bin/env bash
# Set up a virtual environment (.venv) with torch (CPU wheel), the project and all its extras,
# plus the Debian packages that ship the real data sets. Idempotent: re-running is cheap.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${QUATERION_VENV:-.venv}
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
PIP="$VENV/bin/pip"

# pip install, without the notices this machine's pip configuration prints about absent local
# package folders; real warnings and errors still show, and pip's exit status is kept.
pip_install() {
  "$PIP" install -q "$@" 2>&1 | { grep -v "^WARNING: Location '" || true; }
}

# Real data sets come from Debian packages (no downloads at run time).
need_apt=()
[ -d /usr/share/wordnet ] || need_apt+=(wordnet-base)
[ -d /usr/share/datasets/fashion-mnist ] || need_apt+=(dataset-fashion-mnist)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

stamp="$VENV/.quaterion-setup"
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  # torch first, pinned: this resolves to the CPU wheel here; unpinned torch pulls a CUDA build.
  pip_install torch==2.13.0
  pip_install -e ".[all]"
  echo "$want" > "$stamp"
fi
