# -*- coding: utf-8 -*-
# Copyright (c) 2026, ebpf.datapath contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error base of the collection.

Every error an operator can act on is a DatapathError (or a subclass): its
message says what to fix, and ``log`` carries the compiler's or the verifier's
output when there is one. Modules catch this one class and hand it to
fail_json; anything else is a bug and surfaces as a traceback.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class DatapathError(Exception):
    """Anything the operator must fix; the message says what."""

    def __init__(self, message, log=""):
        super(DatapathError, self).__init__(message)
        self.log = log or ""
