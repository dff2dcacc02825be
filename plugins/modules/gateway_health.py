#!/usr/bin/python
# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: gateway_health
short_description: Read a mesh gateway's IKE, XFRM, BGP and routing state and judge each of its link ends
version_added: 0.3.0
author: routevpn.mesh developers (@routevpn)
description:
  - Reads, on the gateway, in one run, what the health of its links depends on, and judges each link end of the
    plan against it. It never changes anything, and it always runs, in check mode too.
  - The IKE daemon's SAs (C(swanctl --list-sas) over VICI for strongSwan, C(ipsec whack --showstates) for
    libreswan); the kernel's XFRM policies and SAs over netlink (as M(routevpn.mesh.xfrm_policy_facts), keys
    never read); BIRD's protocols (C(birdc show protocols all)) and the routes of the private namespace; the
    private namespace itself (as M(routevpn.mesh.private_netns) in check mode, leaks and drift reported).
  - An end is C(ok) when exactly one IKE_SA and one CHILD_SA per child are up, bound to the planned if_id (XFRM)
    or mark (VTI) in the daemon and in the kernel, with no stale kernel SA, its BGP session established and the
    peer site's prefixes routed through its interface. Judging an end against its peer's (both reported, the
    peer's IKE daemon alive, the same SPIs) needs both gateways' results; the
    C(routevpn.mesh.mesh_health_cross_check) filter does it on the controller, as C(routevpn.mesh.verify) does.
  - "A daemon that does not answer is one line in RV(problems) a person can act on (for example
    C(charon is not running: /run/charon.vici refused the connection)), never the tool's raw output; its link
    ends are down, naming why."
requirements:
  - pyroute2 >= 0.7.2
  - C(swanctl) (strongSwan) or C(ipsec) (libreswan), C(birdc) and C(ip) on the gateway's PATH
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: linux
options:
  ends:
    description:
      - The gateway's link ends, as the plan gives them (C(routevpn_mesh_plan.hosts[inventory_hostname])), each
        with C(gateway), C(peer), C(peer_site), C(link), C(interface), C(tunnel_type), C(if_id) or C(mark),
        C(connection), the IKE addresses and the BGP session name.
      - All of them must be the same gateway's.
    type: list
    elements: dict
    required: true
  sites:
    description:
      - The plan's sites (C(routevpn_mesh_plan.sites)); the static prefixes of each peer site must be routed
        through the link's interface.
    type: dict
    default: {}
  ike_daemon:
    description: The gateway's IKE daemon.
    type: str
    choices: [strongswan, libreswan]
    default: strongswan
  netns:
    description: The private namespace (BIRD runs there, the routes are read there).
    type: str
    default: private
  private_interfaces:
    description:
      - The private namespace's LAN interfaces, as M(routevpn.mesh.private_netns) takes them; a difference is
        reported as drift.
    type: list
    elements: raw
    default: []
  forwarding:
    description: The forwarding the private namespace should have.
    type: bool
    default: true
  keep_addr_on_down:
    description: Whether the private namespace should keep IPv6 addresses on a device that goes down.
    type: bool
    default: true
  vici_socket:
    description: charon's VICI socket (strongSwan).
    type: path
    default: /run/charon.vici
  pluto_socket:
    description: pluto's control socket (libreswan).
    type: path
    default: /run/pluto/pluto.ctl
  birdc_socket:
    description: BIRD's control socket, inside O(netns).
    type: path
    default: /run/routevpn-bird/private.ctl
  require_prefixes:
    description:
      - An end without any route learned through its interface is down. V(false) accepts an end whose peer site
        announces nothing.
    type: bool
    default: true
notes:
  - The rows carry C(evidence) (the SPIs the daemon and the kernel hold for the end) for the cross-check with the
    peer's rows. SPIs are identifiers, not keys; no key material is read.
seealso:
  - module: routevpn.mesh.xfrm_policy_facts
  - module: routevpn.mesh.private_netns
"""

EXAMPLES = r"""
- name: Judge this gateway's link ends
  routevpn.mesh.gateway_health:
    ends: "{{ routevpn_mesh_plan.hosts[inventory_hostname] }}"
    sites: "{{ routevpn_mesh_plan.sites }}"
    ike_daemon: "{{ routevpn_mesh_plan.gateways[inventory_hostname].ike_daemon }}"
    private_interfaces: "{{ routevpn_private_interfaces }}"
  register: health

- name: Ends that are down, and why
  ansible.builtin.debug:
    msg: "{{ health.links | rejectattr('ok') | map(attribute='problems') | list }}"
"""

RETURN = r"""
links:
  description: One row per link end of O(ends), in their order.
  returned: success
  type: list
  elements: dict
  contains:
    gateway:
      description: This gateway.
      type: str
    peer:
      description: The gateway at the other end.
      type: str
    link:
      description: The link's name.
      type: str
      sample: 11-21
    interface:
      description: The link's tunnel interface in the private namespace.
      type: str
      sample: rv-21
    ike:
      description: The IKE_SA's state (C(ESTABLISHED) when up), C(none), C(2 SAs) or C(n/a) when not read.
      type: str
    child:
      description: The CHILD_SA's state (C(INSTALLED) when up) or what is wrong with it.
      type: str
    if_id:
      description: The planned if_id (XFRM) or mark (VTI).
      type: int
    if_id_ok:
      description: Whether the daemon's CHILD_SA, the kernel's SAs and policies carry it.
      type: bool
    bgp:
      description: The BGP session's state (C(Established) when up).
      type: str
    prefixes:
      description: The prefixes routed through the interface.
      type: list
      elements: str
    ok:
      description: Whether the end is healthy on its own.
      type: bool
    problems:
      description: What is wrong with the end, one line each.
      type: list
      elements: str
    evidence:
      description: What the cross-check with the peer's row compares (the daemon answered, its and the kernel's
        SPIs).
      type: dict
problems:
  description: What is wrong with the gateway rather than one link, one line each (a daemon that does not answer,
    a leak or drift of the private namespace, a tool that is missing).
  returned: success
  type: list
  elements: str
  sample: ["charon is not running: /run/charon.vici refused the connection"]
read_at:
  description: When the read began, by the gateway's clock, in UTC (ISO 8601, to the second); the C(read_at) of
    the gateway and of its link ends in C(routevpn.mesh.verify)'s health report.
  returned: success
  type: str
  sample: "2026-12-07T21:50:24Z"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.gateway_health import (
    GatewayHealth,
    GatewayHealthError,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health import HealthInputError
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._private_netns import (
    PrivateNetns,
    interface_items,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._pyroute2_dep import require_pyroute2
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._xfrm_dump import XfrmFacts


def main():
    module = AnsibleModule(
        argument_spec=dict(
            ends=dict(type="list", elements="dict", required=True),
            sites=dict(type="dict", default={}),
            ike_daemon=dict(type="str", choices=["strongswan", "libreswan"], default="strongswan"),
            netns=dict(type="str", default="private"),
            private_interfaces=dict(type="list", elements="raw", default=[]),
            forwarding=dict(type="bool", default=True),
            keep_addr_on_down=dict(type="bool", default=True),
            vici_socket=dict(type="path", default="/run/charon.vici"),
            pluto_socket=dict(type="path", default="/run/pluto/pluto.ctl"),
            birdc_socket=dict(type="path", default="/run/routevpn-bird/private.ctl"),
            require_prefixes=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    require_pyroute2(module)
    params = module.params

    def run(argv):
        return module.run_command(argv, handle_exceptions=False)

    def check_netns():
        namespace = PrivateNetns(params["netns"], interface_items(params["private_interfaces"]),
                                 forwarding=params["forwarding"], keep_addr_on_down=params["keep_addr_on_down"],
                                 forbid_leaks=False, check_mode=True)
        return namespace.run()

    try:
        health = GatewayHealth(
            params["ends"], run, XfrmFacts().read, check_netns, ike_daemon=params["ike_daemon"],
            sites=params["sites"], netns=params["netns"], vici_socket=params["vici_socket"],
            pluto_socket=params["pluto_socket"], birdc_socket=params["birdc_socket"],
            require_prefixes=params["require_prefixes"])
        result = health.read()
    except (GatewayHealthError, HealthInputError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
