# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):
    # Options shared by the tunnel interface modules (xfrm_interface, vti_tunnel).
    DOCUMENTATION = r"""
options:
  name:
    description:
      - Interface name, at most 15 characters. Selects the single form; mutually exclusive with O(config).
    type: str
  netns:
    description:
      - The network namespace the interface ends up in. C(/run/netns/NAME) must exist; a missing one is an error,
        never created here (the M(routevpn.mesh.private_netns) module creates it).
      - The interface is created in the module's own namespace, where the IKE daemon runs, and then moved there.
        An interface of that name left in the module's own namespace by an interrupted run is moved, not duplicated.
      - Omit, or name the namespace the module runs in, to keep the interface in the module's own namespace.
      - In the list form, the default for items that do not set it, and a namespace O(state=overridden) cleans.
    type: str
  mtu:
    description:
      - MTU. When neither the item nor the top level sets it, 1500 (path MTU discovery does the rest).
    type: int
  addresses:
    description:
      - Addresses with their prefix length (C(2001:db8:ff::190/127), C(169.254.65.144/31)). Exactly these are
        kept; others are removed, except IPv6 link-local ones. Omit to leave the addresses alone.
      - Single form only; in the list form each item has its own.
    type: list
    elements: str
  enabled:
    description:
      - Whether the interface is up. When neither the item nor the top level sets it, V(true).
      - An interface is never taken down to apply another change (that would flush its IPv6 addresses).
    type: bool
  prefix:
    description:
      - With O(state=overridden), only interfaces of the module's kind whose names start with this prefix are
        candidates for removal; anything else is never touched. Must not be empty with O(state=overridden).
    type: str
    default: rv-
  state:
    description:
      - Single form (O(name)) - V(present) (default) or V(absent).
      - List form (O(config)) - V(merged) (default) creates or updates the listed interfaces; V(overridden) does the
        same and deletes every interface of the module's kind named O(prefix)... that the list does not hold, in
        O(netns), in the items' namespaces and in the module's own namespace; V(deleted) deletes the listed ones
        (from their namespace and from the module's own).
    type: str
    choices: [present, absent, merged, overridden, deleted]
"""
