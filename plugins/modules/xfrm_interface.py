#!/usr/bin/python
# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: xfrm_interface
short_description: Manage Linux XFRM interfaces for route-based IPsec
version_added: 0.1.0
author: routevpn.mesh developers (@routevpn)
description:
  - Creates, changes and deletes XFRM interfaces (C(ip link add NAME type xfrm if_id N)) over netlink, with pyroute2.
  - An interface is created in the module's own network namespace, where the IKE daemon and its SAs live, and then
    moved into O(netns); its underlay, and so its SAs, stay in the namespace it was created in.
  - An interface whose if_id or underlying device differs is deleted and created again (the kernel cannot change
    them in place); MTU, addresses and the up/down state are changed in place, so links are not bounced needlessly.
  - One call handles any number of interfaces with one netlink socket and one dump of links and addresses per
    namespace involved.
  - Two forms. The single form manages one interface (O(name), O(state=present) or O(state=absent)). The list form
    manages many in one call (O(config)), in the convention of Ansible's network resource modules; with
    O(state=overridden) it also deletes every XFRM interface whose name starts with O(prefix) and that the list
    does not hold, in O(netns), in each item's namespace and in the module's own namespace.
requirements:
  - pyroute2 >= 0.7.2
  - a kernel with XFRM interfaces (C(CONFIG_XFRM_INTERFACE), module C(xfrm_interface))
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - routevpn.mesh.tunnel_interface
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: linux
options:
  if_id:
    description:
      - The XFRM interface id; SAs and policies with this if_id are bound to the interface.
      - 1 to 4294967295, unique among the XFRM interfaces created from the module's namespace. Required unless
        O(state=absent) or O(state=deleted).
    type: int
  link:
    description:
      - The underlying device, in the module's namespace. When neither the item nor the top level sets it, C(lo).
      - An interface with another underlying device is recreated.
    type: str
  config:
    description:
      - The list form; each item takes the options of the single form. O(netns), O(mtu), O(enabled), O(if_id) and
        O(link) given at the top level apply to items that do not set them. Mutually exclusive with O(name) and
        O(addresses).
    type: list
    elements: dict
    suboptions:
      name:
        description: Interface name, at most 15 characters.
        type: str
        required: true
      if_id:
        description: The XFRM interface id.
        type: int
      link:
        description: The underlying device.
        type: str
      netns:
        description: Target network namespace.
        type: str
      mtu:
        description: MTU.
        type: int
      addresses:
        description: Addresses with prefix length; exactly these are kept (IPv6 link-local ones are left alone).
        type: list
        elements: str
      enabled:
        description: Whether the interface is up.
        type: bool
seealso:
  - module: routevpn.mesh.vti_tunnel
  - module: routevpn.mesh.xfrm_policy_facts
  - name: strongSwan, route-based VPNs
    description: XFRM interfaces, if_id, and how IKE daemons bind SAs to them.
    link: https://docs.strongswan.org/docs/latest/features/routeBasedVpn.html
"""

EXAMPLES = r"""
- name: One XFRM interface in the private namespace
  routevpn.mesh.xfrm_interface:
    name: rv-21
    if_id: 4296
    netns: private
    addresses:
      - 2001:db8:ff::190/127
      - 169.254.65.144/31

- name: All the tunnels of a gateway in one call; remove the others named rv-*
  routevpn.mesh.xfrm_interface:
    netns: private
    state: overridden
    config:
      - name: rv-21
        if_id: 4296
        addresses: [2001:db8:ff::190/127]
      - name: rv-22
        if_id: 4306
        addresses: [2001:db8:ff::1a4/127]

- name: Remove one
  routevpn.mesh.xfrm_interface:
    name: rv-21
    netns: private
    state: absent
"""

RETURN = r"""
changes:
  description: What was changed (or, in check mode, would be), one line per step, in the order applied.
  returned: always
  type: list
  elements: str
  sample: ["rv-21: create xfrm in netns private", "rv-21: move into netns private", "rv-21: mtu 1500",
           "rv-21: addresses +2001:db8:ff::190/127", "rv-21: up"]
interfaces:
  description:
    - The state of each listed interface after the run (in check mode, the state it would have). Empty for
      O(state=absent) and O(state=deleted).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Interface name.
      type: str
    kind:
      description: V(xfrm).
      type: str
    if_id:
      description: The interface's if_id.
      type: int
    link:
      description: The underlying device, named in the module's namespace.
      type: str
    netns:
      description: The namespace it is in (null for the module's own).
      type: str
    mtu:
      description: MTU.
      type: int
    addresses:
      description: Addresses with prefix length, IPv6 link-local ones left out.
      type: list
      elements: str
    enabled:
      description: Whether it is up.
      type: bool
  sample:
    - {name: rv-21, kind: xfrm, if_id: 4296, link: lo, netns: private, mtu: 1500,
       addresses: ["2001:db8:ff::190/127"], enabled: true}
interface:
  description: In the single form, the one element of RV(interfaces) (null for O(state=absent)).
  returned: when O(name) is used
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnel_kinds import XFRM
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnel_module import (
    MODULE_KWARGS,
    argument_spec,
    run,
)

KIND_OPTIONS = dict(
    if_id=dict(type="int"),
    link=dict(type="str"),
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(KIND_OPTIONS), **MODULE_KWARGS)
    run(module, XFRM, KIND_OPTIONS)


if __name__ == "__main__":
    main()
