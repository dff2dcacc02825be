# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters mesh_health and mesh_health_table: the per-link judgement of module_utils/_mesh/health.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health import (
    HealthInputError,
    health_table,
    link_health,
)


def _text(name, value):
    if value is None or isinstance(value, str):
        return value
    raise AnsibleFilterError("mesh_health: %s must be the text of the command's output (its stdout)" % name)


def mesh_health(ends, sites=None, swanctl=None, policies=None, birdc=None, routes=None, require_prefixes=True,
                pluto=None):
    if not isinstance(ends, (list, tuple)) or not all(isinstance(end, Mapping) for end in ends):
        raise AnsibleFilterError("mesh_health: the input must be a gateway's link ends, "
                                 "e.g. routevpn_mesh_plan.hosts[inventory_hostname]")
    if routes is not None and (not isinstance(routes, (list, tuple))
                               or not all(isinstance(table, (list, tuple)) for table in routes)):
        raise AnsibleFilterError("mesh_health: routes must be a list of `ip -j route` outputs (each a list)")
    try:
        return link_health([dict(end) for end in ends], sites=sites, swanctl=_text("swanctl", swanctl),
                           policies=list(policies or []), birdc=_text("birdc", birdc), routes=routes,
                           require_prefixes=bool(require_prefixes), pluto=_text("pluto", pluto))
    except (HealthInputError, KeyError, ValueError) as exc:
        raise AnsibleFilterError("mesh_health: %s" % exc)


def mesh_health_table(rows):
    if not isinstance(rows, (list, tuple)) or not all(isinstance(row, Mapping) for row in rows):
        raise AnsibleFilterError("mesh_health_table: the input must be the rows of mesh_health")
    try:
        return health_table(rows)
    except KeyError as exc:
        raise AnsibleFilterError("mesh_health_table: a row lacks %s; give it the rows of mesh_health" % exc)


class FilterModule(object):
    def filters(self):
        return {"mesh_health": mesh_health, "mesh_health_table": mesh_health_table}
