#!/bin/sh
# Installs the Debian 12 packages that actord needs to build, test and benchmark, if missing.
#   scripts/install-deps.sh            build, run, tests, benchmarks
#   scripts/install-deps.sh --systemd  also what the container test under systemd needs
set -eu

pkgs="build-essential cmake pkg-config libconfig-dev libsystemd-dev libcriterion-dev
      clang libclang-rt-14-dev clang-format
      libck-dev libdpdk-dev libboost-dev libreaderwriterqueue-dev
      python3-prometheus-client groff-base libnats-dev nats-server libmicrohttpd-dev
      openssl libcrypt-dev"
if [ "${1:-}" = "--systemd" ]; then
        pkgs="$pkgs systemd-container debootstrap"
fi

missing=""
for p in $pkgs; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
                missing="$missing $p"
        fi
done
[ -n "$missing" ] || exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
fi
echo "install-deps: installing:$missing"
$sudo apt-get update -qq
# shellcheck disable=SC2086 # one word per package
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing
