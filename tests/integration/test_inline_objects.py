# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""inline_build.py with the real clang, LLVM and kernel (root).

The test plugins are installed as datapath_plugin installs them (Engine:
compiled, verified, maps pinned). Each chain is built twice, inline and as
link mode's linked object, both loaded the way the engine loads a linked
dispatcher (maps bound to the plugins' pins) and run on the same packets with
BPF_PROG_TEST_RUN: the verdicts and the counters each run adds must be equal.

"No plugin call is left" is checked three ways, the kernel's first: the loaded
program holds one function (``nr_func_info``, what the verifier verified as
separate functions; link mode's holds one more per hooked function), the
object's BTF has no function named after a hooked symbol, and the dispatcher's
section has no BPF-to-BPF call instruction (src_reg BPF_PSEUDO_CALL; helper
calls do not count). Counting ``call`` lines of llvm-objdump would mix helper
calls in; the ELF bits say which call is which.
"""

import os
import shutil
import socket
import struct

import pytest

from ansible_collections.ebpf.datapath.plugins.module_utils import chain as chain_mod
from ansible_collections.ebpf.datapath.plugins.module_utils import dispatcher as disp_mod
from ansible_collections.ebpf.datapath.plugins.module_utils import bpf_maps, inline_build, libbpf, plugin_load, plugin_store
from ansible_collections.ebpf.datapath.plugins.module_utils.converge import Engine
from ansible_collections.ebpf.datapath.plugins.module_utils.inline_build import InlineError
from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Chain, FunctionRef, program_family
from ansible_collections.ebpf.datapath.plugins.module_utils.toolchain import Toolchain
from ansible_collections.ebpf.datapath.plugins.plugin_utils.runner import run_subprocess

import freplace_cases as cases

TC_ACT_OK, TC_ACT_SHOT = 0, 2
XDP_DROP, XDP_PASS = 1, 2
TESTDATA = cases.TESTDATA
MAPLESS = ["m%03d" % i for i in range(256)]
BULKY = ["b%02d" % i for i in range(16)]


class CountingRunner:
    """The toolchain's runner, counting every command it starts."""

    def __init__(self):
        self.commands = []

    def __call__(self, argv, data=None, cwd=None):
        self.commands.append(list(argv))
        return run_subprocess(argv, data=data, cwd=cwd)


@pytest.fixture
def engine(bpffs_root, state_dir):
    with Engine(bpffs_root, state_dir, run=run_subprocess) as eng:
        cases.install(eng)
        yield eng


# -- packets, loads and counters ----------------------------------------------------

def udp4(dport):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + 8 + 5, 1, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton("10.0.0.1"), socket.inet_aton("10.0.0.2"))
    return (b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + struct.pack("!HHHH", 40000, dport, 13, 0) +
            b"hello")


def udp6(dport):
    ip6 = struct.pack("!IHBB16s16s", 6 << 28, 8 + 5, socket.IPPROTO_UDP, 64,
                      socket.inet_pton(socket.AF_INET6, "fd00::1"), socket.inet_pton(socket.AF_INET6, "fd00::2"))
    return (b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x86\xdd" + ip6 + struct.pack("!HHHH", 40000, dport, 13, 0) +
            b"hello")


def arp():
    return b"\xff" * 6 + b"\x02\0\0\0\0\x01\x08\x06" + bytes(28)


PACKETS = [udp4(53), udp4(7777), udp6(7777), udp6(53), arp(), udp4(7001), udp4(7002)]


def load(layout, path, plugins, used):
    """Open and load an object running these plugins' code as the engine loads
    a linked dispatcher (dispatcher.open_joined: only the dispatcher program and
    tail-call targets, settings written, every map bound to its plugin's pin),
    without its pin. The kernel's refusal is its BpfError."""
    obj = disp_mod.open_joined(layout, path, used, plugins, layout.bpffs_root)
    try:
        obj.load()
    except BaseException:
        obj.close()
        raise
    return obj


def counters(layout, plugins, used):
    """{(plugin, map): [value per key]} of the plugins' pinned array maps."""
    out = {}
    for name in used:
        for declared in plugins[name].maps:
            fd = libbpf.obj_get(layout.plugin_map_pin(name, declared))
            try:
                info = libbpf.map_info(fd)
                if info.type != libbpf.BPF_MAP_TYPE_ARRAY:
                    continue
                out[(name, declared)] = [bpf_maps.map_lookup(fd, struct.pack("=I", key), info.value_size)
                                         for key in range(info.max_entries)]
            finally:
                libbpf.close_fd(fd)
    return out


def run_packets(layout, path, plugins, used, packets=None):
    """[(verdict, {map slot: how much this packet added})] per packet (PACKETS
    by default)."""
    packets = PACKETS if packets is None else packets
    obj = load(layout, path, plugins, used)
    try:
        fd = obj.program(disp_mod.DISPATCHER_FUNC).fd
        results = []
        for packet in packets:
            before = counters(layout, plugins, used)
            verdict = libbpf.prog_test_run(fd, packet).retval
            after = counters(layout, plugins, used)
            added = {}
            for key, values in after.items():
                for slot, (old, new) in enumerate(zip(before[key], values)):
                    if old != new:
                        added[key + (slot,)] = struct.unpack("=Q", new)[0] - struct.unpack("=Q", old)[0]
            results.append((verdict, added))
        return results
    finally:
        obj.close()


def store_copies(engine, names, source):
    """Plugins built from one source and stored as datapath_plugin does, without
    its per-plugin verification and registry save (256 of those take minutes)."""
    plugins = {}
    for name in names:
        plugins[name] = plugin_store.build(engine.toolchain, engine.layout, name, src=os.path.join(TESTDATA, source))
        plugin_load.pin_maps(engine.layout, plugins[name])
    return plugins


def func_count(path, plugins, layout, used):
    """How many functions the kernel verified in the loaded dispatcher."""
    obj = load(layout, path, plugins, used)
    try:
        fd = obj.program(disp_mod.DISPATCHER_FUNC).fd
        return libbpf._get_info(fd, libbpf._ProgInfo()).nr_func_info  # pylint: disable=protected-access
    finally:
        obj.close()


def both(engine, attach, chain, main=None):
    """(inline build, linked object path) of one chain."""
    kind = program_family(attach)
    plugins = engine.registry.plugins
    built = inline_build.prepare_inline(engine.toolchain, engine.layout, kind, chain, main, plugins)
    linked, used = disp_mod.prepare_link(engine.toolchain, engine.layout, kind, chain, main, plugins)
    assert used == built.used
    return built, linked


# -- the same chain, inline and linked ------------------------------------------------

@pytest.mark.parametrize("attach", ["tc_ingress", "xdp"])
def test_inline_chain_judges_and_counts_as_the_linked_one(engine, attach):
    solved = chain_mod.solve_dispatcher(cases.hooks(attach))
    built, linked = both(engine, attach, solved)
    assert built.calls_left == []
    plugins, layout = engine.registry.plugins, engine.layout
    inline_runs = run_packets(layout, built.object_path, plugins, built.used)
    linked_runs = run_packets(layout, linked, plugins, built.used)
    assert inline_runs == linked_runs
    drop, keep = (TC_ACT_SHOT, TC_ACT_OK) if attach == "tc_ingress" else (XDP_DROP, XDP_PASS)
    assert [verdict for verdict, _added in inline_runs] == [keep, drop, drop, keep, keep, keep, keep]
    # counter runs before the dropper and counts everything; twin after it, the rest.
    counted = [added.get(("counter", "counts", 0)) for _v, added in inline_runs]
    after = [added.get(("twin", "counts", 0)) for _v, added in inline_runs]
    assert counted == [1] * 7 and after == [1, None, None, 1, 1, 1, 1]
    assert [added.get(("dropper", "dropped", 0)) for _v, added in inline_runs] == [None, 1, 1, None, None, None, None]


def test_entry_programs_inline_as_main_and_as_hooks(engine):
    for attach, main, hooks in cases.entry_chains():
        solved = chain_mod.solve_dispatcher(hooks)
        built, linked = both(engine, attach, solved, FunctionRef.from_json(main))
        assert built.calls_left == []
        plugins, layout = engine.registry.plugins, engine.layout
        inline_runs = run_packets(layout, built.object_path, plugins, built.used)
        assert inline_runs == run_packets(layout, linked, plugins, built.used)
        assert [verdict for verdict, _added in inline_runs][:2] == (
            [TC_ACT_OK, TC_ACT_SHOT] if attach == "tc_ingress" else [XDP_PASS, XDP_DROP])


def test_two_instances_of_one_source_keep_their_own_settings_inline(engine):
    src = os.path.join(TESTDATA, "configurable.c")
    engine.ensure_plugin("cfg_drop", src=src, config={"match_port": 7001, "action": "ACTION_DROP"})
    engine.ensure_plugin("cfg_count", src=src, config={"match_port": 7002})
    chain = Chain(pre=[("cfg_drop", "configured_check"), ("cfg_count", "configured_check")])
    built, linked = both(engine, "tc_ingress", chain)
    plugins, layout = engine.registry.plugins, engine.layout
    inline_runs = run_packets(layout, built.object_path, plugins, built.used)
    assert inline_runs == run_packets(layout, linked, plugins, built.used)
    by_port = dict(zip(PACKETS, inline_runs))
    assert by_port[udp4(7001)][0] == TC_ACT_SHOT and by_port[udp4(7001)][1][("cfg_drop", "counts", 3)] == 1
    assert by_port[udp4(7002)][0] == TC_ACT_OK and by_port[udp4(7002)][1][("cfg_count", "counts", 1)] == 1


# -- nothing is called -------------------------------------------------------------------

def test_no_plugin_function_is_called_in_the_inline_object(engine):
    solved = chain_mod.solve_dispatcher(cases.hooks("tc_ingress"))
    built, linked = both(engine, "tc_ingress", solved)
    plugins, layout = engine.registry.plugins, engine.layout
    hooked = inline_build.inline_symbols(Chain.from_json(solved), None, plugins)
    assert len(hooked) == 4  # counter, dropper, twin and the verdicts post hook
    # The kernel's view: one function verified, link mode one more per hooked function.
    assert func_count(built.object_path, plugins, layout, built.used) == 1
    assert func_count(linked, plugins, layout, built.used) == 1 + len(hooked)
    # The object's: no hooked function left (LLVM deletes an internal function
    # inlined everywhere; a function still called would still be in the BTF).
    assert inline_build.functions_left(built.object_path, hooked) == []
    assert inline_build.functions_left(linked, hooked) == hooked


@pytest.mark.parametrize("text,refused", [("GPL", False), ("Dual BSD/GPL", False), ("MIT", True), (None, False)])
def test_the_license_check_reads_the_section_with_llvm_objcopy(engine, text, refused):
    source = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nint f(struct __sk_buff *ctx) { return -1; }\n"
    if text is not None:
        source += 'char LICENSE[] SEC("license") = "%s";\n' % text
    compiled = engine.toolchain.toolchain.compile_source_text(source, "license_%s" % (text or "none").replace(" ", "_")
                                                              .replace("/", "_"))
    if refused:
        with pytest.raises(InlineError) as caught:
            inline_build.check_license(engine.toolchain.toolchain, "lic", compiled.object_path)
        assert "plugin 'lic' is licensed 'MIT'" in str(caught.value) and "mode: link" in str(caught.value)
    else:
        inline_build.check_license(engine.toolchain.toolchain, "lic", compiled.object_path)


# -- the cache ----------------------------------------------------------------------------

def test_a_rerun_is_a_cache_hit_that_runs_no_tool(engine, tmp_path):
    """In a cache of its own: the first build runs clang and the LLVM tools,
    the same build again (another Toolchain, as a new module run would make)
    starts no command at all. The object does not depend on where the cache is."""
    solved = chain_mod.solve_dispatcher(cases.hooks("tc_ingress"))
    plugins, layout = engine.registry.plugins, engine.layout
    runner = CountingRunner()
    first = inline_build.prepare_inline(Toolchain(str(tmp_path / "cache"), runner), layout, "tc", solved, None,
                                        plugins)
    tools = [os.path.basename(argv[argv.index("--kill-after=5") + 2]) for argv in runner.commands]
    tools = ["clang" if tool.startswith("clang") else tool for tool in tools]  # clang-19 ...
    assert not first.cached
    # The dispatcher's bitcode, per plugin its plain object (the check against the
    # installed one), its license (llvm-objcopy), whether its code reaches cb[4]
    # (llvm-readobj) and its bitcode, then the join's four steps.
    assert sorted(set(tools)) == ["clang", "llc", "llvm-link", "llvm-nm", "llvm-objcopy", "llvm-readobj", "opt"]
    assert tools.count("clang") == 1 + 2 * len(first.used)
    assert tools.count("llvm-readobj") == len(first.used)

    rerun = CountingRunner()
    again = inline_build.prepare_inline(Toolchain(str(tmp_path / "cache"), rerun), layout, "tc", solved, None,
                                        plugins)
    assert rerun.commands == []
    assert again.cached and again.sha256 == first.sha256 and again.object_path == first.object_path
    # The engine's cache (another directory) holds the very same object.
    shared = inline_build.prepare_inline(engine.toolchain, layout, "tc", solved, None, plugins)
    assert shared.sha256 == first.sha256


# -- refusals -----------------------------------------------------------------------------

def test_a_plugin_installed_from_an_object_is_refused_by_name(engine, tmp_path):
    obj = str(tmp_path / "prebuilt.o")
    Toolchain(str(tmp_path / "cache"), run_subprocess).compile(os.path.join(TESTDATA, "counter.c"), out_path=obj)
    engine.ensure_plugin("prebuilt", obj=obj)
    chain = Chain(pre=[("counter", "count"), ("prebuilt", "count")])
    with pytest.raises(InlineError) as caught:
        inline_build.prepare_inline(engine.toolchain, engine.layout, "tc", chain, None, engine.registry.plugins)
    assert "'prebuilt' (object %s) was installed from a prebuilt object only" % obj in str(caught.value)
    assert "use mode: link" in str(caught.value)
    # Link mode takes it.
    disp_mod.prepare_link(engine.toolchain, engine.layout, "tc", chain, None, engine.registry.plugins)


def test_a_source_changed_since_install_is_refused(engine, tmp_path):
    src = tmp_path / "mine.c"
    shutil.copyfile(os.path.join(TESTDATA, "counter.c"), str(src))
    os.chmod(str(src), 0o644)
    engine.ensure_plugin("mine", src=str(src))
    chain = Chain(pre=[("mine", "count")])
    plugins = engine.registry.plugins
    inline_build.prepare_inline(engine.toolchain, engine.layout, "tc", chain, None, plugins)
    src.write_text(src.read_text().replace("return -1;", "return 2;", 1))
    with pytest.raises(InlineError) as caught:
        inline_build.prepare_inline(engine.toolchain, engine.layout, "tc", chain, None, plugins)
    assert "plugin 'mine'" in str(caught.value) and "install the plugin again" in str(caught.value)


# -- long chains --------------------------------------------------------------------------

def test_sixty_four_counters_inline_and_the_sixty_fifth_hits_the_kernels_map_limit(engine):
    """counter.c has one map; the kernel lets one program use 64 maps
    (MAX_USED_MAPS), in link and inline mode alike. 64 counters verify and each
    counts once; a 65th is refused at load with the kernel's reason."""
    cases.install(engine, cases.SIXTY_FOUR + ["p64"])
    plugins, layout = engine.registry.plugins, engine.layout
    chain = Chain(pre=[(name, "count") for name in cases.SIXTY_FOUR])
    built = inline_build.prepare_inline(engine.toolchain, layout, "tc", chain, None, plugins)
    assert built.calls_left == []
    [(verdict, added)] = run_packets(layout, built.object_path, plugins, built.used, [udp4(53)])
    assert verdict == TC_ACT_OK
    assert sorted(key[0] for key, n in added.items() if key[2] == 0 and n == 1) == cases.SIXTY_FOUR
    assert func_count(built.object_path, plugins, layout, built.used) == 1

    longer = Chain(pre=[(name, "count") for name in cases.SIXTY_FOUR + ["p64"]])
    built = inline_build.prepare_inline(engine.toolchain, layout, "tc", longer, None, plugins)
    with pytest.raises(libbpf.BpfError) as caught:
        load(layout, built.object_path, plugins, built.used).close()
    assert caught.value.errno == 7 and "maps per program has reached the limit of 64" in (caught.value.log or "")


def test_a_chain_too_long_for_link_mode_verifies_inline(engine):
    """Without maps the next limit is the kernel's 256 functions per program
    (MAX_SUBPROGS): link mode's 256 hooks plus the dispatcher are refused
    ("too many subprograms"), inline they are one function and verify."""
    layout = engine.layout
    plugins = store_copies(engine, MAPLESS, "mapless.c")
    chain = Chain(pre=[(name, "check") for name in MAPLESS])
    built = inline_build.prepare_inline(engine.toolchain, layout, "tc", chain, None, plugins)
    linked, _used = disp_mod.prepare_link(engine.toolchain, layout, "tc", chain, None, plugins)
    assert built.calls_left == []
    verdicts = [v for v, _added in run_packets(layout, built.object_path, plugins, built.used, PACKETS[:4])]
    assert verdicts == [TC_ACT_OK, TC_ACT_SHOT, TC_ACT_SHOT, TC_ACT_OK]
    with pytest.raises(libbpf.BpfError) as caught:
        load(layout, linked, plugins, built.used).close()
    assert "too many subprograms" in (caught.value.log or str(caught.value))


def test_a_chain_longer_than_a_bpf_jump_is_refused_inline_and_links(engine):
    """The limit of inline mode itself: the whole chain is one program, and its
    first hook jumps to the exit, which at -mcpu=v3 (16-bit jump offsets) must
    be at most 32767 instructions away. bulky.c's hook is about 2500
    instructions: 8 inline verify, 16 are refused with the way out, and link
    mode (one function per hook) builds and verifies the same 16."""
    layout = engine.layout
    plugins = store_copies(engine, BULKY, "bulky.c")
    eight = Chain(pre=[(name, "churn") for name in BULKY[:8]])
    built = inline_build.prepare_inline(engine.toolchain, layout, "tc", eight, None, plugins)
    assert func_count(built.object_path, plugins, layout, built.used) == 1
    chain = Chain(pre=[(name, "churn") for name in BULKY])
    with pytest.raises(InlineError) as caught:
        inline_build.prepare_inline(engine.toolchain, layout, "tc", chain, None, plugins)
    message = str(caught.value)
    assert "(16 hooked functions) is too long to inline" in message and "use mode: link" in message
    assert "-mcpu=v4" in message and "Stack dump" not in message
    linked, used = disp_mod.prepare_link(engine.toolchain, layout, "tc", chain, None, plugins)
    assert func_count(linked, plugins, layout, used) == 17


# -- cb[4]: left alone where no plugin of the chain can reach it --------------------

CB4_HEAD = "#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\n#include \"ebpf_datapath.h\"\n"
CB4_SOURCES = {
    # name: (body of int f(struct __sk_buff *ctx), reaches cb[4])
    "plain": ("return ctx->len > 64 ? DP_CONTINUE : 2;", False),
    "neighbours": ("return ctx->cb[3] + ctx->cb[0] ? DP_CONTINUE : 2;", False),
    "identity": ("return dp_remote_identity(ctx) ? 2 : DP_CONTINUE;", True),
    "writes": ("ctx->cb[4] = 7; return DP_CONTINUE;", True),
    "probe_read": ("__u32 v = 0; bpf_probe_read_kernel(&v, 4, ctx); return v ? 2 : DP_CONTINUE;", True),
}
CB4_EXTRA = {
    # a static function in .text reaches it: the whole object is read, not only the program sections
    "helper_in_text": ("static __attribute__((noinline)) int get(struct __sk_buff *ctx) { return ctx->cb[4]; }\n"
                       "int f(struct __sk_buff *ctx) { return get(ctx) ? 2 : DP_CONTINUE; }\n", True),
    # a kfunc (an extern function) may hand out the kernel's sk_buff
    "kfunc": ("extern void *bpf_cast_to_kern_ctx(void *obj) __ksym;\n"
              "int f(struct __sk_buff *ctx) { return bpf_cast_to_kern_ctx(ctx) ? DP_CONTINUE : 2; }\n", True),
}


@pytest.mark.parametrize("name", sorted(CB4_SOURCES) + sorted(CB4_EXTRA))
def test_which_code_reaches_cb4(engine, name):
    toolchain = engine.toolchain.toolchain
    if name in CB4_SOURCES:
        body, expected = CB4_SOURCES[name]
        text = CB4_HEAD + "int f(struct __sk_buff *ctx) { %s }\n" % body
    else:
        body, expected = CB4_EXTRA[name]
        text = CB4_HEAD + body
    text += 'char LICENSE[] SEC("license") = "GPL";\n'
    compiled = toolchain.compile_source_text(text, "cb4_%s" % name)
    assert plugin_store.reaches_cb4(toolchain, compiled.object_path) is expected


@pytest.mark.parametrize("path,expected", [
    ("bpf/testdata/counter.c", False), ("bpf/testdata/parsed.c", True), ("bpf/testdata/tailcalls.c", True),
    ("bpf/examples/bytecount.c", True), ("benchmarks/bpf/parsed_count.c", False), ("bpf/examples/portfilter.c", False),
])
def test_which_plugins_of_the_project_reach_cb4(engine, path, expected):
    """parsed.c reads the identity beside the parse (so test_parse_once's inline
    chain keeps the handling and its ctx barrier); tailcalls.c tail-calls."""
    toolchain = engine.toolchain.toolchain
    compiled = toolchain.compile(os.path.join(cases.ROOT, path))
    assert plugin_store.reaches_cb4(toolchain, compiled.object_path) is expected
    # Remembered by content: asking again starts no tool.
    runner = CountingRunner()
    again = Toolchain(toolchain.cache_dir, runner)
    assert plugin_store.reaches_cb4(again, compiled.object_path) is expected and runner.commands == []


# Reads cb[4] as ebpf_datapath.h's dp_remote_identity() does, without the header:
# an object including it records the cache's include directory, so the fresh
# cache below would compile other bytes than the installed ones.
IDENTITY_PLUGIN = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} seen SEC(".maps");

__attribute__((noinline)) int ident(struct __sk_buff *ctx)
{
    __u32 key = 0;
    __u64 *v = bpf_map_lookup_elem(&seen, &key);

    if (v)
        *v = (ctx->cb[4] & 0xffffff) + 1;
    return -1; /* DP_CONTINUE */
}

char LICENSE[] SEC("license") = "GPL";
"""
CB_OFFSET = 48  # struct __sk_buff's cb[0]


@pytest.mark.parametrize("with_identity", [False, True])
def test_an_inline_tc_chain_handles_cb4_only_where_a_plugin_reaches_it(engine, tmp_path, with_identity):
    """With a plugin reading the identity the dispatcher zeroes cb[4] for the
    chain (the plugin reads 0) and restores it; without one it leaves the
    word alone. Either way whoever runs after the chain finds it as it was."""
    src = tmp_path / "ident.c"
    src.write_text(IDENTITY_PLUGIN)
    engine.ensure_plugin("ident", src=str(src))
    plugins, layout = engine.registry.plugins, engine.layout
    pre = [("counter", "count")] + ([("ident", "ident")] if with_identity else [])
    toolchain = Toolchain(str(tmp_path / "cache"), run_subprocess)
    built = inline_build.prepare_inline(toolchain, layout, "tc", Chain(pre=pre), None, plugins)
    generated = [os.path.join(root, f) for root, _dirs, files in os.walk(os.path.join(toolchain.cache_dir, "src"))
                 for f in files if f == "dispatcher.c"]
    assert len(generated) == 1
    with open(generated[0]) as handle:
        assert ("saved_cb" in handle.read()) is with_identity
    word = 0xC0FFEE07
    # struct __sk_buff with cb[4] set; the kernel copies the whole struct back,
    # so the buffer is larger than it (the tail beyond it stays zero).
    ctx = (bytes(CB_OFFSET) + struct.pack("=5I", 0, 0, 0, 0, word)).ljust(512, b"\0")
    obj = load(layout, built.object_path, plugins, built.used)
    try:
        run = libbpf.prog_test_run(obj.program(disp_mod.DISPATCHER_FUNC).fd, udp4(53), ctx=ctx)
    finally:
        obj.close()
    assert run.retval == TC_ACT_OK
    assert struct.unpack_from("=I", run.ctx_out, CB_OFFSET + 16)[0] == word
    if with_identity:
        seen = counters(layout, plugins, ["ident"])[("ident", "seen")][0]
        assert struct.unpack("=Q", seen)[0] == 1, "the plugin read identity 0 (cb[4] zeroed for the chain)"
