#!/usr/bin/env bash
# Collection docs (modules and roles) with antsibull-docs (make docs).
#
#   scripts/docs.sh           regenerate docs/collection/ from the modules' DOCUMENTATION,
#                             EXAMPLES and RETURN and the roles' meta/argument_specs.yml
#   scripts/docs.sh --check   lint the markup (antsibull-docs lint-collection-docs
#                             --plugin-docs) and fail if docs/collection/ differs from
#                             what antsibull-docs generates now
#
# ansible-doc finds the collection through the symlink tree build/ansible_collections
# (make links); the pages are written to a private temporary directory first, since
# antsibull-docs wants its destination owned by the caller and writable only by it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
export PATH=$venv/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$root/build
dest=$root/docs/collection

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 0700 "$tmp"
antsibull-docs collection --use-current --fail-on-error --output-format simplified-rst \
    --no-add-antsibull-docs-version --squash-hierarchy --dest-dir "$tmp" ebpf.datapath

if [ "${1:-}" = --check ]; then
    antsibull-docs lint-collection-docs --plugin-docs "$root/build/ansible_collections/ebpf/datapath"
    if ! diff -ru "$dest" "$tmp"; then
        echo "docs/collection/ is not what antsibull-docs generates: run scripts/docs.sh and commit the result" >&2
        exit 1
    fi
    echo "docs: markup clean, docs/collection/ current"
else
    rm -rf "$dest"
    mkdir -p "$dest"
    cp "$tmp"/*.rst "$dest"/
    echo "docs: wrote $(find "$dest" -name "*.rst" | wc -l) pages to docs/collection/"
fi
