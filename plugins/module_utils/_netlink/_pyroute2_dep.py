# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to routevpn.mesh: the one guarded import of pyroute2."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

try:
    import pyroute2  # noqa: F401  pylint: disable=unused-import
    from pyroute2 import IPRoute  # noqa: F401  pylint: disable=unused-import
    from pyroute2.netlink.exceptions import NetlinkError  # noqa: F401  pylint: disable=unused-import
except ImportError:
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = traceback.format_exc()
    IPRoute = None

    class NetlinkError(Exception):
        code = None
else:
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None


def require_pyroute2(module):
    """Fail the module with Ansible's standard message when pyroute2 is missing."""
    if not HAS_PYROUTE2:
        from ansible.module_utils.basic import missing_required_lib

        module.fail_json(
            msg=missing_required_lib("pyroute2", url="https://pypi.org/project/pyroute2/")
            + " (on Debian: apt install python3-pyroute2)",
            exception=PYROUTE2_IMPORT_ERROR,
        )
