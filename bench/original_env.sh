#!/usr/bin/env bash
# Build a venv holding the ORIGINAL Quaterion (quaterion 0.1.35 + quaterion-models 0.1.19) for the
# side-by-side section of bench/bench_eval.py. The venv lives at .venv-original (git-ignored).
#   bash bench/original_env.sh [VENV_DIR]
# The original pins Python < 3.11 and Lightning 1.x. It runs here once installed without its
# metadata checks, on Lightning 1.9.5, numpy < 2, setuptools < 81 (Lightning 1.9 needs
# pkg_resources), and with torch's renamed T_co TypeVar aliased back (torch >= 2.5 calls it _T_co).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-original}
export PIP_DISABLE_PIP_VERSION_CHECK=1
if [ -x "$VENV/bin/python" ] && env -u PYTHONPATH "$VENV/bin/python" -P -W ignore -c 'import quaterion.eval.group' \
    2>/dev/null; then
  echo "original quaterion already in $VENV"
  exit 0
fi
python3 -m venv "$VENV"
PIP="$VENV/bin/pip"
"$PIP" install -q --upgrade pip
# Pinned torch first: resolves to the CPU wheel here; an unpinned torch pulls a CUDA build.
"$PIP" install -q torch==2.13.0
"$PIP" install -q numpy==1.26.4 setuptools==80.9.0 pytorch-lightning==1.9.5 \
  lightning-utilities==0.8.0 torchmetrics==0.8.2 loguru==0.5.3 mmh3==3.1.0 rich==12.6.0 \
  protobuf==3.19.6 pytorch-metric-learning==1.7.3
"$PIP" install -q --no-deps --ignore-requires-python quaterion==0.1.35 quaterion-models==0.1.19
TDATA="$("$VENV/bin/python" -P -c \
  'import os, importlib.util as u; print(os.path.dirname(u.find_spec("torch").origin))')/utils/data"
for f in dataset.py dataloader.py; do
  grep -q '^T_co = _T_co' "$TDATA/$f" || printf '\nT_co = _T_co\n' >> "$TDATA/$f"
done
env -u PYTHONPATH "$VENV/bin/python" -P -W ignore -c \
  'from quaterion import Quaterion, TrainableModel; import quaterion.eval.group; print("original quaterion ready")'
