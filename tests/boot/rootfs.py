# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The boot tier's guest disk: a Debian bookworm root filesystem built from
Debian's packages with mmdebstrap, made an ext4 image with mkfs.ext4 -d, and
cached under build/boot/ by content.

The cache key is the sha256 of the package list, this file, every file under
tests/boot/guest/ and the release of the kernel the guest boots (its modules
are copied into the image), so a change to any of them builds a new image and
an unchanged tree reuses the last one. Older images are removed when a new one
is made: one image, about 1.5 GB, at a time.

What the guest holds: systemd as init, udev, iproute2, kmod, dropbear (SSH),
python3 with pyroute2 and libbpf1 (what every module needs), clang-19,
llvm-19, libbpf-dev and linux-libc-dev (the target compiles plugins and
dispatchers), the kernel modules the lab and the datapath load (veth, sch_*,
cls_*, virtio), and the test's own units (tests/boot/guest/).
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
GUEST_FILES = os.path.join(HERE, "guest")
CACHE_DIR = os.path.join(ROOT, "build", "boot")

SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
PACKAGES = (
    # init, devices, network, modules, SSH
    "systemd-sysv", "udev", "iproute2", "kmod", "dropbear-bin",
    # what every module of the collection needs on a target (roles/datapath_host)
    "python3", "python3-pyroute2", "libbpf1",
    # plugins and dispatchers compile on the target (datapath_host_compile_packages)
    "clang-19", "llvm-19", "libbpf-dev", "linux-libc-dev",
)
# The units the guest starts at every boot (files under tests/boot/guest/).
GUEST_UNITS = ("boottest-net.service", "boottest-sshd.service", "boottest-lab.service", "boottest-late.service")
# Parts of the kernel's module tree the guest loads: virtio devices, veth,
# qdiscs and classifiers, filesystems, and what they depend on.
MODULE_DIRS = ("kernel/net", "kernel/drivers/virtio", "kernel/drivers/block", "kernel/drivers/char",
               "kernel/lib", "kernel/crypto", "kernel/fs", "kernel/arch")
MODULE_FILES_DIR = "kernel/drivers/net"  # only its top-level modules (veth, virtio_net, ...)


def log(msg):
    sys.stderr.write("boot rootfs: %s\n" % msg)
    sys.stderr.flush()


def kernel_release():
    """The newest Debian stock kernel in /boot with its modules (what the guest boots)."""
    found = []
    for name in os.listdir("/boot"):
        if name.startswith("vmlinuz-") and name.endswith("-amd64"):
            release = name[len("vmlinuz-"):]
            if os.path.isdir("/lib/modules/" + release) and os.path.exists("/boot/initrd.img-" + release):
                found.append(release)
    if not found:
        raise SystemExit("boot rootfs: no Debian kernel in /boot with its initrd and modules "
                         "(apt-get install linux-image-amd64; `make setup` does)")
    return sorted(found, key=lambda r: [int(p) if p.isdigit() else p for p in r.replace("-", ".").split(".")])[-1]


def content_key(release):
    digest = hashlib.sha256()
    digest.update(("\n".join((SUITE, release) + MIRRORS + PACKAGES + GUEST_UNITS + MODULE_DIRS)).encode())
    with open(os.path.abspath(__file__), "rb") as handle:
        digest.update(handle.read())
    for dirpath, dirnames, filenames in os.walk(GUEST_FILES):
        dirnames.sort()
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            digest.update(os.path.relpath(path, GUEST_FILES).encode() + b"\0")
            digest.update(oct(os.stat(path).st_mode & 0o777).encode())
            with open(path, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()[:16]


def stage_modules(release, stage):
    """Copy the module subset into stage/usr/lib/modules/<release>."""
    src = "/lib/modules/" + release
    dst = os.path.join(stage, "usr", "lib", "modules", release)  # merged /usr: /lib is a link
    os.makedirs(dst)
    for name in os.listdir(src):
        if name.startswith("modules.") and os.path.isfile(os.path.join(src, name)):
            shutil.copy2(os.path.join(src, name), dst)
    for sub in MODULE_DIRS:
        if os.path.isdir(os.path.join(src, sub)):
            shutil.copytree(os.path.join(src, sub), os.path.join(dst, sub))
    netdir = os.path.join(src, MODULE_FILES_DIR)
    os.makedirs(os.path.join(dst, MODULE_FILES_DIR), exist_ok=True)
    for name in os.listdir(netdir):
        if os.path.isfile(os.path.join(netdir, name)):
            shutil.copy2(os.path.join(netdir, name), os.path.join(dst, MODULE_FILES_DIR))


def run(argv, **kwargs):
    log("$ " + " ".join(argv)[:300])
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, **kwargs)


def build(release, image):
    """mmdebstrap into a directory, then mkfs.ext4 -d; image is written atomically."""
    work = tempfile.mkdtemp(prefix="rootfs-", dir=CACHE_DIR)
    try:
        stage = os.path.join(work, "stage")
        shutil.copytree(GUEST_FILES, stage, symlinks=True)
        stage_modules(release, stage)
        tree = os.path.join(work, "tree")
        hooks = [
            'sync-in "%s" /' % stage,
            'chroot "$1" /sbin/depmod %s' % release,
            'chroot "$1" systemctl enable %s' % " ".join(GUEST_UNITS),
            'echo boottest > "$1/etc/hostname"',
            'install -d -m 0700 "$1/root/.ssh" "$1/etc/dropbear"',
            # No password for anyone: SSH with the run's key only.
            'chroot "$1" passwd -l root',
            # Volatile journal; no apt lists (the image never runs apt).
            'mkdir -p "$1/etc/systemd/journald.conf.d" && printf "[Journal]\\nStorage=volatile\\n" '
            '> "$1/etc/systemd/journald.conf.d/boottest.conf"',
            'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin',
        ]
        argv = ["mmdebstrap", "--quiet", "--mode=root", "--variant=apt", "--include=" + ",".join(PACKAGES)]
        argv += ["--customize-hook=" + hook for hook in hooks]
        argv += [SUITE, tree] + list(MIRRORS)
        run(argv)
        used = int(subprocess.run(["du", "-sxk", tree], check=True, stdout=subprocess.PIPE).stdout.split()[0])
        size_mib = used * 13 // 10 // 1024 + 512  # room for the state the tier writes
        tmp_image = os.path.join(work, "rootfs.ext4")
        run(["mkfs.ext4", "-q", "-F", "-L", "boottest", "-E", "root_owner=0:0", "-d", tree, tmp_image,
             "%dM" % size_mib])
        os.replace(tmp_image, image)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_image():
    """(image path, kernel release, seconds spent building or 0 when cached)."""
    release = kernel_release()
    os.makedirs(CACHE_DIR, mode=0o700, exist_ok=True)
    image = os.path.join(CACHE_DIR, "rootfs-%s.ext4" % content_key(release))
    if os.path.exists(image):
        log("cached %s" % image)
        return image, release, 0.0
    t0 = time.monotonic()
    build(release, image)
    for name in os.listdir(CACHE_DIR):  # the images of other contents are stale
        if name.startswith("rootfs-") and name.endswith(".ext4") and os.path.join(CACHE_DIR, name) != image:
            os.unlink(os.path.join(CACHE_DIR, name))
    spent = time.monotonic() - t0
    log("built %s in %.0f s" % (image, spent))
    return image, release, spent


if __name__ == "__main__":
    print(ensure_image()[0])
