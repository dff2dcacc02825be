#!/usr/bin/python
# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: private_netns
short_description: Manage the private network namespace of a route-based VPN gateway
version_added: 0.1.0
author: routevpn.mesh developers (@routevpn)
description:
  - Creates a named network namespace (C(/run/netns/NAME), as C(ip netns add) does) over netlink, with pyroute2.
  - Moves the listed LAN interfaces into it, sets their addresses, and brings them and C(lo) up.
  - Sets namespace-wide sysctls inside it, before any device moves in, so that moved devices inherit them -
    IPv4 and IPv6 forwarding, and C(net.ipv6.conf.all.keep_addr_on_down) so that a device going down keeps its
    IPv6 addresses (the kernel flushes them otherwise, and a BGP session over a tunnel that bounced would stay
    down).
  - Reports, and by default fails on, any device that joins the private namespace to the module's own (public)
    one directly, such as a veth pair or a macvlan, because it would route private traffic around the tunnels.
    XFRM and VTI devices are the one permitted crossing, because only ESP leaves through their underlay.
  - A device is moved from the module's own namespace; moving it flushes its addresses and takes it down, so
    list its addresses here rather than configuring it on the public side.
requirements:
  - pyroute2 >= 0.7.2
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: linux
options:
  name:
    description: Name of the namespace.
    type: str
    default: private
  interfaces:
    description:
      - Devices to move into the namespace, from the module's own namespace (or already there).
      - Each item is an interface name (its addresses are left alone), or a dict with C(name) and C(addresses), a
        list of addresses with prefix length of which exactly these are kept (IPv6 link-local ones are left alone).
    type: list
    elements: raw
    default: []
  forwarding:
    description:
      - Value of C(net.ipv4.ip_forward) and C(net.ipv6.conf.all.forwarding) inside the namespace.
    type: bool
    default: true
  keep_addr_on_down:
    description:
      - Set C(net.ipv6.conf.all.keep_addr_on_down=1) inside the namespace. V(false) leaves it alone.
    type: bool
    default: true
  forbid_leaks:
    description:
      - Fail when a device joins the namespace to the module's own namespace directly. With V(false) the devices
        are only reported in RV(leaks).
    type: bool
    default: true
  state:
    description:
      - V(present) creates and configures the namespace; V(absent) deletes it (physical devices inside return to
        the initial namespace, virtual ones are destroyed).
    type: str
    choices: [present, absent]
    default: present
seealso:
  - module: routevpn.mesh.xfrm_interface
  - module: routevpn.mesh.vti_tunnel
  - name: ip-netns(8)
    description: The namespaces this module creates are those C(ip netns) lists and enters.
    link: https://man7.org/linux/man-pages/man8/ip-netns.8.html
"""

EXAMPLES = r"""
- name: The private namespace with two LAN interfaces
  routevpn.mesh.private_netns:
    name: private
    interfaces:
      - eth1
      - name: eth2
        addresses: [10.1.0.1/24, 2001:db8:a1::1/64]

- name: Check for leaks without changing anything (as playbooks/verify.yml does)
  routevpn.mesh.private_netns:
    name: private
    forbid_leaks: false
  check_mode: true
  register: private_netns

- name: Remove the namespace
  routevpn.mesh.private_netns:
    name: private
    state: absent
"""

RETURN = r"""
changes:
  description: What was changed (or, in check mode, would be), one line per step.
  returned: always
  type: list
  elements: str
  sample: ["create netns private", "netns private: net.ipv4.ip_forward=1", "eth1: move into netns private"]
namespace:
  description: The namespace after the run (in check mode, as it would be).
  returned: always
  type: dict
  contains:
    name:
      description: Namespace name.
      type: str
    exists:
      description: Whether it exists.
      type: bool
    sysctls:
      description: The managed sysctls inside the namespace, by name.
      type: dict
    lo_enabled:
      description: Whether C(lo) is up inside (null when the namespace does not exist).
      type: bool
    interfaces:
      description:
        - Each listed device by name - C(netns) (null for the module's own namespace), C(enabled), C(addresses)
          (link-local ones left out); null when the device exists nowhere.
      type: dict
  sample:
    name: private
    exists: true
    sysctls: {net.ipv4.ip_forward: "1", net.ipv6.conf.all.forwarding: "1", net.ipv6.conf.all.keep_addr_on_down: "1"}
    lo_enabled: true
    interfaces: {eth1: {netns: private, enabled: true, addresses: ["10.1.0.1/24"]}}
leaks:
  description: Devices that join the two namespaces directly (empty on a healthy gateway).
  returned: always
  type: list
  elements: dict
  contains:
    interface:
      description: Device name, on its side.
      type: str
    kind:
      description: Its kind (veth, macvlan, ...).
      type: str
    netns:
      description: The side it is on (null for the module's own namespace).
      type: str
    peer_netns:
      description: The side its peer or lower device is on.
      type: str
  sample: [{interface: leak0, kind: veth, netns: null, peer_netns: private}]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._private_netns import (
    PrivateNetns,
    PrivateNetnsError,
    interface_items,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._pyroute2_dep import require_pyroute2


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", default="private"),
            interfaces=dict(type="list", elements="raw", default=[]),
            forwarding=dict(type="bool", default=True),
            keep_addr_on_down=dict(type="bool", default=True),
            forbid_leaks=dict(type="bool", default=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
        ),
        supports_check_mode=True,
    )
    require_pyroute2(module)
    params = module.params
    try:
        interfaces = interface_items(params["interfaces"])
    except PrivateNetnsError as exc:
        module.fail_json(msg=str(exc))
    namespace = PrivateNetns(
        params["name"],
        interfaces,
        forwarding=params["forwarding"],
        keep_addr_on_down=params["keep_addr_on_down"],
        state=params["state"],
        forbid_leaks=params["forbid_leaks"],
        check_mode=module.check_mode,
    )
    try:
        result = namespace.run()
    except PrivateNetnsError as exc:
        module.fail_json(msg=str(exc), changes=namespace.changes)
    if not module._diff:  # pylint: disable=protected-access
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
