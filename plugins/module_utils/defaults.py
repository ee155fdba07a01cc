# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one home of the collection's option defaults and numeric ranges.

Modules, the schema and the engine read them from here, so a default is
written once. Every numeric option has a range; ``check_range`` refuses a
value outside it with a message naming the option and the range.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.ebpf.datapath.plugins.module_utils.errors import DatapathError

DEFAULT_BPFFS_ROOT = "/sys/fs/bpf/ebpf-datapath"
DEFAULT_STATE_DIR = "/var/lib/ebpf-datapath"
DEFAULT_CILIUM_GLOBALS = "/sys/fs/bpf/tc/globals"
DEFAULT_PRIORITY = 50
DEFAULT_KEEP_GENERATIONS = 3
DEFAULT_MODE = "auto"
DEFAULT_TC_BACKEND = "auto"
DEFAULT_HOOK = "pre"

# option -> (lowest, highest), both allowed.
RANGES = {
    # Ties between hook entries the constraints leave unordered; lower runs earlier.
    "priority": (0, 1000),
    # The running generation counts: 1 keeps no rollback target.
    "keep_generations": (1, 100),
    # Cilium endpoint ids are 16 bit (cilium_calls_custom_%05d).
    "endpoint": (0, 0xFFFF),
    # Key in Cilium's custom-call prog array: 0..3 (ipv4/ipv6 x ingress/egress).
    "custom_hook": (0, 3),
    # tc filter priorities are 16 bit, 0 means "kernel picks".
    "position.priority": (1, 0xFFFF),
    # Kernel program ids are u32, 0 is no program.
    "position.prog_id": (1, 0xFFFFFFFF),
    # Generation numbers.
    "generation": (1, 0x7FFFFFFF),
}


def check_range(option, value, owner=""):
    """value as an int, or DatapathError naming the option and its range."""
    low, high = RANGES[option]
    where = "%s: " % owner if owner else ""
    if isinstance(value, bool) or not isinstance(value, int):
        raise DatapathError("%s%s must be an integer between %d and %d, got %r" % (where, option, low, high, value))
    if not low <= value <= high:
        raise DatapathError("%s%s must be between %d and %d, got %d" % (where, option, low, high, value))
    return value
