#!/usr/bin/env bash
# Copy the collection's files (tracked, plus untracked ones git does not ignore)
# to DEST as real files. ansible-test resolves symlinks and wants the collection
# at a real .../ansible_collections/<namespace>/<name>/ path, so the symlink tree
# used by the Python tests does not do for it.
#
#   scripts/copy-tree.sh DEST
#
# DEST is emptied first, except DEST/tests/output (ansible-test's results and
# caches, which make the next run faster).
set -euo pipefail

dest=${1:?usage: copy-tree.sh DEST}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

mkdir -p "$dest"
find "$dest" -mindepth 1 -maxdepth 1 ! -name tests -exec rm -rf {} +
if [ -d "$dest/tests" ]; then
    find "$dest/tests" -mindepth 1 -maxdepth 1 ! -name output -exec rm -rf {} +
fi

# A tracked file deleted in the work tree is still listed by git ls-files -c: skip it.
# .ansible/ is the project cache of ansible-lint and molecule, never content.
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do
        case $f in .ansible/*) continue ;; esac
        [ -e "$f" ] && printf '%s\0' "$f"
    done \
    | tar --null --no-recursion -T - -cf - \
    | tar -xf - -C "$dest"
