#!/usr/bin/python
# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: tunnels_boot
short_description: The code and the state with which a gateway's boot unit brings its tunnel interfaces back
version_added: 0.3.0
author: routevpn.mesh developers (@routevpn)
description:
  - Installs what C(routevpn-tunnels@NETNS.service) runs at boot to make the tunnel interfaces of a namespace again,
    with the code of M(routevpn.mesh.xfrm_interface) and M(routevpn.mesh.vti_tunnel) themselves (their list form,
    with O(routevpn.mesh.xfrm_interface#module:state=merged)), and to load the MSS rules.
  - The action plugin builds, on the controller, a zip archive of the collection's boot code (its module
    C(ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnels_boot) and what it imports of the
    collection, nothing of Ansible); the module writes it as C(routevpn-mesh-boot.zip) in O(libexec_dir). The
    archive is the same bytes for the same collection, so it is written only when the collection changed.
  - Writes the state of the namespace, C(NETNS.json) in O(config_dir) (pretty JSON, sorted keys), which the boot
    unit reads with C(python3 -m ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnels_boot up
    NETNS CONFIG_DIR/NETNS.json) and the archive on C(PYTHONPATH).
  - Each file is written atomically, with mode C(0644), only when its content or mode differs. The items are checked
    as the boot unit will read them, so an item it could not make fails the task instead of the boot.
  - Removes what earlier versions of the collection installed instead, the shell script C(routevpn-tunnels) in
    O(libexec_dir) and its state file C(NETNS.conf) in O(config_dir) (only a file that names that script).
  - Needs no pyroute2 on the gateway (it only writes files); the boot unit's Python needs it.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  action:
    support: full
    details: The action plugin builds the archive from the controller's copy of the collection.
  async:
    support: none
  bypass_host_loop:
    support: none
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The state file is shown as text; the archive by its SHA-256, before and after.
  platform:
    support: full
    platforms: linux
options:
  netns:
    description:
      - The namespace whose tunnels the state holds; the state file is C(NETNS.json).
    type: str
    required: true
  xfrm:
    description:
      - The XFRM interfaces, as the items of O(routevpn.mesh.xfrm_interface#module:config) (the role computes them
        with the P(routevpn.mesh.mesh_tunnels#filter) filter). An item without C(netns) is in O(netns).
    type: list
    elements: dict
    default: []
  vti:
    description:
      - The VTI devices, as the items of O(routevpn.mesh.vti_tunnel#module:config).
    type: list
    elements: dict
    default: []
  mss_file:
    description:
      - An nftables file the boot unit loads into O(netns) with C(nft -f) after the interfaces, when it exists.
        Omit for none.
    type: path
  config_dir:
    description: Where the state file is written.
    type: path
    default: /etc/routevpn/tunnels
  libexec_dir:
    description: Where the archive is written.
    type: path
    default: /usr/local/libexec/routevpn
  archive:
    description:
      - The archive, base64-encoded. Set by the action plugin; a task must not set it.
    type: str
notes:
  - Written for the routevpn.mesh tunnels role, which installs the unit that reads these files.
seealso:
  - module: routevpn.mesh.xfrm_interface
  - module: routevpn.mesh.vti_tunnel
"""

EXAMPLES = r"""
- name: What routevpn-tunnels@private.service brings back at boot
  routevpn.mesh.tunnels_boot:
    netns: private
    xfrm:
      - name: rv-21
        netns: private
        if_id: 4296
        link: lo
        mtu: 1500
        addresses: [2001:db8:ff::190/127, 169.254.65.144/31]
    mss_file: /etc/routevpn/tunnels/private-mss.nft

- name: The same from the plan, as the tunnels role does it
  routevpn.mesh.tunnels_boot:
    netns: "{{ routevpn_private_netns }}"
    xfrm: "{{ __routevpn_tunnels.xfrm }}"
    vti: "{{ __routevpn_tunnels.vti }}"
"""

RETURN = r"""
archive:
  description: The path of the archive.
  returned: always
  type: str
  sample: /usr/local/libexec/routevpn/routevpn-mesh-boot.zip
state_file:
  description: The path of the state file.
  returned: always
  type: str
  sample: /etc/routevpn/tunnels/private.json
written:
  description: The files written (created or changed), by path.
  returned: always
  type: list
  elements: str
  sample: [/etc/routevpn/tunnels/private.json]
removed:
  description: The files of earlier versions removed, by path.
  returned: always
  type: list
  elements: str
  sample: [/usr/local/libexec/routevpn/routevpn-tunnels, /etc/routevpn/tunnels/private.conf]
"""

import base64
import binascii

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.routevpn.mesh.plugins.module_utils._files.module import exit_with_transaction
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnels_boot_files import TunnelsBoot


def main():
    module = AnsibleModule(
        argument_spec=dict(
            netns=dict(type="str", required=True),
            xfrm=dict(type="list", elements="dict", default=[]),
            vti=dict(type="list", elements="dict", default=[]),
            mss_file=dict(type="path"),
            config_dir=dict(type="path", default="/etc/routevpn/tunnels"),
            libexec_dir=dict(type="path", default="/usr/local/libexec/routevpn"),
            archive=dict(type="str"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        archive = base64.b64decode(params["archive"] or "", validate=True)
    except (binascii.Error, ValueError) as exc:
        module.fail_json(msg="archive is not base64 (%s); the tunnels_boot action plugin sets it" % exc)
    exit_with_transaction(module, lambda run: TunnelsBoot(
        params["netns"], params["xfrm"], params["vti"], params["mss_file"], archive, params["config_dir"],
        params["libexec_dir"], check_mode=module.check_mode))


if __name__ == "__main__":
    main()
