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
      - The network namespace the interface ends up in (C(/run/netns/NAME) must exist; it is never created).
      - Omit to keep the interface in the module's own namespace.
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
    type: list
    elements: str
  enabled:
    description:
      - Whether the interface is up. When neither the item nor the top level sets it, V(true).
    type: bool
  prefix:
    description:
      - With O(state=overridden), only interfaces of the module's kind whose names start with this prefix are
        candidates for removal; anything else is never touched.
    type: str
    default: rv-
  state:
    description:
      - Single form (O(name)) - V(present) (default) or V(absent).
      - List form (O(config)) - V(merged) (default) creates or updates the listed interfaces; V(overridden) does the
        same and removes unlisted ones (see O(prefix)); V(deleted) removes the listed ones.
    type: str
    choices: [present, absent, merged, overridden, deleted]
"""
