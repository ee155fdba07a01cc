# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build the boot payload: one zip holding what datapath_restore needs to run
with a bare python3 on a host (Ansible's module_utils and the collection's
plugins), laid out as AnsiballZ lays out a module run.

    python3 make_payload.py COLLECTION_ROOT OUTPUT.zip

The zip is deterministic (sorted entries, fixed timestamps and modes), so an
unchanged collection gives a byte-identical file and the copy to the hosts
reports no change. The hosts run it with PYTHONPATH=OUTPUT.zip and
``python3 -m ansible_collections.ebpf.datapath.plugins.modules.datapath_restore``,
after ``python3 -m datapath_boot_wait`` (boot_wait.py, next to this file).
"""

import os
import sys
import tempfile
import zipfile

import ansible.module_utils

STAMP = (1980, 1, 1, 0, 0, 0)
# Package markers only: the real ansible/__init__.py imports controller code.
NAMESPACE_INIT = b"from pkgutil import extend_path\n__path__ = extend_path(__path__, __name__)\n"
COLLECTION = "ansible_collections/ebpf/datapath"
WAIT_MODULE = "datapath_boot_wait"


def python_files(top, arc_top):
    """(archive name, path) of every .py file under top, skipping caches."""
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in filenames:
            if name.endswith(".py"):
                path = os.path.join(dirpath, name)
                yield os.path.join(arc_top, os.path.relpath(path, top)).replace(os.sep, "/"), path


def entries(collection_root):
    files = dict(python_files(os.path.dirname(ansible.module_utils.__file__), "ansible/module_utils"))
    files.update(python_files(os.path.join(collection_root, "plugins", "module_utils"),
                              COLLECTION + "/plugins/module_utils"))
    restore = os.path.join(collection_root, "plugins", "modules", "datapath_restore.py")
    files[COLLECTION + "/plugins/modules/datapath_restore.py"] = restore
    # The unit's ExecStartPre: python3 -m datapath_boot_wait (waits for the interfaces).
    files[WAIT_MODULE + ".py"] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "boot_wait.py")
    data = dict((name, None) for name in (
        "ansible/__init__.py",
        "ansible_collections/__init__.py",
        "ansible_collections/ebpf/__init__.py",
        COLLECTION + "/__init__.py",
        COLLECTION + "/plugins/__init__.py",
        COLLECTION + "/plugins/modules/__init__.py",
    ) if name not in files)
    return files, data


def main(argv):
    if len(argv) != 3:
        sys.stderr.write("usage: make_payload.py COLLECTION_ROOT OUTPUT.zip\n")
        return 2
    collection_root, output = argv[1], argv[2]
    files, data = entries(collection_root)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".zip", dir=os.path.dirname(os.path.abspath(output)))
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(set(files) | set(data)):
                info = zipfile.ZipInfo(name, STAMP)
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                if name in files:
                    with open(files[name], "rb") as handle:
                        archive.writestr(info, handle.read())
                else:
                    archive.writestr(info, NAMESPACE_INIT)
        os.chmod(tmp, 0o644)
        os.replace(tmp, output)
    except BaseException:
        os.unlink(tmp)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
