#!/usr/bin/python
# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: xfrm_policy_facts
short_description: Read the kernel's XFRM policies and SAs (never their keys)
version_added: 0.1.0
author: routevpn.mesh developers
description:
  - Dumps the IPsec security policies (SPD) and security associations (SAD) of a network namespace over
    NETLINK_XFRM and returns them as facts, decoded from the kernel's own structures (no C(ip xfrm) text parsing).
  - Policies - direction, selector, priority, action, index, mark and mask, if_id, templates (endpoints, protocol,
    mode, reqid, SPI).
  - SAs - endpoints, protocol, SPI, reqid, mode, mark, if_id, the names and sizes of their algorithms, and the
    byte and packet counters. Key material is never decoded nor returned.
  - Per-socket policies that IKE daemons install for their own sockets show with directions C(in-socket) and
    C(out-socket).
requirements:
  - a kernel with C(CONFIG_XFRM_USER)
attributes:
  check_mode:
    support: full
    details: The module only reads.
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: linux
options:
  netns:
    description:
      - Read in this network namespace (C(/run/netns/NAME)); it is never created. Omit for the module's own.
    type: str
  if_id:
    description: Return only policies and SAs with this if_id.
    type: int
  mark:
    description: Return only policies and SAs whose mark value is this.
    type: int
  direction:
    description: Return only policies of these directions (SAs have no direction and are not filtered by it).
    type: list
    elements: str
    choices: [in, out, fwd, in-socket, out-socket, fwd-socket]
  gather:
    description: What to read.
    type: list
    elements: str
    choices: [policies, states]
    default: [policies, states]
seealso:
  - module: routevpn.mesh.xfrm_interface
  - module: routevpn.mesh.vti_tunnel
"""

EXAMPLES = r"""
- name: The policies and SAs bound to one tunnel interface
  routevpn.mesh.xfrm_policy_facts:
    if_id: 4296

- name: Check that both directions are there
  ansible.builtin.assert:
    that:
      - routevpn_xfrm_policies | selectattr('direction', 'equalto', 'out') | list | length > 0
      - routevpn_xfrm_policies | selectattr('direction', 'equalto', 'in') | list | length > 0
      - routevpn_xfrm_states | length >= 2

- name: Outbound policies marked 42, in a namespace
  routevpn.mesh.xfrm_policy_facts:
    netns: public
    mark: 42
    direction: [out]
    gather: [policies]
"""

RETURN = r"""
ansible_facts:
  description: The policies and SAs found.
  returned: always
  type: dict
  contains:
    routevpn_xfrm_policies:
      description: XFRM policies.
      type: list
      elements: dict
      sample:
        - selector: {family: ipv4, src: 0.0.0.0/0, dst: 0.0.0.0/0, proto: any, sport: null, dport: null, ifindex: null}
          direction: out
          priority: 375423
          index: 1
          action: allow
          flags: 0
          mark: null
          if_id: 4296
          templates:
            - {src: "2001:db8:1::1", dst: "2001:db8:2::1", family: ipv6, proto: esp, spi: null, reqid: 1,
               mode: tunnel, optional: false}
          add_time: 1795422316
    routevpn_xfrm_states:
      description: XFRM states (SAs), without keys.
      type: list
      elements: dict
      sample:
        - selector: {family: ipv4, src: 0.0.0.0/0, dst: 0.0.0.0/0, proto: any, sport: null, dport: null, ifindex: null}
          src: "2001:db8:1::1"
          dst: "2001:db8:2::1"
          family: ipv6
          proto: esp
          spi: "0xc1a2b3c4"
          reqid: 1
          mode: tunnel
          replay_window: 0
          flags: 0
          mark: null
          if_id: 4296
          algorithms: {aead: {name: "rfc4106(gcm(aes))", key_bits: 288, icv_bits: 128}}
          encap: null
          counters: {bytes: 8400, packets: 100, add_time: 1795422316, use_time: 1795422320, replay_errors: 0,
                     integrity_failed: 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._netns import NetnsError
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._xfrm_dump import (
    XfrmError,
    read_xfrm_in,
    select,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            netns=dict(type="str"),
            if_id=dict(type="int"),
            mark=dict(type="int"),
            direction=dict(type="list", elements="str",
                           choices=["in", "out", "fwd", "in-socket", "out-socket", "fwd-socket"]),
            gather=dict(type="list", elements="str", choices=["policies", "states"], default=["policies", "states"]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        found = read_xfrm_in(params["netns"], "policies" in params["gather"], "states" in params["gather"])
    except (XfrmError, NetnsError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ansible_facts={
        "routevpn_xfrm_policies": select(found["policies"], params["if_id"], params["mark"], params["direction"]),
        "routevpn_xfrm_states": select(found["states"], params["if_id"], params["mark"]),
    })


if __name__ == "__main__":
    main()
