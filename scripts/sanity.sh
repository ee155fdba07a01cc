#!/usr/bin/env bash
# ansible-test sanity on a real copy of the collection (make sanity).
#
#   scripts/sanity.sh [ansible-test sanity options...]
#
# The copy lives in build/sanity/ansible_collections/ebpf/datapath, because
# ansible-test needs the collection at a real path of that shape. HOME points
# into build/sanity as well, so ansible-test's per-test virtual environments
# (~/.ansible/test/venv) are cached there between runs and nothing lands in the
# real home directory. No ignore file is used: every finding fails the run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${VENV:-$root/.venv}
python_version=${SANITY_PYTHON:-3.11}
work=$root/build/sanity
collection=$work/ansible_collections/ebpf/datapath
home=$work/home

if [ -n "$(find "$root/tests/sanity" -name 'ignore*.txt' 2>/dev/null)" ]; then
    echo "tests/sanity must hold no ignore file: fix the finding instead" >&2
    exit 1
fi

"$root/scripts/copy-tree.sh" "$collection"
# The copy sits inside this repository's work tree, where build/ is ignored, so
# ansible-test's file listing (git ls-files from the nearest .git) would find
# nothing: give the copy an index of its own (no commit, nothing pushed).
git -C "$collection" init --quiet
git -C "$collection" add --all

# ansible-test seeds pip into each sanity virtual environment with a get-pip.py
# it downloads from a host outside the package registries; give it our offline
# stand-in under the name it looks for in its cache.
pip_version=$("$venv/bin/python" - "$python_version" <<'EOF'
import sys
from ansible_test._internal.host_configs import NativePythonConfig
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(NativePythonConfig(version=sys.argv[1], path=sys.executable))["pip"])
EOF
)
cache=$home/.ansible/test/cache
mkdir -p "$cache"
install -m 0644 "$root/scripts/get_pip_offline.py" "$cache/get_pip_${pip_version//./_}.py"

cd "$collection"
export HOME=$home
export PATH=$venv/bin:$PATH
exec ansible-test sanity --local --python "$python_version" --color no "$@"
