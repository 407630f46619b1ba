#!/usr/bin/env bash
# Re-resolve each image's lock (requirements.lock: every package, exact version) from its requirements.in, with
# the versions the project tests with (the venv's) as constraints. Needs PyPI; does not install anything.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python3.11}
ROOT=$(cd .. && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$ROOT/.venv/bin/python" -m pip freeze --exclude-editable | grep -v '^-e ' > "$tmp/constraints.txt"
"$PY" -m venv "$tmp/venv"
for image in ${*:-hub minimal datascience spark}; do
  echo "[lock] $image"
  (cd "$image" && "$tmp/venv/bin/python" -m pip install -q --dry-run --ignore-installed --report "$tmp/$image.json" \
      -r requirements.in -c "$tmp/constraints.txt")
  "$tmp/venv/bin/python" - "$tmp/$image.json" "$image/requirements.lock" "$image" <<'PY'
import json, sys
report, out, image = sys.argv[1:]
items = sorted((i["metadata"]["name"].lower(), i["metadata"]["version"]) for i in json.load(open(report))["install"]
               if i["metadata"]["name"].lower() != "odh-hub")  # the project itself: installed from its wheel
with open(out, "w") as f:
    f.write(f"# The {image} image's lock: every package at its exact version (images/lock.sh from requirements.in).\n")
    f.writelines(f"{n}=={v}\n" for n, v in items)
PY
done
