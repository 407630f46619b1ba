#!/usr/bin/env bash
# Build and push the hub and notebook images, then write their digests into the chart's default values
# (images.hub, and the default profiles' images): images/build.sh REGISTRY [TAG]
#   e.g. images/build.sh quay.io/my-org        -> quay.io/my-org/hub, quay.io/my-org/notebook-minimal, ...
# Needs a Docker engine (with buildx) and a login to REGISTRY. Commit the changed helm/odh-hub/values.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
REGISTRY=${1:?usage: images/build.sh REGISTRY [TAG]}
TAG=${2:-$(git rev-parse --short HEAD)}
IMAGES=${IMAGES:-hub minimal datascience spark}
VALUES=helm/odh-hub/values.yaml
command -v docker >/dev/null && docker info >/dev/null 2>&1 \
  || { echo "[build] no Docker engine here: nothing built (the locks are tested by tests/integration/test_image_locks.py)"; exit 1; }
pins=()
for image in $IMAGES; do
  if [ "$image" = hub ]; then repo=$REGISTRY/hub; else repo=$REGISTRY/notebook-$image; fi
  echo "[build] $repo:$TAG"
  if [ "$image" = hub ]; then
    docker build --pull -f images/hub/Dockerfile -t "$repo:$TAG" .
  else
    docker build --pull -f images/notebook/Dockerfile --build-arg "FLAVOR=$image" -t "$repo:$TAG" .
  fi
  docker push "$repo:$TAG"
  ref=$(docker inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$repo:$TAG" | grep "^$repo@" | head -1)
  [ -n "$ref" ] || { echo "[build] no digest for $repo:$TAG after push"; exit 1; }
  echo "[build] $ref"
  pins+=("$image=$ref")
done
python3 images/pin_digests.py "$VALUES" "${pins[@]}"
echo "[build] digests written into $VALUES"
