#!/usr/bin/env bash
# Installs what ovn-heater needs on a fresh Debian 12 machine (run as root):
# OVN/OVS from the distribution, iproute2 and ping for the lab, chromium for the report check,
# a C compiler for the mimalloc allocator the binary links, and ovs-pki (openvswitch-common)
# plus the openssl tool for the TLS tests' certificates.
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
    echo "scripts/setup.sh: run as root (it installs Debian packages with apt-get)" >&2
    exit 2
fi
export DEBIAN_FRONTEND=noninteractive
need=()
for pkg in ovn-central ovn-host openvswitch-switch openvswitch-common openssl iproute2 iputils-ping procps chromium gcc libc6-dev; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# Packages installed just now may have started their system services; the lab runs its own
# daemons, so stop those. Services of packages that were already installed are left alone: on
# a compute node openvswitch-switch and ovn-host carry its networking.
for svc in ovn-central ovn-host openvswitch-switch; do
    for pkg in "${need[@]}"; do
        if [ "$pkg" = "$svc" ]; then
            (service "$svc" stop || true) >/dev/null 2>&1
        fi
    done
done
command -v cargo >/dev/null || { echo "scripts/setup.sh: cargo not found; install Rust (rustup) first" >&2; exit 2; }
