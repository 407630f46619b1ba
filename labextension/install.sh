#!/usr/bin/env bash
# Build @odh-hub/labextension if needed (build.sh) and put it where JupyterLab finds prebuilt
# extensions: $VENV/share/jupyter/labextensions/@odh-hub/labextension. An editable
# `pip install -e .` does not install pyproject's data-files (a wheel does), hence this copy.
# Idempotent: copies only when the built output differs from the installed one.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${ODH_VENV:-$(cd .. && pwd)/.venv}
SRC=$(pwd)/odh_labextension
DEST=$VENV/share/jupyter/labextensions/@odh-hub/labextension
say() { printf '[labextension] %s\n' "$*"; }

ODH_VENV=$VENV ./build.sh
if [ -d "$DEST" ] && diff -rq "$SRC" "$DEST" >/dev/null 2>&1; then
  say "installed copy up to date ($DEST)"
  exit 0
fi
rm -rf "$DEST.tmp"
mkdir -p "$(dirname "$DEST")"
cp -R "$SRC" "$DEST.tmp"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
say "installed into $DEST"
