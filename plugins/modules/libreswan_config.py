#!/usr/bin/python
# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: libreswan_config
short_description: A libreswan gateway's conn and secrets files and pluto's loaded conns, changed as one transaction
version_added: 0.3.0
author: routevpn.mesh developers (@routevpn)
description:
  - Writes the given conn and secrets files into the connection directory, removes the files it owns (O(purge))
    that are no longer given, parses the whole configuration with libreswan's own parser
    (C(ipsec addconn --checkconfig)), then changes the running pluto as little as it can. The conns of a changed
    conn file are deleted and added again (libreswan has no in-place update); conns no file defines any more and
    whose names match O(conn_pattern) are deleted; the secrets are reread; the added conns that this end
    initiates (O(initiate)) are started. pluto is never restarted, so the SAs of every other link stay up.
  - Conns the files define but pluto lacks (pluto restarted, a run stopped half-way) are added even when no file
    changed.
  - When the configuration does not parse, nothing is loaded and the previous files are put back. When pluto
    refuses a conn, the previous files are put back and their conns loaded and started again, and the module fails
    naming the conn.
  - After deleting XFRM conns, their outbound policies are removed by if_id, since pluto 5.2 leaves them in the
    kernel when another conn has the same selectors.
  - Every file is written atomically with its mode; the content of O(secrets) never appears in the result or the
    diff.
requirements:
  - libreswan's C(ipsec) command on the gateway (Debian's C(libreswan), 4.10 or 5.2)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: A pluto that does not answer is not an error in check mode (a fresh gateway, whose pluto the run
      would start first); RV(loaded_before) is then null.
  diff_mode:
    support: full
    details: The files of O(secrets) are shown as C((secret)).
  platform:
    support: full
    platforms: linux
options:
  conf_dir:
    description: The directory of the files, which C(ipsec.conf) includes (C(include DIR/*.conf)) and whose
      secrets C(ipsec.secrets) includes.
    type: path
    default: /etc/ipsec.d
  conf_file:
    description: C(ipsec.conf), which the parser and C(ipsec addconn) read.
    type: path
    default: /etc/ipsec.conf
  ipsec:
    description: libreswan's C(ipsec) command.
    type: path
    default: /usr/sbin/ipsec
  ctl_socket:
    description: pluto's control socket.
    type: path
    default: /run/pluto/pluto.ctl
  files:
    description: The conn files this module manages, each with its whole content; the conns each defines are the
      conns of the gateway.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: File name in O(conf_dir), for example C(routevpn-rv-21.conf).
        type: str
        required: true
      content:
        description: The whole file.
        type: str
        required: true
      mode:
        description: Octal mode.
        type: str
        default: "0644"
  secrets:
    description: Files whose content is secret (pre-shared keys), as O(files); never shown.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: File name in O(conf_dir), for example C(routevpn-rv-21.secrets).
        type: str
        required: true
      content:
        description: The whole file.
        type: str
        required: true
      mode:
        description: Octal mode.
        type: str
        default: "0600"
  purge:
    description: Regular expressions (searched in file names of O(conf_dir)) of the files this module owns; one
      that matches and is neither in O(files) nor in O(secrets) is removed.
    type: list
    elements: str
    default: []
  conn_pattern:
    description: Regular expression (searched) of the names of the conns this module owns; a loaded conn that no
      file defines is deleted from pluto only when its name matches. Without it no such conn is deleted.
    type: str
  initiate:
    description: The conns this end starts (C(whack --initiate --asynchronous)) when it adds them.
    type: list
    elements: str
    default: []
  replace_all:
    description: Delete and add every conn of O(files) again, for example because the certificates in pluto's NSS
      database changed (pluto reads a conn's certificate when the conn is added).
    type: bool
    default: false
  restart:
    description: Conns to delete, add and (those in O(initiate)) start again though nothing of theirs changed, for
      example to re-authenticate a link with a new pre-shared key (pluto has no re-authentication on request; an
      IKE SA keeps the key it was authenticated with). Each must be a conn of O(files).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: The conns and pre-shared keys of every link, loaded into the running pluto
  routevpn.mesh.libreswan_config:
    conf_dir: /etc/ipsec.d
    files:
      - name: routevpn-rv-11.conf
        content: "{{ lookup('ansible.builtin.template', 'connection.conf.j2') }}"
    secrets:
      - name: routevpn-rv-11.secrets
        content: "{{ lookup('ansible.builtin.template', 'secrets.j2') }}"
    purge: ['^routevpn-.+[.](conf|secrets)$']
    conn_pattern: '^rv-[0-9]+-v[46]$'
    initiate: [rv-11-v4, rv-11-v6]
"""

RETURN = r"""
written:
  description: Files written (new or changed), relative to O(conf_dir).
  returned: always
  type: list
  elements: str
  sample: [routevpn-rv-11.conf]
replaced:
  description: The files of RV(written) that replaced an earlier version (a changed key, not a new link's first).
  returned: always
  type: list
  elements: str
  sample: [routevpn-rv-11.secrets]
removed:
  description: Files removed.
  returned: always
  type: list
  elements: str
  sample: [routevpn-rv-13.conf]
loaded_before:
  description: The conns pluto held before the run; null when it did not answer (check mode only).
  returned: always
  type: list
  elements: str
  sample: [rv-11-v4, rv-11-v6]
deleted:
  description: Conns deleted from pluto (removed, or replaced).
  returned: always
  type: list
  elements: str
  sample: [rv-13-v4, rv-13-v6]
added:
  description: Conns added to pluto (new, changed, or missing there).
  returned: always
  type: list
  elements: str
  sample: [rv-11-v4, rv-11-v6]
initiated:
  description: Added conns that this end started.
  returned: always
  type: list
  elements: str
  sample: [rv-11-v4]
policies_removed:
  description: Outbound XFRM policies that pluto left behind for deleted XFRM conns, removed.
  returned: always
  type: list
  elements: str
  sample: ["src 0.0.0.0/0 dst 0.0.0.0/0 dir out if_id 4296"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.routevpn.mesh.plugins.module_utils._files.module import (
    exit_with_transaction,
    files_options,
    managed_files,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._ike.libreswan import LibreswanConfig


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files_options(),
            conf_dir=dict(type="path", default="/etc/ipsec.d"),
            conf_file=dict(type="path", default="/etc/ipsec.conf"),
            ipsec=dict(type="path", default="/usr/sbin/ipsec"),
            ctl_socket=dict(type="path", default="/run/pluto/pluto.ctl"),
            purge=dict(type="list", elements="str", default=[]),
            conn_pattern=dict(type="str"),
            initiate=dict(type="list", elements="str", default=[]),
            replace_all=dict(type="bool", default=False),
            restart=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    exit_with_transaction(module, lambda run: LibreswanConfig(
        params["conf_dir"], managed_files(params), run, conf_file=params["conf_file"], ipsec=params["ipsec"],
        ctl_socket=params["ctl_socket"], purge=params["purge"], conn_pattern=params["conn_pattern"],
        initiate=params["initiate"], replace_all=params["replace_all"], restart=params["restart"],
        check_mode=module.check_mode))


if __name__ == "__main__":
    main()
