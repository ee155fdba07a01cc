# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named crash points, so tests can prove that a run killed at any step of a
chain change leaves a host the next run converges, with nothing leaked.

A test sets EBPF_DATAPATH_CRASH_AT to one point's name; the run then kills
itself with SIGKILL when it reaches that point, exactly as an OOM kill or a
lost SSH session would stop it: no exception handler, no cleanup. Unset (the
only way production runs), a crash point is one dictionary lookup.

The points, in the order a chain change passes them:
  after_map_pin   plugin maps pinned, registry not yet saved
  after_compile   dispatcher compiled (and linked), nothing loaded
  after_load      dispatcher loaded into the kernel, nothing pinned
  after_pin       new generation pinned (programs and links), not attached
  while_saving_ahead
                  the write-ahead record (see converge) synced, not yet renamed
  after_swap      new generation attached, registry not yet saved
  while_saving    registry temp file written and synced, not yet renamed
  before_release  a moved dispatcher's new place recorded, the old one not yet released
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import signal

ENV = "EBPF_DATAPATH_CRASH_AT"
POINTS = ("after_map_pin", "after_compile", "after_load", "after_pin", "while_saving_ahead", "after_swap",
          "while_saving", "before_release")


def crash_point(name):
    """Die here, at once, if the test asked for it."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
