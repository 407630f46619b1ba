#!/bin/sh
# Stage 1 of every image (Node at build time only): build the JupyterLab extension, then the wheel the image
# installs. images/build-wheels.sh hub|notebook OUT_DIR, run from the repository root in a node:*-bookworm image.
#   hub:      odh-hub (the hub, spawners, platform service)
#   notebook: odh-hub-notebook (server extension + prebuilt labextension, images/notebook-ext/build-wheel.sh)
set -eu
kind=$1 out=$2
apt-get update -qq
apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip
rm -rf /var/lib/apt/lists/*
python3 -m venv /build-venv
/build-venv/bin/pip install -q "$(grep -o '"jupyterlab==[^"]*"' pyproject.toml | tr -d '"')"
ODH_VENV=/build-venv labextension/build.sh --force
case $kind in
  hub) /build-venv/bin/pip wheel -q --no-deps -w "$out" . ;;
  notebook) images/notebook-ext/build-wheel.sh . "$out" /build-venv/bin/python ;;
  *) echo "usage: build-wheels.sh hub|notebook OUT_DIR" >&2; exit 2 ;;
esac
