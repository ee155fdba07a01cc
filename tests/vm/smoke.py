#!/usr/bin/env python
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Smoke test of the stock-kernel VM tier, and the freplace proof.

On the host (no --guest): compile the BPF objects in tests/vm/bpf with clang
into a scratch dir, boot the stock kernel with tests/vm/run-in-vm and run this
file again inside it with --guest. Inside the guest it checks, for real:

  * the kernel is the stock one that was asked for, bpffs is mounted;
  * veth, sch_ingress (clsact) and cls_bpf load;
  * two network namespaces joined by a veth pair pass ping;
  * bpftool loads a tc program, a clsact filter runs it on the veth, and its
    counter map grows with the pings;
  * BPF_PROG_TYPE_EXT: an extension replaces a global function of a loaded
    tc program (BPF_PROG_TEST_RUN shows the new return value), detaches,
    and the kernel's rule on packet-changing extensions holds;
  * the project's own probe (module_utils/probe.py) reports freplace.

Exit 0 when every check passed. The last line reads 'smoke: N passed, N failed'.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BPF_SRC = os.path.join(HERE, 'bpf')
OBJECTS = ('smoke_tc', 'freplace_target', 'freplace_ext')

TC_ACT_OK = 0
BPF_PROG_TYPE_EXT = 28
# Documentation range (RFC 5737), used only inside our own namespaces.
ADDR_A = '192.0.2.1'
ADDR_B = '192.0.2.2'
PINGS = 3


# ---------------------------------------------------------------------------
# Host side
# ---------------------------------------------------------------------------

def find_clang():
    for name in ('clang-19', 'clang-18', 'clang-17', 'clang-16', 'clang'):
        path = shutil.which(name)
        if path:
            return path
    sys.exit('smoke: clang not found')


def compile_objects(outdir):
    clang = find_clang()
    arch_inc = '/usr/include/%s-linux-gnu' % os.uname().machine
    for name in OBJECTS:
        argv = [clang, '-target', 'bpf', '-O2', '-g', '-Wall', '-Werror',
                '-I', arch_inc, '-c', os.path.join(BPF_SRC, name + '.c'),
                '-o', os.path.join(outdir, name + '.o')]
        subprocess.run(argv, check=True)


def ensure_collection_path():
    """build/ansible_collections/ebpf/datapath -> repo, for module_utils imports."""
    parent = os.path.join(REPO, 'build', 'ansible_collections', 'ebpf')
    link = os.path.join(parent, 'datapath')
    if not os.path.exists(link):  # tests/conftest.py makes the same link
        os.makedirs(parent, exist_ok=True)
        os.symlink(os.path.relpath(REPO, parent), link)


def host_main(opts):
    ensure_collection_path()
    objdir = tempfile.mkdtemp(prefix='vm-smoke-')
    try:
        t0 = time.time()
        compile_objects(objdir)
        print('smoke: compiled %s into %s in %.1f s'
              % (', '.join(OBJECTS), objdir, time.time() - t0), flush=True)
        argv = [os.path.join(HERE, 'run-in-vm')]
        for flag in ('kernel', 'accel', 'timeout'):
            value = getattr(opts, flag)
            if value is not None:
                argv += ['--' + flag, str(value)]
        if opts.verbose:
            argv.append('--verbose')
        # The guest runs the repository's venv Python: the VM tier's tests will.
        venv_python = os.path.join(REPO, '.venv', 'bin', 'python')
        python = venv_python if os.access(venv_python, os.X_OK) else sys.executable
        argv += ['--', python, os.path.abspath(__file__), '--guest', objdir]
        if opts.expect_release:
            argv += ['--expect-release', opts.expect_release]
        elif opts.kernel:
            argv += ['--expect-release', os.path.basename(opts.kernel).replace('vmlinuz-', '', 1)]
        t0 = time.time()
        rc = subprocess.call(argv, stdin=subprocess.DEVNULL)
        print('smoke: VM run took %.1f s, exit %d' % (time.time() - t0, rc), flush=True)
        return rc
    finally:
        shutil.rmtree(objdir, ignore_errors=True)


# ---------------------------------------------------------------------------
# Guest side
# ---------------------------------------------------------------------------

class Failed(Exception):
    pass


def run(argv, check=True):
    res = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, check=False)
    out = res.stdout.decode('utf-8', 'replace')
    if check and res.returncode != 0:
        raise Failed('%s exited %d: %s' % (' '.join(argv), res.returncode, out.strip()))
    return out


def expect(cond, msg):
    if not cond:
        raise Failed(msg)


def packet():
    """A 64-byte Ethernet frame (IPv4 ethertype) for BPF_PROG_TEST_RUN."""
    return b'\x02' * 6 + b'\x04' * 6 + b'\x08\x00' + b'\x45' + b'\x00' * 49


class Guest:
    def __init__(self, objdir, expect_release):
        self.objdir = objdir
        self.expect_release = expect_release
        tag = '%d' % os.getpid()
        self.ns_a = 'smk%sa' % tag
        self.ns_b = 'smk%sb' % tag
        self.veth_a = 'smk%sa' % tag
        self.veth_b = 'smk%sb' % tag
        self.pin_dir = '/sys/fs/bpf/vm-smoke-%s' % tag
        self.passed = 0
        self.failed = 0

    def obj(self, name):
        return os.path.join(self.objdir, name + '.o')

    def check(self, name, fn):
        t0 = time.time()
        try:
            detail = fn()
        except Exception as exc:  # every failure is reported, then the next check runs
            self.failed += 1
            print('not ok - %s: %s' % (name, exc), flush=True)
            if not isinstance(exc, Failed):
                traceback.print_exc()
            return False
        self.passed += 1
        print('ok - %s%s (%.1f s)' % (name, (': ' + detail) if detail else '',
                                      time.time() - t0), flush=True)
        return True

    # -- checks ---------------------------------------------------------------

    def kernel(self):
        release = os.uname().release
        if self.expect_release:
            expect(release == self.expect_release,
                   'running %s, expected %s' % (release, self.expect_release))
        expect(release.startswith('6.1.'), 'running %s, expected a 6.1 stock kernel' % release)
        return release

    def bpffs(self):
        with open('/proc/mounts') as f:
            types = [line.split()[2] for line in f if line.split()[1] == '/sys/fs/bpf']
        expect('bpf' in types, '/sys/fs/bpf is not bpffs (mounted: %s)' % types)
        return 'bpffs at /sys/fs/bpf'

    def modules(self):
        for module in ('veth', 'sch_ingress', 'cls_bpf'):
            run(['modprobe', module])
            expect(os.path.isdir('/sys/module/%s' % module), '%s did not load' % module)
        return 'veth, sch_ingress, cls_bpf'

    def netns_ping(self):
        run(['ip', 'netns', 'add', self.ns_a])
        run(['ip', 'netns', 'add', self.ns_b])
        run(['ip', 'link', 'add', self.veth_a, 'netns', self.ns_a, 'type', 'veth',
             'peer', 'name', self.veth_b, 'netns', self.ns_b])
        for ns, dev, addr in ((self.ns_a, self.veth_a, ADDR_A), (self.ns_b, self.veth_b, ADDR_B)):
            run(['ip', '-n', ns, 'addr', 'add', addr + '/24', 'dev', dev])
            run(['ip', '-n', ns, 'link', 'set', dev, 'up'])
            run(['ip', '-n', ns, 'link', 'set', 'lo', 'up'])
        out = run(['ip', 'netns', 'exec', self.ns_a, 'ping', '-c', '2', '-W', '5', ADDR_B])
        expect(' 0% packet loss' in out, 'ping lost packets:\n' + out)
        return 'ping %s -> %s across a veth pair' % (self.ns_a, self.ns_b)

    def tc_filter(self):
        prog_pin = os.path.join(self.pin_dir, 'smoke_count')
        maps_dir = os.path.join(self.pin_dir, 'maps')
        os.makedirs(self.pin_dir)
        run(['bpftool', 'prog', 'load', self.obj('smoke_tc'), prog_pin,
             'type', 'classifier', 'pinmaps', maps_dir])
        # `tc -n` and `ip netns exec` remount /sys, which hides /sys/fs/bpf and
        # the pin; nsenter switches only the network namespace.
        tc = ['nsenter', '--net=/run/netns/' + self.ns_b, 'tc']
        run(tc + ['qdisc', 'add', 'dev', self.veth_b, 'clsact'])
        run(tc + ['filter', 'add', 'dev', self.veth_b, 'ingress',
                  'bpf', 'direct-action', 'object-pinned', prog_pin])
        shown = run(tc + ['filter', 'show', 'dev', self.veth_b, 'ingress'])
        expect('smoke_count' in shown and 'direct-action' in shown,
               'filter not listed:\n' + shown)
        before = self.hits(maps_dir)
        out = run(['ip', 'netns', 'exec', self.ns_a, 'ping', '-c', str(PINGS), '-i', '0.2',
                   '-W', '5', ADDR_B])
        expect(' 0% packet loss' in out, 'ping lost packets with the filter on:\n' + out)
        after = self.hits(maps_dir)
        expect(after - before >= PINGS, 'counter went %d -> %d for %d pings'
               % (before, after, PINGS))
        return 'bpftool-loaded program on clsact ingress counted %d packets' % (after - before)

    @staticmethod
    def hits(maps_dir):
        out = run(['bpftool', '-j', 'map', 'dump', 'pinned', os.path.join(maps_dir, 'smoke_hits')])
        entries = json.loads(out)
        expect(len(entries) == 1, 'unexpected map dump: %s' % out)
        value = entries[0].get('formatted', entries[0]).get('value')
        if isinstance(value, list):  # no BTF: a list of hex byte strings
            value = int.from_bytes(bytes(int(b, 16) for b in value), sys.byteorder)
        return int(value)

    def freplace(self):
        sys.path.insert(0, os.path.join(REPO, 'build'))
        from ansible_collections.ebpf.datapath.plugins.module_utils import libbpf
        from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_object

        data = packet()
        with bpf_object.BpfObject.open_file(self.obj('freplace_target')) as target:
            target.load()
            entry = target.program('entry')
            entry_pkt = target.program('entry_pkt')
            expect(libbpf.prog_test_run(entry.fd, data).retval == 1,
                   'target does not return its stub value 1')
            expect(libbpf.prog_test_run(entry_pkt.fd, data).retval == 1,
                   'packet-changing target does not return its stub value 1')

            with bpf_object.BpfObject.open_file(self.obj('freplace_ext')) as ext:
                repl = ext.program('repl')
                repl_pkt = ext.program('repl_pkt')
                expect(repl.type == BPF_PROG_TYPE_EXT, 'repl is type %d, not EXT' % repl.type)
                repl.set_attach_target(entry.fd, 'stub')
                repl_pkt.set_attach_target(entry_pkt.fd, 'stub_pkt')
                try:
                    ext.load()
                except libbpf.BpfError as exc:
                    raise Failed('kernel refuses BPF_PROG_TYPE_EXT: %s' % exc)

                link = repl.attach_freplace(entry.fd, 'stub')
                try:
                    got = libbpf.prog_test_run(entry.fd, data).retval
                    expect(got == 2, 'with the extension attached the target returned %d, '
                                     'expected 2' % got)
                    pin = os.path.join(self.pin_dir, 'freplace-link')
                    link.pin(pin)
                    expect(os.path.exists(pin), 'link pin %s missing' % pin)
                    link.unpin()
                finally:
                    link.destroy()
                got = libbpf.prog_test_run(entry.fd, data).retval
                expect(got == 1, 'after detaching the target returned %d, expected 1' % got)

                with repl_pkt.attach_freplace(entry_pkt.fd, 'stub_pkt'):
                    res = libbpf.prog_test_run(entry_pkt.fd, data)
                    expect(res.retval == 3, 'packet-changing extension: target returned %d, '
                                            'expected 3' % res.retval)
                    expect(res.data_out[:1] == b'\xee', 'the extension did not write the '
                                                        'packet: %r' % res.data_out[:4])

            # DESIGN.md's kernel rule: an extension that changes packet data
            # may only replace a function that could change it too. Newer
            # kernels enforce it at load; older ones accept the load. Either
            # way the answer is reported, and dispatcher stubs stay
            # packet-changing so both kinds of kernel take every plugin.
            with bpf_object.BpfObject.open_file(self.obj('freplace_ext')) as bad:
                bad.program('repl').set_autoload(False)
                bad.program('repl_pkt').set_attach_target(entry.fd, 'stub')
                try:
                    bad.load()
                except libbpf.BpfError as exc:
                    refusal = exc.log + '\n' + str(exc)
                    reason = [line for line in refusal.splitlines() if 'packet data' in line]
                    expect(reason, 'refused, but not for packet data: %s' % refusal)
                    rule = 'enforced: %s' % reason[0].strip()
                else:
                    rule = 'not enforced by this kernel (the load was accepted)'
        print('  packet-changing extension for a non-changing stub: %s' % rule, flush=True)
        return ('EXT loaded and attached (target returned 1 -> 2, 1 again after detach), '
                'link pinned, packet-changing extension ran on a packet-changing stub')

    def project_probe(self):
        sys.path.insert(0, os.path.join(REPO, 'build'))
        from ansible_collections.ebpf.datapath.plugins.module_utils import probe
        result = probe.probe_all()
        expect(result['freplace']['supported'],
               'probe says no freplace: %s' % result['freplace']['reason'])
        return ', '.join('%s=%s' % (k, 'yes' if v['supported'] else 'no')
                         for k, v in sorted(result.items()))

    def cleanup(self):
        for ns in (self.ns_a, self.ns_b):
            if os.path.exists('/run/netns/' + ns):
                run(['ip', 'netns', 'del', ns], check=False)
        shutil.rmtree(self.pin_dir, ignore_errors=True)

    def main(self):
        t0 = time.time()
        try:
            self.check('kernel', self.kernel)
            self.check('bpffs', self.bpffs)
            self.check('modules', self.modules)
            if self.check('netns + veth + ping', self.netns_ping):
                self.check('bpftool + clsact filter', self.tc_filter)
            self.check('freplace (BPF_PROG_TYPE_EXT)', self.freplace)
            self.check('probe.py', self.project_probe)
        finally:
            self.cleanup()
        print('smoke: guest checks took %.1f s' % (time.time() - t0))
        print('smoke: %d passed, %d failed' % (self.passed, self.failed), flush=True)
        return 0 if self.failed == 0 else 1


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n', maxsplit=1)[0])
    parser.add_argument('--guest', metavar='OBJDIR',
                        help='(inside the VM) run the checks on the objects in OBJDIR')
    parser.add_argument('--expect-release', help='kernel release the guest must run')
    parser.add_argument('--kernel', help='kernel image for run-in-vm')
    parser.add_argument('--accel', choices=('auto', 'kvm', 'tcg'))
    parser.add_argument('--timeout', type=int)
    parser.add_argument('--verbose', action='store_true')
    opts = parser.parse_args()
    if opts.guest:
        return Guest(opts.guest, opts.expect_release).main()
    return host_main(opts)


if __name__ == '__main__':
    sys.exit(main())
