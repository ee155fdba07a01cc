#!/usr/bin/env bash
# The version matrix (make matrix): ansible-test sanity, units and the
# integration targets on the oldest ansible-core the collection claims
# (meta/runtime.yml requires_ansible) and on the newest ansible-core release.
#
#   scripts/matrix.sh [oldest|newest ...]     default: both
#
#   oldest  ansible-core 2.17 on Debian's python3 (the Python the targets run modules with)
#   newest  ansible-core 2.21 on the newest Python >= 3.12 found: pyenv's versions
#           ($PYENV_ROOT, default /root/.pyenv), then python3.1x on PATH. None found is a
#           failure, never a skip.
#
# Each entry has its own virtual environment and collection copy under
# build/matrix/<entry>/ (venv/, ansible_collections/..., home/ with ansible-test's
# cached sanity environments); the venv is installed again only when its
# requirements change. Every step runs even when an earlier one failed; the exit
# status is non-zero if any failed. Integration targets need root.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

OLDEST_CORE=2.17.14
NEWEST_CORE=2.21.5
# What the matrix venvs install besides ansible-core: tests/unit/requirements.txt
# and ansible-test's own unit requirements, pinned to what was tested.
PINS=(pyroute2==0.7.12 hypothesis==6.155.2 pytest==9.2.0 pytest-xdist==3.8.0 pytest-mock==3.17.0 mock==5.2.0
      PyYAML==6.0.4)

newest_python() {
    local best="" best_version="" candidate version
    local pyenv_root=${PYENV_ROOT:-/root/.pyenv}
    for candidate in "$pyenv_root"/versions/3.*/bin/python3 \
        $(compgen -c python3. 2>/dev/null | sort -u); do
        candidate=$(command -v "$candidate" 2>/dev/null) || continue
        version=$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue
        case $version in 3.1[2-9] | 3.[2-9][0-9]) ;; *) continue ;; esac
        if [ -z "$best" ] || [ "$(printf '%s\n%s\n' "$best_version" "$version" | sort -V | tail -1)" != "$best_version" ]; then
            best=$candidate
            best_version=$version
        fi
    done
    [ -n "$best" ] || return 1
    echo "$best"
}

# ensure_venv NAME PYTHON CORE: build/matrix/NAME/venv with ansible-core CORE on PYTHON.
ensure_venv() {
    local name=$1 python=$2 core=$3
    local venv=$root/build/matrix/$name/venv
    local want stamp=$venv/.matrix-requirements
    want="$("$python" -c 'import sys; print(sys.version)' | head -1) ansible-core==$core ${PINS[*]}"
    if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
        return
    fi
    echo "matrix $name: virtual environment with ansible-core $core on $python"
    # One && chain: this runs under `if`, where set -e does not stop a failed step.
    rm -rf "$venv" &&
        "$python" -m venv "$venv" &&
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "ansible-core==$core" "${PINS[@]}" &&
        "$venv/bin/python" -m pip check &&
        echo "$want" > "$stamp"
}

failed=""
report=""
# step NAME COMMAND ARGS...: run one ansible-test command, timed, and note failures.
step() {
    local name=$1 start rc=0
    shift
    start=$(date +%s)
    echo "==================== matrix $name"
    "$@" || rc=$?
    report="$report$(printf '%-32s %4ds  %s' "$name" $(($(date +%s) - start)) "$([ $rc -eq 0 ] && echo ok || echo FAILED)")\n"
    [ $rc -eq 0 ] || failed="$failed $name"
}

run_entry() {
    local name=$1 python=$2 core=$3 version work venv
    version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
    work=$root/build/matrix/$name
    venv=$work/venv
    if ! ensure_venv "$name" "$python" "$core"; then
        failed="$failed $name-venv"
        return
    fi
    echo "matrix $name: ansible-core $core on Python $version ($python)"
    step "$name sanity ($core, py$version)" scripts/ansible-test.sh "$work" "$venv" "$version" sanity
    step "$name units ($core, py$version)" scripts/ansible-test.sh "$work" "$venv" "$version" units
    step "$name integration ($core, py$version)" scripts/ansible-test.sh "$work" "$venv" "$version" integration \
        --continue-on-error \
        --allow-destructive
}

entries=("$@")
[ ${#entries[@]} -gt 0 ] || entries=(oldest newest)
for entry in "${entries[@]}"; do
    case $entry in
        oldest)
            run_entry oldest "$(command -v /usr/bin/python3 || command -v python3)" "$OLDEST_CORE"
            ;;
        newest)
            if python=$(newest_python); then
                run_entry newest "$python" "$NEWEST_CORE"
            else
                echo "matrix newest: no Python >= 3.12 found (looked in ${PYENV_ROOT:-/root/.pyenv}/versions and for" \
                     "python3.1x on PATH); ansible-core $NEWEST_CORE needs one. Install one (pyenv, or a python3.12" \
                     "package) and run again." >&2
                failed="$failed newest-python"
            fi
            ;;
        *) echo "matrix: unknown entry '$entry' (oldest, newest)" >&2; exit 2 ;;
    esac
done

printf '==================== matrix summary\n%b' "$report"
if [ -n "$failed" ]; then
    echo "matrix: FAILED:$failed" >&2
    exit 1
fi
echo "matrix: every step passed"
