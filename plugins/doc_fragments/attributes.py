# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The attributes every module of ebpf.datapath shares: its action group and platform.
check_mode and diff_mode differ per module and stay in each module's own DOCUMENTATION."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    DOCUMENTATION = r"""
attributes:
  action_group:
    description: Use C(group/ebpf.datapath.all) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - ebpf.datapath.all
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: linux
"""
