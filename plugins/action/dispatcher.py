# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ebpf.datapath.dispatcher: with build_on controller the
programs the target generates are compiled here (plugin_utils/controller_build.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.ebpf.datapath.plugins.plugin_utils.controller_build import BuildingAction


class ActionModule(BuildingAction):

    MODULE = "ebpf.datapath.dispatcher"
