#!/bin/bash
# A real Kubernetes control plane for the test suite, built once and cached.
#
#   scripts/k8s-controlplane.sh build    build (only what is missing) and print the bin dir
#   scripts/k8s-controlplane.sh bindir   print the bin dir (exit 1 when it is not built)
#   scripts/k8s-controlplane.sh check    exit 0 when every binary is there
#
# What it builds: kube-apiserver, kube-controller-manager and kube-scheduler v1.20.2 from
# Debian bookworm's own `kubernetes` source package (1.20.5+really1.20.2) with Debian's
# golang-1.19; etcd 3.4 and kubectl 1.20 come from Debian's etcd-server and kubernetes-client
# packages. Nothing is installed into the system: every package is fetched with apt-get
# (download / source --download-only, through a private apt state that reads the machine's
# own Debian mirror) and unpacked under the cache dir. No containers, no other download.
#
# Cache: ${ODH_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/odh-hub/k8s-v1.20.2}
#   bin/      the binaries the tests use (written last, all at once)
#   gocache/  Go build cache (cold build ~12 min on 2 cores; ~1 min with this warm)
#   work/     scratch (packages, unpacked source); removed after a successful build
# Concurrent callers are serialised with flock, so two test sessions never build twice.
# There is no kubelet: the tests bring a test kubelet (tests/support/kubelet.py).
set -euo pipefail

K8S_VERSION=1.20.2
KUBE_DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
CACHE=${ODH_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/odh-hub/k8s-v$K8S_VERSION}
BIN=$CACHE/bin
BINARIES="kube-apiserver kube-controller-manager kube-scheduler etcd kubectl"

built() {
  local b
  for b in $BINARIES; do [ -x "$BIN/$b" ] || return 1; done
  [ -f "$BIN/VERSION" ] && grep -qx "v$K8S_VERSION" "$BIN/VERSION"
}

build() {
  local W=$CACHE/work T0 K LD p c DIRS URI APTO
  T0=$(date +%s)
  rm -rf "$W"
  mkdir -p "$W"/{apt/etc,apt/lists/partial,apt/cache/archives/partial,debs,src,gort,out} "$CACHE/gocache"
  cd "$W"
  # 1. a private apt state with a deb+deb-src list of the machine's own Debian mirror
  #    (the system's apt configuration and package database are not touched)
  URI=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$URI" ] || URI=$(awk '$1=="deb"{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  [ -n "$URI" ] || URI=http://deb.debian.org/debian
  cat > apt/etc/debian.sources <<S
Types: deb deb-src
URIs: $URI
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
S
  APTO=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$W/apt/etc"
        -o "Dir::State::Lists=$W/apt/lists" -o "Dir::Cache=$W/apt/cache" -o Dir::State::status=/dev/null)
  apt-get "${APTO[@]}" update -qq
  (cd src && apt-get "${APTO[@]}" source --download-only "kubernetes=$KUBE_DEB_VERSION")
  (cd debs && apt-get "${APTO[@]}" download golang-1.19-go golang-1.19-src \
      golang-github-modern-go-reflect2-dev etcd-server "kubernetes-client=$KUBE_DEB_VERSION")
  for p in debs/golang-1.19-*.deb; do dpkg-deb -x "$p" gort; done
  dpkg-deb -x debs/etcd-server_*.deb etcdpkg
  dpkg-deb -x debs/kubernetes-client_*.deb kubectlpkg
  dpkg-deb -x debs/golang-github-modern-go-reflect2-dev_*.deb r2
  tar xzf "src/kubernetes_${KUBE_DEB_VERSION%%-*}.orig.tar.gz" -C src
  K=$W/src/kubernetes-$K8S_VERSION
  # 2. the vendored reflect2 1.0.1 breaks on Go >= 1.18: use Debian's 1.0.2
  rm -f "$K"/vendor/github.com/modern-go/reflect2/*.go
  cp r2/usr/share/gocode/src/github.com/modern-go/reflect2/*.go "$K/vendor/github.com/modern-go/reflect2/"
  # 3. GOPATH mode, as hack/ builds 1.20
  mkdir -p gopath/src/k8s.io && ln -sfn "$K" gopath/src/k8s.io/kubernetes
  export GOROOT=$W/gort/usr/lib/go-1.19 GOPATH=$W/gopath GOCACHE=$CACHE/gocache
  export PATH=$GOROOT/bin:$PATH GO111MODULE=off GOFLAGS= GOPROXY=off CGO_ENABLED=0
  cd gopath/src/k8s.io/kubernetes
  # 4. pkg/generated/openapi is not in the tarball: generate it with the vendored openapi-gen
  go build -o "$W/openapi-gen" ./vendor/k8s.io/kube-openapi/cmd/openapi-gen
  DIRS=$(find -H . -not \( \( -path './_*' -o -path './.*' -o -path ./vendor \) -prune \) -type f -name '*.go' \
    | sed 's|^./staging/src|vendor|; s|^\./||' | grep -v -E '^vendor/k8s.io/(code-generator|sample-apiserver)/' \
    | xargs grep -l '+k8s:openapi-gen=' | xargs -n1 dirname | LC_ALL=C sort -u | sed 's|^|k8s.io/kubernetes/|' | paste -sd,)
  "$W/openapi-gen" -i "$DIRS" -p k8s.io/kubernetes/pkg/generated/openapi -O zz_generated.openapi \
    -h vendor/k8s.io/code-generator/hack/boilerplate.go.txt -r "$W/violations.report"
  # the same violations as upstream means the same input set as upstream's generator run
  diff "$W/violations.report" api/api-rules/violation_exceptions.list
  LD="-s -w"
  for p in k8s.io/kubernetes/vendor/k8s.io/component-base/version k8s.io/kubernetes/vendor/k8s.io/client-go/pkg/version; do
    LD="$LD -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=20 -X $p.gitTreeState=clean"
  done
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    echo "k8s-controlplane: building $c" >&2
    go build -p "${ODH_K8S_BUILD_JOBS:-1}" -trimpath -ldflags "$LD" -o "$W/out/$c" "./cmd/$c"
  done
  cp "$W/etcdpkg/usr/bin/etcd" "$W/out/etcd"
  cp "$W/kubectlpkg/usr/bin/kubectl" "$W/out/kubectl"
  "$W/out/kube-apiserver" --version | grep -q "v$K8S_VERSION"
  echo "v$K8S_VERSION" > "$W/out/VERSION"
  # 5. publish all binaries at once, then drop the scratch (keep the Go cache)
  rm -rf "$BIN.new" && mv "$W/out" "$BIN.new" && rm -rf "$BIN" && mv "$BIN.new" "$BIN"
  cd "$CACHE" && chmod -R u+w "$W" && rm -rf "$W"
  echo "k8s-controlplane: built in $(( $(date +%s) - T0 )) s into $BIN" >&2
}

case "${1:-build}" in
  build)
    mkdir -p "$CACHE"
    if ! built; then
      exec 9>"$CACHE/.lock"
      flock 9
      built || build
    fi
    echo "$BIN"
    ;;
  bindir) built && echo "$BIN" ;;
  check) built ;;
  *) echo "usage: $0 build|bindir|check" >&2; exit 2 ;;
esac
