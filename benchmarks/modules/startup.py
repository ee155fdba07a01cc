# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module that does nothing, run the way tests/modrun.py runs the collection's
modules: its wall time is what every module run costs before it does any work
(Python start-up, AnsibleModule, argument parsing), measured to tell that apart
from the work of the dispatcher and datapath_plugin modules."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.module_utils.basic import AnsibleModule

# The same imports the collection's modules make before they start working.
from ansible_collections.ebpf.datapath.plugins.module_utils.module_common import common_spec  # noqa: F401


def main():
    module = AnsibleModule(argument_spec=common_spec(), supports_check_mode=True)
    module.exit_json(changed=False)


if __name__ == "__main__":
    main()
