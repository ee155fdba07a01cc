#!/usr/bin/env bash
# ansible-test sanity on a real copy of the collection (make sanity), in
# build/sanity with the project's .venv (see scripts/ansible-test.sh).
#
#   scripts/sanity.sh [ansible-test sanity options...]
#
# No ignore file is used: every finding fails the run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "$(find "$root/tests/sanity" -name 'ignore*.txt' 2>/dev/null)" ]; then
    echo "tests/sanity must hold no ignore file: fix the finding instead" >&2
    exit 1
fi
exec "$root/scripts/ansible-test.sh" "$root/build/sanity" "${VENV:-$root/.venv}" "${SANITY_PYTHON:-3.11}" sanity "$@"
