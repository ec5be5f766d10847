#!/usr/bin/env bash
# Install the pinned CPU stack and mmseg_marginal (editable, with the test tools) into a venv.
#
#   bash tools/install.sh            # venv in .venv (override with VENV=...), python3 (PYTHON=...)
#
# This is the reproducible stack of `make test`: every version comes from
# requirements/constraints.txt (pip -c). To add the package to an environment that already has
# mmseg, use `pip install .` instead (see the README): setup.py only declares ranges.
#
# Order matters: mmcv 2.1.0 exists on PyPI only as a source archive whose setup.py imports
# pkg_resources and needs torch at build time, so it is built without build isolation, with
# setuptools<70 in the venv (about 30 minutes on 2 cores; pip caches the wheel). When a folder of
# prebuilt wheels lies at ../shared/wheels (or MMCV_WHEELS=DIR), pip takes mmcv from there
# instead. Afterwards setuptools goes to the constrained version (>=77 for torch, <81 because
# mmengine's `mmseg::` config scope imports pkg_resources, which setuptools 81+ no longer ships).
# TORCH_SPEC / TORCH_INDEX_URL choose another torch build (see the README's GPU section).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
WHEELS=${MMCV_WHEELS:-$ROOT/../shared/wheels}
CONSTRAINTS=$ROOT/requirements/constraints.txt

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip)
STAMP="$VENV/.mmseg_marginal-install"
KEY=$( (cat "$ROOT/setup.py" "$0" "$CONSTRAINTS"; echo "$TORCH_SPEC") | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$KEY" ]; then
    echo "install.sh: $VENV is up to date"
    exit 0
fi

FIND_LINKS=()
if [ -d "$WHEELS" ]; then
    FIND_LINKS=(--find-links "$WHEELS")
fi
TORCH_INDEX=()
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    TORCH_INDEX=(--index-url "$TORCH_INDEX_URL")
fi

"${PIP[@]}" install --upgrade pip
"${PIP[@]}" install "${TORCH_INDEX[@]}" "$TORCH_SPEC"
"${PIP[@]}" install 'setuptools<70' wheel ninja
"${PIP[@]}" install "${FIND_LINKS[@]}" --no-build-isolation 'mmcv==2.1.0'
"${PIP[@]}" install -c "$CONSTRAINTS" setuptools
"${PIP[@]}" install "${FIND_LINKS[@]}" -c "$CONSTRAINTS" -e "$ROOT[tests]"
"$VENV/bin/python" -c "import mmcv.ops, mmseg.models, mmseg_marginal; print('install.sh: ok')"
echo "$KEY" > "$STAMP"
