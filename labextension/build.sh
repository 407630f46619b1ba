#!/usr/bin/env bash
# Build the prebuilt JupyterLab extension @odh-hub/labextension into labextension/odh_labextension/.
# Idempotent: does nothing when the output is newer than every source. Needs Node >= 20.19
# (rspack 2) and the venv's JupyterLab (for jlpm and the builder); no Node at run time.
#   ODH_VENV=/path/to/venv labextension/build.sh [--force]
set -euo pipefail
cd "$(dirname "$0")"
HERE=$(pwd)
VENV=${ODH_VENV:-$(cd .. && pwd)/.venv}
OUT=$HERE/odh_labextension
STAMP=$OUT/package.json
say() { printf '[labextension] %s\n' "$*"; }

force=0
[ "${1:-}" = "--force" ] && force=1

sources=(package.json yarn.lock tsconfig.json .yarnrc.yml build.sh src schema style)
if [ $force = 0 ] && [ -f "$STAMP" ] && [ -f "$OUT/static/style.js" ] \
   && [ -z "$(find "${sources[@]}" -newer "$STAMP" -print -quit)" ]; then
  say "up to date ($OUT)"
  exit 0
fi

[ -x "$VENV/bin/jlpm" ] || { say "no jlpm in $VENV/bin: install the Python environment first (pip install -e .)"; exit 1; }
command -v node >/dev/null || { say "Node.js is needed to build the extension (>= 20.19)"; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=19)?0:1)' \
  || { say "Node.js $(node --version) is too old: rspack needs >= 20.19"; exit 1; }
export PATH="$VENV/bin:$PATH"
# The builder must not download the core package description: use the installed JupyterLab's.
JUPYTERLAB_CORE_PACKAGE=$("$VENV/bin/python" -c 'import jupyterlab, os; print(os.path.join(os.path.dirname(jupyterlab.__file__), "staging", "package.json"))')
export JUPYTERLAB_CORE_PACKAGE

if [ ! -f node_modules/.yarn-state.yml ] || [ -n "$(find package.json yarn.lock .yarnrc.yml -newer node_modules/.yarn-state.yml -print -quit)" ]; then
  say "jlpm install --immutable"
  YARN_ENABLE_PROGRESS_BARS=false jlpm install --immutable >/tmp/odh-labextension-install.$$.log 2>&1 \
    || { tail -40 /tmp/odh-labextension-install.$$.log; rm -f /tmp/odh-labextension-install.$$.log; exit 1; }
  rm -f /tmp/odh-labextension-install.$$.log
  touch node_modules/.yarn-state.yml
fi

say "building (tsc + jupyter-builder)"
rm -rf "$OUT"
jlpm tsc
jupyter-builder build --core-package-file="$JUPYTERLAB_CORE_PACKAGE" . 2>&1 | grep -v -e "^$" -e "Compilation starting" || true
[ -f "$STAMP" ] && [ -f "$OUT/static/style.js" ] || { say "build failed: no $STAMP"; exit 1; }
# Tells `jupyter labextension list` (and the extension manager) which Python package ships it.
cat > "$OUT/install.json" <<'JSON'
{
  "packageManager": "python",
  "packageName": "odh-hub",
  "uninstallInstructions": "Use your Python package manager (pip) to uninstall the package odh-hub"
}
JSON
touch "$STAMP"
say "built $OUT"
