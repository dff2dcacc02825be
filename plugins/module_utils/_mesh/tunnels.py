# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""From a gateway's link ends (the per-host view of the plan) to the tunnel modules' lists.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  Pure Python, no I/O: the tunnels role calls it
through the ``mesh_tunnels`` filter.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress


class TunnelPlanError(ValueError):
    """The ends cannot be turned into tunnel interfaces; the message names the end."""


def _family(address):
    return ipaddress.ip_address(address).version


def tunnel_config(ends, netns=None, mtu=1500):
    """The ``config`` lists of xfrm_interface and vti_tunnel for ``ends``.

    Returns ``{"xfrm": [...], "vti": [...], "interfaces": [...]}``: one item
    per end, whatever its IKE daemon (strongSwan and libreswan 5.2 with
    ``ipsec-interface-managed=no`` both leave the device to the collection),
    and every planned interface name (for MSS clamping).
    """
    result = {"xfrm": [], "vti": [], "interfaces": []}
    for end in ends or []:
        for key in ("interface", "tunnel_type", "if_id", "link"):
            if end.get(key) in (None, ""):
                raise TunnelPlanError("end %r of the plan has no %s; is the plan from routevpn.mesh.mesh_plan?"
                                      % (end.get("link") or end, key))
        result["interfaces"].append(end["interface"])
        item = {"name": end["interface"], "mtu": mtu}
        if netns:
            item["netns"] = netns
        if end["tunnel_type"] == "xfrm":
            # The underlay only matters for the device's own traffic, which it has none of.
            item.update(if_id=end["if_id"], link="lo")
            item["addresses"] = [a for a in (end.get("address_v6"), end.get("address_v4")) if a]
            result["xfrm"].append(item)
        elif end["tunnel_type"] == "vti":
            local, remote = end["local_ike_address"], end["remote_ike_address"]
            # The endpoints' family picks the device (vti: IPv4, vti6: IPv6); either carries both inner
            # families over SAs without an inner family (tests/unit/plugins/modules/test_vti_tunnel.py).
            item.update(mode="vti6" if _family(local) == 6 else "vti", local=local, remote=remote,
                        key=end.get("mark") or end["if_id"])
            item["addresses"] = [a for a in (end.get("address_v6"), end.get("address_v4")) if a]
            result["vti"].append(item)
        else:
            raise TunnelPlanError("%s (link %s): unknown tunnel_type %r"
                                  % (end["interface"], end["link"], end["tunnel_type"]))
    return result
