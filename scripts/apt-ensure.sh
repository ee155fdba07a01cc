#!/usr/bin/env bash
# Install the Debian packages given as arguments that are not installed yet.
#
#   scripts/apt-ensure.sh PACKAGE...
#
# Does nothing (and needs neither root nor the network) when all are installed.
# Otherwise refreshes the package lists once and installs the missing ones
# without questions, as CI runs with no standard input.
set -euo pipefail

missing=()
for pkg in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null || true)
    # "ii " is installed; anything else (absent, half-installed, removed) is missing.
    if [ "${status:0:2}" != "ii" ]; then
        missing+=("$pkg")
    fi
done

if [ ${#missing[@]} -eq 0 ]; then
    echo "apt: all ${#} packages installed"
    exit 0
fi

echo "apt: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "apt: installing packages needs root; run 'make setup' as root" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update </dev/null
apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
