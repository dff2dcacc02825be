# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters conf_quote, conf_name, conf_token, conf_line, conf_path_inside (module_utils/_mesh/conf_text.py).

The roles' templates print every inventory-derived value through one of
them: it comes out in a form the file's own lexer reads back as one value,
or the task fails naming the value and the reason.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible.errors import AnsibleFilterError

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh import conf_text


def _guarded(filter_name, function):
    def apply(value, what, *args, **kwargs):
        try:
            return function(value, str(what), *args, **kwargs)
        except conf_text.ConfTextError as exc:
            raise AnsibleFilterError(str(exc))

    apply.__name__ = filter_name
    return apply


conf_quote = _guarded("conf_quote", conf_text.quoted)
conf_name = _guarded("conf_name", conf_text.name)
conf_token = _guarded("conf_token", conf_text.token)
conf_line = _guarded("conf_line", conf_text.line)


def conf_path_inside(path, directory, what, direct=False):
    if not isinstance(direct, bool):
        raise AnsibleFilterError("routevpn.mesh.conf_path_inside: direct must be true or false, got %r" % (direct,))
    try:
        return conf_text.path_inside(path, directory, str(what), direct=direct)
    except conf_text.ConfTextError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {
            "conf_quote": conf_quote,
            "conf_name": conf_name,
            "conf_token": conf_token,
            "conf_line": conf_line,
            "conf_path_inside": conf_path_inside,
        }
