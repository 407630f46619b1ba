#!/usr/bin/env bash
# Build the odh-hub-notebook wheel: build-wheel.sh CHECKOUT OUT_DIR [PYTHON]. The labextension must be built
# (labextension/odh_labextension/, by labextension/build.sh) in CHECKOUT.
set -euo pipefail
src=$(cd "$1" && pwd); out=$2; py=${3:-python3}
[ -f "$src/labextension/odh_labextension/package.json" ] || { echo "labextension not built in $src (labextension/build.sh)"; exit 1; }
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cp "$src/images/notebook-ext/pyproject.toml" "$work/"
cp -r "$src/server_extension" "$work/server_extension"
find "$work/server_extension" -name __pycache__ -prune -exec rm -rf {} +
# the pure hub-side modules the notebook side uses ([tool.odh-hub] shared-modules), and no other
"$py" -c 'import sys, tomllib; print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["tool"]["odh-hub"]["shared-modules"]))' \
    "$src/images/notebook-ext/pyproject.toml" | while read -r module; do
  mkdir -p "$work/$(dirname "$module")"
  cp "$src/$module" "$work/$module"
done
mkdir -p "$work/jupyter-config/jupyter_server_config.d"
cp "$src/jupyter-config/jupyter_server_config.d/odh-hub.json" "$work/jupyter-config/jupyter_server_config.d/"
cp -rL "$src/labextension/odh_labextension" "$work/odh_labextension"
mkdir -p "$out"
"$py" -m pip wheel -q --no-deps -w "$out" "$work"
