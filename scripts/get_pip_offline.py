# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the get-pip.py script that ansible-test bootstraps its sanity
virtual environments with.

ansible-test downloads get-pip.py from a host outside the package registries,
which this project's machines cannot reach; it uses a copy cached at
``~/.ansible/test/cache/get_pip_<version>.py`` when there is one, and
scripts/sanity.sh puts this file there. It is called like get-pip.py:

    python get_pip_offline.py [pip options] pip==24.2 [--no-setuptools] [--no-wheel]

inside a fresh virtual environment without pip. It seeds pip from the wheel the
interpreter ships (ensurepip), then lets that pip install the requested packages
from the package index.
"""

import subprocess
import sys

# get-pip.py understands these; pip install does not.
GET_PIP_ONLY = ("--no-setuptools", "--no-wheel")


def main(argv):
    install_args = [arg for arg in argv if arg not in GET_PIP_ONLY]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
    subprocess.check_call([sys.executable, "-m", "pip", "install"] + install_args)
    if "--no-setuptools" in argv:
        # Python 3.11's ensurepip brings setuptools along; get-pip.py would not have.
        subprocess.check_call([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", "setuptools"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
