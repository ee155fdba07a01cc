#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: dispatcher
short_description: Create, replace or remove a BPF dispatcher at an attach point
version_added: "0.1.0"
description:
  - A dispatcher is the program at an attach point (tc ingress or egress, or XDP, of one interface, optionally inside a
    network namespace) that runs the C(pre) chain of plugin functions, then the main program, then the C(post) chain.
  - Every change builds the complete new dispatcher first, then swaps it in with one atomic operation (a bpf_link update
    for tcx and XDP, C(tc filter replace) for clsact). No packet meets a half-built chain; a failure leaves the running
    chain untouched.
  - Hooks are bound one by one with M(ebpf.datapath.datapath_hook), or all at once with O(plugins) so a host converges in
    a single swap.
  - A rerun with the same chain reports no change and builds nothing.
requirements:
  - python3-pyroute2 (L(pyroute2,https://pypi.org/project/pyroute2/)) on the target
  - C(libbpf.so.1) on the target (Debian's C(libbpf1)), loaded with ctypes
  - clang with the BPF target and the libbpf headers (Debian's C(clang-19) and C(libbpf-dev)) on the target,
    where the dispatcher's BPF C, generated for its chain, is compiled (a build already in the compile cache
    under O(state_dir) is reused)
  - root on the target (BPF, bpffs, netlink)
  - bpffs mounted at the parent of O(bpffs_root) (normally C(/sys/fs/bpf))
author:
  - ebpf.datapath contributors (@ebpf-datapath)
extends_documentation_fragment:
  - ebpf.datapath.common
  - ebpf.datapath.build
  - ebpf.datapath.attributes
attributes:
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
    details: With O(build_on=controller) the action plugin compiles the programs the target generates and ships them.
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details: The diff shows the chain before and after, plugin by plugin.
options:
  name:
    description:
      - Name of the dispatcher, unique on the host. Letters, digits, C(_), C(.) and C(-), at most 64 characters.
    type: str
    required: true
  attach:
    description:
      - The attach point. V(cilium_custom) is a slot of Cilium's per-endpoint custom-call prog array (Cilium built
        with custom calls, up to 1.17), see O(endpoint) and O(custom_hook).
    type: str
    choices: [tc_ingress, tc_egress, xdp, cilium_custom]
  interface:
    description:
      - Network interface of the attach point. Required for V(tc_ingress), V(tc_egress) and V(xdp).
    type: str
  endpoint:
    description:
      - With O(attach=cilium_custom), the Cilium endpoint id; the prog array is
        C(<cilium_globals>/cilium_calls_custom_<endpoint as %05d>).
    type: int
  custom_hook:
    description:
      - With O(attach=cilium_custom), the slot of the endpoint's prog array (keys 0 to 3).
      - At this slot the main verdict is the one Cilium decided (left in C(skb->cb[4])) and plugins can read the remote
        identity with C(dp_remote_identity()). A post hook that returns anything but C(-1) replaces Cilium's verdict,
        which can break Cilium's datapath; count, do not decide, unless you mean it.
    type: str
    choices: [ipv4_ingress, ipv4_egress, ipv6_ingress, ipv6_egress]
  cilium_globals:
    description:
      - With O(attach=cilium_custom), Cilium's bpffs globals directory.
    type: path
    default: /sys/fs/bpf/tc/globals
  netns:
    description:
      - Named network namespace (as in C(ip netns list)) that holds O(interface).
    type: str
  mode:
    description:
      - How the chain is built. V(inline) compiles the dispatcher and the plugins' sources into one program in which
        every plugin call is inlined (no call costs anything; LLVM bitcode joined with C(llvm-link), on the host that
        compiles, so it needs O(build_on=target) and every hooked plugin installed from O(ebpf.datapath.datapath_plugin#module:src)).
        V(link) joins dispatcher and plugins with libbpf's static linker into one program, each plugin a BPF-to-BPF
        call (runs on every kernel with BPF-to-BPF calls). V(freplace) replaces dispatcher stubs with extension
        programs (BPF_PROG_TYPE_EXT).
      - V(auto) picks inline where every plugin of the chain has source and this host compiles, else freplace where
        the kernel loads extension programs, else link; an inline build that fails (the verifier refuses the joined
        program, a chain longer than a BPF jump) falls back to the next mode in the same run, with a warning, and is
        remembered so a rerun does not try it again. The choice is returned in RV(mode), the reason in
        RV(mode_reason).
      - In every mode the swap is atomic, generations, rollback and restore work the same, and maps are the plugins'
        pins.
    type: str
    choices: [auto, link, freplace, inline]
    default: auto
  main:
    description:
      - The function the dispatcher wraps, from an installed plugin. Without it the main verdict is pass-through
        (C(TC_ACT_OK) or C(XDP_PASS)).
    type: dict
    suboptions:
      plugin:
        description: Plugin that holds the function.
        type: str
        required: true
      function:
        description:
          - Global function of that plugin; it takes the packet context and returns an C(int), the main verdict.
          - It may be an entry program, written in ELF section C(tc), C(classifier), C(tcx/ingress), C(xdp) and
            the like (libbpf's C(SEC) macro), unchanged; its own verdict is the main verdict (see
            M(ebpf.datapath.datapath_hook) for entry programs as hooks).
        type: str
        required: true
  tc_backend:
    description:
      - For tc attach points, V(tcx) (bpf_link, kernel 6.6 and later), V(clsact) (clsact qdisc and a cls_bpf filter,
        older kernels) or V(auto) (tcx where the kernel has it).
    type: str
    choices: [auto, tcx, clsact]
    default: auto
  position:
    description:
      - Where the dispatcher sits among programs already attached. Only used when the dispatcher is first attached.
    type: dict
    suboptions:
      anchor:
        description: tcx only. V(first) or V(last) among tcx programs, or V(before)/V(after) the program O(position.prog_id).
        type: str
        choices: [first, last, before, after]
      prog_id:
        description: tcx only. Program id that O(position.anchor=before) or O(position.anchor=after) refers to.
        type: int
      priority:
        description: clsact only. The tc filter priority (lower runs first).
        type: int
  plugins:
    description:
      - The whole set of hooks of this dispatcher, declaratively. When given, it replaces the hooks bound with
        M(ebpf.datapath.datapath_hook); when omitted, those hooks are kept.
    type: list
    elements: dict
    suboptions:
      plugin:
        description: Plugin name.
        type: str
        required: true
      function:
        description:
          - Global function of the plugin, a hook function or an entry program (a program of its own in section
            C(tc), C(xdp) ...; its pass verdict continues the chain, any other verdict ends it, see
            M(ebpf.datapath.datapath_hook)).
        type: str
        required: true
      hook:
        description: V(pre) or V(post).
        type: str
        choices: [pre, post]
        default: pre
      constraints:
        description:
          - "Ordering constraints, as C({anchor: before|after, plugin: NAME}) or Cilium's C({order: BEFORE|AFTER,
            plugin: NAME}). A constraint on a plugin that is not hooked here is ignored with a warning."
        type: list
        elements: dict
        default: []
      priority:
        description: Breaks ties among unconstrained functions; lower runs first, then by name.
        type: int
        default: 50
      verdict:
        description:
          - For an entry program, V(pass_continues) (its pass verdict or C(-1) continue the chain, any other verdict
            ends it) or V(final) (whatever it returns ends the chain), as in M(ebpf.datapath.datapath_hook).
        type: str
        choices: [pass_continues, final]
        default: pass_continues
  strict_constraints:
    description:
      - Fail instead of warning when a constraint names a plugin that is not hooked at the same hook.
    type: bool
    default: false
  keep_generations:
    description:
      - How many applied chains (generations) to keep pinned for rollback.
    type: int
    default: 3
  stats:
    description:
      - Count, per plugin call and CPU, the verdicts each hook and main return (C(continue), each verdict, other), in
        every mode; M(ebpf.datapath.datapath_info) with O(ebpf.datapath.datapath_info#module:stats=true) returns them
        per plugin (RV(ebpf.datapath.datapath_info#module:dispatchers[].plugin_stats)). Runs are the sum of the counts.
      - The dispatcher counts after each call (one increment into a per-CPU map it owns, pinned beside its program at
        C(dispatchers/<name>/gen-<N>/stats)); the counts belong to one generation and start at zero with each new one.
        Their cost per plugin call is measured by C(make bench-quick) (C(ns_stats_per_plugin)).
      - Turning it on or off is a rebuild (one atomic swap).
    type: bool
    default: false
    version_added: 0.3.0
  state:
    description:
      - V(present) creates or updates the dispatcher; V(absent) detaches it and removes every pin, link and filter of
        ours, leaving the attach point as it was found.
    type: str
    choices: [present, absent]
    default: present
"""

EXAMPLES = r"""
- name: A dispatcher at tc ingress of eth0 (pass-through main)
  ebpf.datapath.dispatcher:
    name: eth0-in
    attach: tc_ingress
    interface: eth0

- name: The whole chain in one swap, inside a network namespace, on clsact
  ebpf.datapath.dispatcher:
    name: lab-in
    attach: tc_ingress
    interface: veth1
    netns: lab
    mode: link
    tc_backend: clsact
    plugins:
      - plugin: counter
        function: count_packets
      - plugin: firewall
        function: drop_blocked
        constraints:
          - anchor: after
            plugin: counter
      - plugin: audit
        function: audit_verdict
        hook: post

- name: Count bytes per remote identity in Cilium's IPv4 ingress slot of endpoint 1234
  ebpf.datapath.dispatcher:
    name: ep1234-v4-in
    attach: cilium_custom
    endpoint: 1234
    custom_hook: ipv4_ingress
    mode: link
    plugins:
      - plugin: bytecount
        function: bytecount
        hook: post

- name: Remove it
  ebpf.datapath.dispatcher:
    name: lab-in
    state: absent
"""

RETURN = r"""
built_on:
  description:
    - V(controller) when the programs this task needed were compiled on the controller (O(build_on=controller), or
      O(build_on=auto) on a controller with clang).
  returned: when the controller built
  type: str
  sample: controller
controller_clang_runs:
  description: How many times clang ran on the controller for this task (C(0) when its cache had every object).
  returned: when RV(built_on=controller)
  type: int
  sample: 1
mode:
  description: The mode the chain was built in (what V(auto) chose).
  returned: when O(state=present)
  type: str
  sample: inline
mode_reason:
  description: With O(mode=auto), why it picked RV(mode).
  returned: when O(state=present) and O(mode=auto)
  type: str
  sample: "inline: every plugin of the chain has source, compiled on this host"
  version_added: 0.3.0
generation:
  description: Number of the running generation of this dispatcher.
  returned: when O(state=present)
  type: int
  sample: 4
chain:
  description: The solved chain, as C([plugin, function]) pairs in order.
  returned: when O(state=present)
  type: dict
  sample: {pre: [[counter, count_packets], [firewall, drop_blocked]], post: [[audit, audit_verdict]]}
prog_id:
  description: Kernel id of the running dispatcher program.
  returned: when O(state=present) and not in check mode
  type: int
  sample: 812
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.ebpf.datapath.plugins.module_utils.defaults import (
    DEFAULT_CILIUM_GLOBALS, DEFAULT_HOOK, DEFAULT_KEEP_GENERATIONS, DEFAULT_MODE, DEFAULT_PRIORITY, DEFAULT_TC_BACKEND)
from ansible_collections.ebpf.datapath.plugins.module_utils.module_common import (
    build_spec, diff_of, engine, fail, known_errors, report_warnings, require_libs)

HOOK_SPEC = dict(
    plugin=dict(type="str", required=True),
    function=dict(type="str", required=True),
    hook=dict(type="str", choices=["pre", "post"], default=DEFAULT_HOOK),
    constraints=dict(type="list", elements="dict", default=[]),
    priority=dict(type="int", default=DEFAULT_PRIORITY),
    verdict=dict(type="str", choices=["pass_continues", "final"], default="pass_continues"),
)


def main():
    module = AnsibleModule(
        argument_spec=build_spec(
            name=dict(type="str", required=True),
            attach=dict(type="str", choices=["tc_ingress", "tc_egress", "xdp", "cilium_custom"]),
            interface=dict(type="str"),
            endpoint=dict(type="int"),
            custom_hook=dict(type="str", choices=["ipv4_ingress", "ipv4_egress", "ipv6_ingress", "ipv6_egress"]),
            cilium_globals=dict(type="path", default=DEFAULT_CILIUM_GLOBALS),
            netns=dict(type="str"),
            mode=dict(type="str", choices=["auto", "link", "freplace", "inline"], default=DEFAULT_MODE),
            main=dict(type="dict", options=dict(plugin=dict(type="str", required=True),
                                                function=dict(type="str", required=True))),
            tc_backend=dict(type="str", choices=["auto", "tcx", "clsact"], default=DEFAULT_TC_BACKEND),
            position=dict(type="dict", options=dict(
                anchor=dict(type="str", choices=["first", "last", "before", "after"]),
                prog_id=dict(type="int"),
                priority=dict(type="int"))),
            plugins=dict(type="list", elements="dict", options=HOOK_SPEC),
            strict_constraints=dict(type="bool", default=False),
            keep_generations=dict(type="int", default=DEFAULT_KEEP_GENERATIONS),
            stats=dict(type="bool", default=False),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        required_if=[("state", "present", ("attach",)),
                     ("attach", "tc_ingress", ("interface",)),
                     ("attach", "tc_egress", ("interface",)),
                     ("attach", "xdp", ("interface",)),
                     ("attach", "cilium_custom", ("endpoint", "custom_hook"))],
        supports_check_mode=True,
    )
    require_libs(module)
    p = module.params
    errors = known_errors()
    from ansible_collections.ebpf.datapath.plugins.module_utils.naming import check_name
    from ansible_collections.ebpf.datapath.plugins.module_utils.schema import Hook
    try:
        check_name(p["name"], "dispatcher")
        if p["state"] == "present":
            if p["keep_generations"] < 1:
                module.fail_json(msg="keep_generations must be at least 1 (the running generation)")
            position = dict((k, v) for k, v in (p["position"] or {}).items() if v is not None) or None
            if position and position.get("anchor") in ("before", "after") and not position.get("prog_id"):
                module.fail_json(msg="position.anchor=%s needs position.prog_id" % position["anchor"])
            cilium = p["attach"] == "cilium_custom"
            if cilium and (p["interface"] or p["netns"] or p["main"]):
                module.fail_json(msg="attach=cilium_custom takes endpoint and custom_hook; interface, netns and main do "
                                     "not apply (the main verdict at a Cilium slot is Cilium's)")
            if p["main"]:
                check_name(p["main"]["plugin"], "plugin")
                check_name(p["main"]["function"], "function")
            hooks = None
            if p["plugins"] is not None:
                hooks = [Hook.normalise(item).to_json() for item in p["plugins"]]
                keys = [(h["plugin"], h["function"], h["hook"]) for h in hooks]
                dup = sorted(set(k for k in keys if keys.count(k) > 1))
                if dup:
                    module.fail_json(msg="plugins lists %s more than once" % ", ".join("%s.%s (%s)" % k for k in dup))
                hooks.sort(key=lambda h: (h["hook"], h["plugin"], h["function"]))
            spec = {
                "name": p["name"], "attach": p["attach"], "interface": p["interface"], "netns": p["netns"],
                "endpoint": p["endpoint"] if cilium else None, "custom_hook": p["custom_hook"] if cilium else None,
                "cilium_globals": p["cilium_globals"] if cilium else None,
                "mode": p["mode"], "main": p["main"], "tc_backend": p["tc_backend"], "position": position,
                "strict_constraints": p["strict_constraints"], "keep_generations": p["keep_generations"],
                "hooks": hooks, "stats": p["stats"],
            }
        with engine(module) as eng:
            if p["state"] == "absent":
                result = eng.remove_dispatcher(p["name"])
                report_warnings(module, eng)
                module.exit_json(changed=result["changed"], diff=diff_of(result))
            result = eng.ensure_dispatcher(spec)
            report_warnings(module, eng)
            extra = {"mode_reason": result["mode_reason"]} if result.get("mode_reason") else {}
            module.exit_json(changed=result["changed"], mode=result.get("mode"), generation=result.get("generation"),
                             chain=result.get("chain"), prog_id=result.get("prog_id"),
                             diff=diff_of(result), **extra)
    except errors as exc:
        fail(module, exc)


if __name__ == "__main__":
    main()
