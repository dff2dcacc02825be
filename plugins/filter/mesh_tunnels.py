# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter mesh_tunnels: a gateway's link ends to the tunnel modules' lists (module_utils/_mesh/tunnels.py)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.tunnels import TunnelPlanError, tunnel_config


def mesh_tunnels(ends, netns=None, mtu=1500):
    if not isinstance(ends, (list, tuple)) or not all(isinstance(end, Mapping) for end in ends):
        raise AnsibleFilterError("mesh_tunnels: the input must be a list of link ends, "
                                 "e.g. routevpn_mesh_plan.hosts[inventory_hostname]")
    try:
        mtu = int(mtu)
    except (TypeError, ValueError):
        raise AnsibleFilterError("mesh_tunnels: mtu must be a number, got %r" % (mtu,))
    try:
        return tunnel_config([dict(end) for end in ends], netns=netns, mtu=mtu)
    except TunnelPlanError as exc:
        raise AnsibleFilterError("mesh_tunnels: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {"mesh_tunnels": mesh_tunnels}
