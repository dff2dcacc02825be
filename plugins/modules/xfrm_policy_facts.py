#!/usr/bin/python
# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: xfrm_policy_facts
short_description: Read the kernel's XFRM policies and SAs, never their keys
version_added: 0.1.0
author: routevpn.mesh developers (@routevpn)
description:
  - Dumps the IPsec security policies (SPD) and security associations (SAD) of a network namespace over
    C(NETLINK_XFRM) and returns them as facts. The kernel's own structures are decoded; C(ip xfrm) text is not
    parsed.
  - Policies come with their direction, selector, priority, action, index, mark and mask, if_id and templates
    (endpoints, protocol, mode, reqid, SPI).
  - SAs come with their endpoints, protocol, SPI, reqid, mode, mark, if_id, the names and sizes of their algorithms,
    and their byte and packet counters. Key material is never decoded nor returned.
  - The facts are returned under C(ansible_facts), like M(ansible.builtin.service_facts) and
    M(ansible.builtin.package_facts) do, with collection-prefixed names, so they are also plain variables
    (C(routevpn_xfrm_policies), C(routevpn_xfrm_states)) for the rest of the play.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.facts
attributes:
  check_mode:
    support: full
    details: The module only reads; it behaves the same in check mode.
  diff_mode:
    support: none
  facts:
    support: full
  platform:
    platforms: linux
requirements:
  - pyroute2 0.7 or later (Debian 12's python3-pyroute2 0.7.2 and PyPI's 0.9 both work)
  - a kernel with C(CONFIG_XFRM_USER), and CAP_NET_ADMIN (become root)
options:
  netns:
    description:
      - Read the policies and SAs of this network namespace, a name as C(ip netns list) shows it
        (C(/run/netns/NAME)).
      - A namespace that does not exist is an error; it is never created.
      - Omit to read the namespace the module runs in.
    type: str
  if_id:
    description: Return only the policies and SAs with this XFRM interface ID (C(XFRMA_IF_ID)).
    type: int
  mark:
    description:
      - Return only the policies and SAs whose mark value is this (the value as set, not masked; VTI tunnels
        use marks where XFRM interfaces use if_id).
    type: int
  direction:
    description:
      - Return only the policies of these directions. SAs have no direction and are not filtered by it.
      - C(in-socket) and C(out-socket) are the per-socket policies an IKE daemon attaches to its own sockets so
        that IKE traffic bypasses IPsec (the kernel's directions 3 and 4; C(ip xfrm policy) prints them as
        C(socket in) and C(socket out)). They never match C(in) or C(out).
    type: list
    elements: str
    choices: [in, out, fwd, in-socket, out-socket]
  gather:
    description: What to read; the other list is returned empty.
    type: list
    elements: str
    choices: [policies, states]
    default: [policies, states]
notes:
  - Dumps are read in one pass; policies and SAs that change during the read may be missing or stale.
seealso:
  - module: routevpn.mesh.xfrm_interface
  - module: routevpn.mesh.vti_tunnel
  - name: ip-xfrm(8)
    description: The iproute2 command whose words (directions, modes, levels, protocols) the facts reuse.
    link: https://man7.org/linux/man-pages/man8/ip-xfrm.8.html
"""

EXAMPLES = r"""
- name: The policies and SAs bound to one XFRM interface
  routevpn.mesh.xfrm_policy_facts:
    if_id: 4296

- name: Both directions are there, and the SAs use AES-GCM
  ansible.builtin.assert:
    that:
      - routevpn_xfrm_policies | selectattr('direction', 'equalto', 'out') | list | length > 0
      - routevpn_xfrm_policies | selectattr('direction', 'equalto', 'in') | list | length > 0
      - routevpn_xfrm_states | map(attribute='algorithms.aead.name') | unique == ['rfc4106(gcm(aes))']

- name: Outbound policies marked 42 (a VTI tunnel's key), in namespace public
  routevpn.mesh.xfrm_policy_facts:
    netns: public
    mark: 42
    direction: [out]
    gather: [policies]
"""

RETURN = r"""
ansible_facts:
  description: The policies and SAs found, after the filters.
  returned: always
  type: dict
  contains:
    routevpn_xfrm_policies:
      description:
        - XFRM policies in the kernel's order.
        - C(direction) is C(in), C(out), C(fwd), C(in-socket) or C(out-socket).
        - C(selector) - C(family) (C(ipv4), C(ipv6), or null for a selector without addresses), C(src) and
          C(dst) prefixes, C(proto) (a name such as C(tcp), the number as a string when unnamed, null for any),
          C(sport) and C(dport) (null when not restricted; for ICMP they hold the type and the code), C(ifindex).
        - C(action) is C(allow) or C(block); C(flags) lists C(localok) and C(icmp); C(type) is C(main) or C(sub).
        - C(mark) and C(mark_mask) are null without a mark; C(if_id) is null without one.
        - C(templates) - C(src), C(dst), C(family), C(proto) (C(esp), C(ah), C(comp), ...), C(spi) (null for
          any), C(reqid), C(mode) (C(tunnel), C(transport), C(beet), ...), C(level) (C(required) or C(use)).
      returned: always
      type: list
      elements: dict
      sample:
        - direction: out
          selector: {family: ipv6, src: "::/0", dst: "::/0", proto: null, sport: null, dport: null, ifindex: null}
          priority: 375423
          index: 1
          action: allow
          flags: []
          type: main
          mark: null
          mark_mask: null
          if_id: 4296
          templates:
            - {src: "2001:db8:1::1", dst: "2001:db8:2::1", family: ipv6, proto: esp, spi: null, reqid: 1,
               mode: tunnel, level: required}
    routevpn_xfrm_states:
      description:
        - XFRM states (SAs) in the kernel's order, without key material.
        - C(spi) is hexadecimal as C(ip xfrm) prints it. C(selector) has the shape of a policy's.
        - C(algorithms) has a key per algorithm the SA uses - C(aead), C(enc), C(auth), C(comp) - each with its
          C(name) and, where it has them, C(key_bits), C(icv_bits) (AEAD) and C(trunc_bits) (authentication).
        - C(encap) is null without UDP/TCP encapsulation, else its C(type), C(sport) and C(dport).
        - C(output_mark) and C(output_mark_mask) are the mark set on packets after the transformation (null when
          unset).
        - C(counters) - C(bytes), C(packets), C(add_time) and C(use_time) (seconds since the epoch, 0 when
          unused) and the drops C(replay_window), C(replay) and C(integrity_failed).
      returned: always
      type: list
      elements: dict
      sample:
        - src: "2001:db8:1::1"
          dst: "2001:db8:2::1"
          family: ipv6
          proto: esp
          spi: "0xc1a2b3c4"
          reqid: 1
          mode: tunnel
          replay_window: 0
          flags: []
          selector: {family: ipv6, src: "::/0", dst: "::/0", proto: null, sport: null, dport: null, ifindex: null}
          algorithms: {aead: {name: "rfc4106(gcm(aes))", key_bits: 288, icv_bits: 128}}
          encap: null
          output_mark: null
          output_mark_mask: null
          mark: null
          mark_mask: null
          if_id: 4296
          counters: {bytes: 8400, packets: 100, add_time: 1795422316, use_time: 1795422320, replay_window: 0,
                     replay: 0, integrity_failed: 0}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._netns import NetnsError
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._pyroute2_dep import require_pyroute2
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._xfrm_dump import XfrmError, XfrmFacts


def main():
    module = AnsibleModule(
        argument_spec=dict(
            netns=dict(type="str"),
            if_id=dict(type="int"),
            mark=dict(type="int"),
            direction=dict(type="list", elements="str", choices=["in", "out", "fwd", "in-socket", "out-socket"]),
            gather=dict(type="list", elements="str", choices=["policies", "states"],
                        default=["policies", "states"]),
        ),
        supports_check_mode=True,
    )
    require_pyroute2(module)
    params = module.params
    try:
        found = XfrmFacts(netns=params["netns"], gather=params["gather"], if_id=params["if_id"],
                          mark=params["mark"], directions=params["direction"]).read()
    except (XfrmError, NetnsError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ansible_facts={
        "routevpn_xfrm_policies": found["policies"],
        "routevpn_xfrm_states": found["states"],
    })


if __name__ == "__main__":
    main()
