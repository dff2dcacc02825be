#!/usr/bin/python
# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: swanctl_config
short_description: A strongSwan gateway's swanctl files and charon's loaded connections, changed as one transaction
version_added: 0.3.0
author: routevpn.mesh developers (@routevpn)
description:
  - Writes the given files under the swanctl directory (connections, secrets, credentials), removes the files it
    owns that are no longer given, and loads the result into the running charon over its VICI socket with
    C(swanctl --load-all), which also unloads the connections the files no longer define; then closes the
    IKE_SAs of those connections. Established SAs of unchanged connections stay up.
  - The whole tree is parsed with strongSwan's own parser before the load (a file that does not parse would make
    C(swanctl --load-all) unload every connection). When the tree does not parse or charon refuses it, the
    previous files are put back and loaded again, and the module fails naming the refusal, so a gateway keeps the
    configuration that worked.
  - With the files already as given, the module still loads them when charon's connections differ from
    O(connections) (charon restarted and nothing loaded them, or an earlier load failed half-way).
  - Every file is written atomically with its mode; the content of O(secrets) never appears in the result or the
    diff.
requirements:
  - C(swanctl) on the gateway's PATH (Debian's C(strongswan-swanctl))
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: A charon that does not answer is not an error in check mode (a fresh gateway, whose charon the run
      would start first); RV(loaded_before) is then null.
  diff_mode:
    support: full
    details: The files of O(secrets) are shown as C((secret)).
  platform:
    support: full
    platforms: linux
options:
  swanctl_dir:
    description: The swanctl directory; file names are relative to it.
    type: path
    default: /etc/swanctl
  conf_file:
    description: What C(swanctl --load-all --file) reads; it must include the given files. Defaults to
      C(swanctl.conf) in O(swanctl_dir).
    type: path
  files:
    description: The files this module manages, each with its whole content.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Path relative to O(swanctl_dir), for example C(conf.d/routevpn-rv-21.conf).
        type: str
        required: true
      content:
        description: The file's content.
        type: str
        required: true
      mode:
        description: The file's mode, octal, as a string.
        type: str
        default: "0644"
  secrets:
    description:
      - Files whose content is a secret (pre-shared keys, private keys), never returned nor shown in a diff.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Path relative to O(swanctl_dir), for example C(conf.d/routevpn.secrets.rv-21.conf).
        type: str
        required: true
      content:
        description: The file's content.
        type: str
        required: true
      mode:
        description: The file's mode, octal, as a string.
        type: str
        default: "0600"
  purge:
    description:
      - Regular expressions (Python, searched) over names relative to O(swanctl_dir) of the files this module owns.
        A file that matches and is in neither O(files) nor O(secrets) is removed. Files of other origin must not
        match.
    type: list
    elements: str
    default: []
  connections:
    description:
      - The names of the connections the files define. When given, a charon whose loaded connections differ is
        loaded again although the files did not change.
    type: list
    elements: str
  uri:
    description: charon's VICI socket, as swanctl's C(--uri) takes it.
    type: str
    default: unix:///run/charon.vici
  load:
    description:
      - Load the files into the running charon. V(false) only writes them (a gateway whose charon starts later
        and loads them itself); the tree is still parsed.
    type: bool
    default: true
notes:
  - Written for the routevpn.mesh strongswan role, which renders the files from the mesh plan; usable on its own
    for any swanctl tree whose files are named by a pattern.
seealso:
  - module: routevpn.mesh.gateway_health
"""

EXAMPLES = r"""
- name: The links' connections and their pre-shared keys, loaded into charon
  routevpn.mesh.swanctl_config:
    files:
      - name: conf.d/routevpn-rv-21.conf
        content: "{{ lookup('ansible.builtin.template', 'connection.conf.j2') }}"
    secrets:
      - name: conf.d/routevpn.secrets.rv-21.conf
        content: "{{ lookup('ansible.builtin.template', 'secrets.conf.j2') }}"
    purge: ['^conf\.d/routevpn[-.].*\.conf$']
    connections: [rv-21]
"""

RETURN = r"""
written:
  description: The files written (created or changed), by name.
  returned: always
  type: list
  elements: str
  sample: [conf.d/routevpn-rv-21.conf]
replaced:
  description: Those of RV(written) that existed before with another content or mode (for example a changed
    pre-shared key, as opposed to a new link's first one).
  returned: always
  type: list
  elements: str
removed:
  description: The files removed (matched O(purge), not in O(files)).
  returned: always
  type: list
  elements: str
loaded:
  description: The connections charon has loaded after the run (before it, in check mode); null when O(load) is
    false.
  returned: always
  type: list
  elements: str
loaded_before:
  description: The connections charon had loaded before the run; null when O(load) is false, or in check mode
    when charon does not answer.
  returned: always
  type: list
  elements: str
unloaded:
  description: The connections the load removed from charon.
  returned: always
  type: list
  elements: str
terminated:
  description: Those of RV(unloaded) whose IKE_SAs were closed.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.routevpn.mesh.plugins.module_utils._files.module import (
    exit_with_transaction,
    files_options,
    managed_files,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._ike.swanctl import SwanctlConfig


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files_options(),
            swanctl_dir=dict(type="path", default="/etc/swanctl"),
            conf_file=dict(type="path"),
            purge=dict(type="list", elements="str", default=[]),
            connections=dict(type="list", elements="str"),
            uri=dict(type="str", default="unix:///run/charon.vici"),
            load=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    exit_with_transaction(module, lambda run: SwanctlConfig(
        params["swanctl_dir"], managed_files(params), run, conf_file=params["conf_file"], purge=params["purge"],
        uri=params["uri"], connections=params["connections"], load=params["load"], check_mode=module.check_mode))


if __name__ == "__main__":
    main()
