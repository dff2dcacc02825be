#!/usr/bin/python
# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: bird_config
short_description: BIRD's configuration file, checked by BIRD's parser, then loaded by the running BIRD
version_added: 0.3.0
author: routevpn.mesh developers (@routevpn)
description:
  - Writes BIRD's configuration file with the given content and attributes, and loads it into the running BIRD
    with C(birdc configure), which keeps every protocol whose settings did not change up.
  - The new text is parsed by BIRD's own parser (C(bird -p -c)) in a file beside the working one, before it
    replaces anything; a text BIRD's parser refuses leaves the working file as it was.
  - When the running BIRD refuses the new file (it reads it again as its own user, so an include it may not read
    is refused there only), the previous file is put back and loaded again, and the module fails with BIRD's
    words.
  - Where no BIRD answers on O(control_socket), the file is only written; the BIRD that starts next reads it.
requirements:
  - C(bird) and C(birdc) on the gateway's PATH (Debian's C(bird2))
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The new text is still parsed by C(bird -p), in a temporary file that is removed, so check mode
      reports a text BIRD would refuse.
  diff_mode:
    support: full
  platform:
    support: full
    platforms: linux
options:
  path:
    description: BIRD's configuration file. Its directory must exist.
    type: path
    required: true
  content:
    description: The whole configuration.
    type: str
    required: true
  owner:
    description: Owner of the file (name or uid); unchanged when not given.
    type: str
  group:
    description: Group of the file (name or gid); BIRD reads the file as its own user on C(birdc configure), so
      give its group read access.
    type: str
  mode:
    description: Octal mode of the file.
    type: str
    default: "0640"
  control_socket:
    description: BIRD's control socket, for C(birdc -s). A Unix socket is a path, so BIRD may run in another
      network namespace.
    type: path
    default: /run/bird/bird.ctl
  reload:
    description: Load a changed file into the running BIRD with C(birdc configure).
    type: bool
    default: true
notes:
  - BIRD has no way to tell which file it last loaded; after a C(birdc configure) that failed outside this module,
    run C(birdc configure) by hand or change the file.
seealso:
  - name: BIRD 2 user's guide, the configure command
    description: How C(birdc configure) applies a new file without restarting unchanged protocols.
    link: https://bird.network.cz/?get_doc&v=20&f=bird-4.html
"""

EXAMPLES = r"""
- name: BIRD's configuration, parsed by BIRD, then loaded by the BIRD of the private namespace
  routevpn.mesh.bird_config:
    path: /etc/bird/routevpn-private.conf
    content: "{{ lookup('ansible.builtin.template', 'bird.conf.j2') }}"
    owner: root
    group: bird
    mode: "0640"
    control_socket: /run/routevpn-bird/private.ctl
"""

RETURN = r"""
written:
  description: Whether the file's content changed (a change of owner, group or mode alone does not reload).
  returned: always
  type: bool
  sample: true
reloaded:
  description: Whether the running BIRD took the new file (C(birdc configure)).
  returned: always
  type: bool
  sample: true
running:
  description: Whether a BIRD answered on O(control_socket) when the new file was to be loaded; null when nothing
    was to be loaded (no change of content, O(reload=false), or check mode).
  returned: always
  type: bool
  sample: true
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.routevpn.mesh.plugins.module_utils._bgp.bird import BirdConfig
from ansible_collections.routevpn.mesh.plugins.module_utils._files.module import exit_with_transaction


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", required=True),
            content=dict(type="str", required=True),
            owner=dict(type="str"),
            group=dict(type="str"),
            mode=dict(type="str", default="0640"),
            control_socket=dict(type="path", default="/run/bird/bird.ctl"),
            reload=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    exit_with_transaction(module, lambda run: BirdConfig(
        params["path"], params["content"], run, owner=params["owner"], group=params["group"], mode=params["mode"],
        control_socket=params["control_socket"], reload=params["reload"], check_mode=module.check_mode))


if __name__ == "__main__":
    main()
