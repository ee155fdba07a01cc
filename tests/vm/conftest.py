# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VM tier's tests use the integration tier's lab fixtures: load that
conftest under its own module name and re-export the fixtures."""

import importlib.util
import os

_PATH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "integration", "conftest.py")
_SPEC = importlib.util.spec_from_file_location("integration_conftest", _PATH)
_INTEGRATION = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_INTEGRATION)

lab = _INTEGRATION.lab
bpffs_root = _INTEGRATION.bpffs_root
state_dir = _INTEGRATION.state_dir
