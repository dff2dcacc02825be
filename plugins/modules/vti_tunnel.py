#!/usr/bin/python
# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: vti_tunnel
short_description: Manage Linux VTI and VTI6 devices for route-based IPsec
version_added: 0.1.0
author: routevpn.mesh developers (@routevpn)
description:
  - Creates, changes and deletes VTI (IPv4) and VTI6 (IPv6) devices over netlink, with pyroute2. A VTI device
    carries what matches the IPsec SAs whose mark equals its key.
  - A device is created in the module's own network namespace, where the IKE daemon and its SAs live, and then
    moved into O(netns); its tunnel endpoints and SAs stay in the namespace it was created in.
  - Sets C(net.ipv4.conf.DEVICE.disable_policy=1) (and the IPv6 one where the kernel has it) in the namespace the
    device ends up in, after the move, because moving a device resets its sysctls; without it the kernel drops
    the decrypted packets.
  - A device whose mode, endpoints, keys or underlying device differ is deleted and created again (a key changed
    in place would silently move the device to other SAs); MTU, addresses and the up/down state are changed in
    place. The MTU is 1500 unless set, not the kernel's default for VTI (1332) and VTI6 (1364).
  - Two forms, as in M(routevpn.mesh.xfrm_interface). With O(state=overridden), every VTI/VTI6 device whose name
    starts with O(prefix) and that the list does not hold is deleted.
requirements:
  - pyroute2 >= 0.7.2
  - a kernel with VTI (C(ip_vti)) and VTI6 (C(ip6_vti))
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
  mode:
    description:
      - V(vti) for IPv4 endpoints, V(vti6) for IPv6 endpoints. The inner traffic is of the same family.
      - When neither the item nor the top level sets it, derived from O(local).
    type: str
    choices: [vti, vti6]
  local:
    description: Local tunnel endpoint (the IKE endpoint). Required to create a device.
    type: str
  remote:
    description: Remote tunnel endpoint. Required to create a device.
    type: str
  key:
    description:
      - Sets both O(ikey) and O(okey); the mark of the SAs that this device carries.
    type: int
  ikey:
    description: Input key (mark of inbound SAs).
    type: int
  okey:
    description: Output key (mark of outbound SAs).
    type: int
  link:
    description: The underlying device, in the module's namespace; none by default.
    type: str
  config:
    description:
      - The list form; each item takes the options of the single form. Top-level O(netns), O(mtu), O(enabled),
        O(link), O(mode), O(local), O(remote), O(key), O(ikey) and O(okey) apply to items that do not set them.
        Mutually exclusive with O(name) and O(addresses).
    type: list
    elements: dict
    suboptions:
      name:
        description: Device name, at most 15 characters.
        type: str
        required: true
      mode:
        description: V(vti) or V(vti6).
        type: str
        choices: [vti, vti6]
      local:
        description: Local endpoint.
        type: str
      remote:
        description: Remote endpoint.
        type: str
      key:
        description: Both keys.
        type: int
      ikey:
        description: Input key.
        type: int
      okey:
        description: Output key.
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
        description: Whether the device is up.
        type: bool
seealso:
  - module: routevpn.mesh.xfrm_interface
  - name: strongSwan, route-based VPNs
    description: VTI devices and marks.
    link: https://docs.strongswan.org/docs/latest/features/routeBasedVpn.html
"""

EXAMPLES = r"""
- name: A VTI device bound to the SAs marked 4296, in the private namespace
  routevpn.mesh.vti_tunnel:
    name: rv-21
    local: 192.0.2.1
    remote: 192.0.2.2
    key: 4296
    netns: private
    addresses: [169.254.65.144/31]

- name: IPv6 inner traffic needs a VTI6 device (IPv6 endpoints)
  routevpn.mesh.vti_tunnel:
    name: rv6-21
    mode: vti6
    local: 2001:db8:1::1
    remote: 2001:db8:2::1
    key: 4296
    netns: private
    addresses: [2001:db8:ff::190/127]

- name: Every VTI of the gateway; remove the other rv-* ones
  routevpn.mesh.vti_tunnel:
    netns: private
    local: 192.0.2.1
    state: overridden
    config:
      - {name: rv-21, remote: 192.0.2.2, key: 4296, addresses: [169.254.65.144/31]}
      - {name: rv-22, remote: 192.0.2.3, key: 4306, addresses: [169.254.65.164/31]}
"""

RETURN = r"""
changes:
  description: What was changed (or, in check mode, would be), one line per step.
  returned: always
  type: list
  elements: str
  sample: ["rv-21: create vti in netns private", "rv-21: move into netns private", "rv-21: mtu 1500",
           "rv-21: addresses +169.254.65.144/31", "rv-21: net.ipv4.conf.rv-21.disable_policy=1", "rv-21: up"]
interfaces:
  description:
    - The state of each listed device after the run (in check mode, the state it would have). Empty for
      O(state=absent) and O(state=deleted).
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Device name.
      type: str
    kind:
      description: C(vti) or C(vti6).
      type: str
    local:
      description: Local endpoint.
      type: str
    remote:
      description: Remote endpoint.
      type: str
    ikey:
      description: Input key.
      type: int
    okey:
      description: Output key.
      type: int
    link:
      description: The underlying device, named in the module's namespace (null for none).
      type: str
    fwmark:
      description: The device's fwmark (read only; this module never sets it).
      type: int
    netns:
      description: The namespace it is in (null for the module's own).
      type: str
    mtu:
      description: MTU.
      type: int
    addresses:
      description: Addresses with prefix length, link-local ones left out.
      type: list
      elements: str
    enabled:
      description: Whether it is up.
      type: bool
    sysctls:
      description: The device's C(disable_policy) sysctls, where the kernel has them.
      type: dict
  sample:
    - {name: rv-21, kind: vti, local: 192.0.2.1, remote: 192.0.2.2, ikey: 4296, okey: 4296, link: null, fwmark: 0,
       netns: private, mtu: 1500, addresses: ["169.254.65.144/31"], enabled: true,
       sysctls: {net.ipv4.conf.rv-21.disable_policy: "1"}}
interface:
  description: In the single form, the one element of RV(interfaces) (null for O(state=absent)).
  returned: when O(name) is used
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnel_kinds import VTI
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnel_module import (
    MODULE_KWARGS,
    argument_spec,
    run,
)

KIND_OPTIONS = dict(
    mode=dict(type="str", choices=["vti", "vti6"]),
    local=dict(type="str"),
    remote=dict(type="str"),
    # Keys are marks that select SAs, not secrets.
    key=dict(type="int", no_log=False),
    ikey=dict(type="int", no_log=False),
    okey=dict(type="int", no_log=False),
    link=dict(type="str"),
)


def main():
    module = AnsibleModule(argument_spec=argument_spec(KIND_OPTIONS), **MODULE_KWARGS)
    run(module, VTI, KIND_OPTIONS)


if __name__ == "__main__":
    main()
