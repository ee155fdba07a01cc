#!/usr/bin/env bash
# ansible-test on a real copy of the collection.
#
#   scripts/ansible-test.sh WORK VENV PYTHON COMMAND [ansible-test options...]
#
#   WORK     a directory of its own (build/sanity, build/matrix/<name>): the copy goes to
#            WORK/ansible_collections/ebpf/datapath, HOME to WORK/home
#   VENV     the virtual environment whose ansible-test runs (its bin/ comes first on PATH)
#   PYTHON   the Python version ansible-test runs on (3.11, 3.13, ...): VENV's own
#   COMMAND  sanity, units or integration; always run with --local
#
# ansible-test needs the collection at a real path of that shape, so the symlink
# tree of the Python tests does not do. HOME points into WORK, so ansible-test's
# per-test virtual environments (~/.ansible/test/venv) are cached there between
# runs and nothing lands in the real home directory.
set -euo pipefail

work=${1:?usage: ansible-test.sh WORK VENV PYTHON COMMAND [options...]}
venv=${2:?VENV missing}
python_version=${3:?PYTHON missing}
command=${4:?COMMAND missing}
shift 4

root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work"
work=$(cd "$work" && pwd)
venv=$(cd "$venv" && pwd)
collection=$work/ansible_collections/ebpf/datapath
home=$work/home

"$root/scripts/copy-tree.sh" "$collection"
# The copy sits inside this repository's work tree, where build/ is ignored, so
# ansible-test's file listing (git ls-files from the nearest .git) would find
# nothing: give the copy an index of its own (no commit, nothing pushed).
git -C "$collection" init --quiet
git -C "$collection" add --all

# ansible-test seeds pip into each virtual environment it makes (sanity) with a
# get-pip.py it downloads from a host outside the package registries; give it
# our offline stand-in under the name it looks for in its cache.
pip_version=$("$venv/bin/python" - "$python_version" <<'PYEOF'
import sys
from ansible_test._internal.host_configs import NativePythonConfig
from ansible_test._internal.python_requirements import get_venv_packages
print(get_venv_packages(NativePythonConfig(version=sys.argv[1], path=sys.executable))["pip"])
PYEOF
)
cache=$home/.ansible/test/cache
mkdir -p "$cache"
install -m 0644 "$root/scripts/get_pip_offline.py" "$cache/get_pip_${pip_version//./_}.py"

cd "$collection"
export HOME=$home
export PATH=$venv/bin:$PATH
exec ansible-test "$command" --local --python "$python_version" --color no "$@"
