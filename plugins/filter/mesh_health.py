# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters mesh_health, mesh_health_cross_check, mesh_health_problems, mesh_health_report, mesh_health_svg and
mesh_health_table.

Thin fronts of module_utils/_mesh/health.py, health_report.py and health_svg.py: each checks
the shape of its input and hands it over; the judgement itself is Python,
tested natively.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health import (
    HealthInputError,
    cross_check,
    gateway_problems,
    health_table,
    link_health,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health_report import (
    HealthReportError,
    health_report,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health_svg import (
    HealthSvgError,
    health_svg,
)


def _output(name, value):
    """A command's text (stdout) or its registered result, as health.py takes them."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        return dict(value)
    raise AnsibleFilterError("mesh_health: %s must be the command's output (its stdout) or its registered result"
                             % name)


def _routes(routes):
    if routes is None:
        return None
    if isinstance(routes, Mapping):
        return dict(routes)
    if isinstance(routes, (list, tuple)) and all(isinstance(table, (list, tuple, Mapping)) for table in routes):
        return [dict(table) if isinstance(table, Mapping) else table for table in routes]
    raise AnsibleFilterError("mesh_health: routes must be a list of `ip -j route` outputs (each a list), "
                             "or the registered results of those commands")


def _records(name, value):
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, Mapping) for item in value):
        raise AnsibleFilterError("mesh_health: %s must be a list of dicts (routevpn_xfrm_%s of xfrm_policy_facts)"
                                 % (name, name))
    return [dict(item) for item in value]


def mesh_health(ends, sites=None, swanctl=None, policies=None, birdc=None, routes=None, require_prefixes=True,
                pluto=None, states=None):
    if not isinstance(ends, (list, tuple)) or not all(isinstance(end, Mapping) for end in ends):
        raise AnsibleFilterError("mesh_health: the input must be a gateway's link ends, "
                                 "e.g. routevpn_mesh_plan.hosts[inventory_hostname]")
    try:
        return link_health([dict(end) for end in ends], sites=sites, swanctl=_output("swanctl", swanctl),
                           policies=_records("policies", policies) or [], birdc=_output("birdc", birdc),
                           routes=_routes(routes), require_prefixes=bool(require_prefixes),
                           pluto=_output("pluto", pluto), states=_records("states", states))
    except (HealthInputError, KeyError, ValueError) as exc:
        raise AnsibleFilterError("mesh_health: %s" % exc)


def mesh_health_cross_check(rows, verified=None, external=None):
    if not isinstance(rows, (list, tuple)) or not all(isinstance(row, Mapping) for row in rows):
        raise AnsibleFilterError("mesh_health_cross_check: the input must be the rows of mesh_health of every "
                                 "gateway, in one list")
    if verified is not None and (not isinstance(verified, (list, tuple)) or
                                 not all(isinstance(name, str) for name in verified)):
        raise AnsibleFilterError("mesh_health_cross_check: verified must be a list of gateway names")
    try:
        return cross_check([dict(row) for row in rows], verified=None if verified is None else list(verified),
                           external=[str(name) for name in (external or [])])
    except KeyError as exc:
        raise AnsibleFilterError("mesh_health_cross_check: a row lacks %s; give it the rows of mesh_health" % exc)


def mesh_health_problems(results):
    if not isinstance(results, Mapping) or not all(isinstance(result, Mapping) or result is None
                                                   for result in results.values()):
        raise AnsibleFilterError("mesh_health_problems: the input must be a dict of registered results by name "
                                 "(netns, swanctl, pluto, xfrm, birdc, routes)")
    return gateway_problems(dict((name, result) for name, result in results.items() if result is not None))


def _names(value, what):
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(name, str) for name in value):
        raise AnsibleFilterError("mesh_health_report: %s must be a list of gateway names" % what)
    return [str(name) for name in value]


def _by_gateway(value, what, check, expected):
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(name, str) and check(item) for name, item in value.items()):
        raise AnsibleFilterError("mesh_health_report: %s must be a dict of %s by gateway name" % (what, expected))
    return dict((str(name), item) for name, item in value.items())


def mesh_health_report(rows, plan, verified=None, silent=None, problems=None, read_at=None, generated_at=None):
    if not isinstance(rows, (list, tuple)) or not all(isinstance(row, Mapping) for row in rows):
        raise AnsibleFilterError("mesh_health_report: the input must be the rows of mesh_health_cross_check")
    if not isinstance(plan, Mapping) or not isinstance(plan.get("hosts"), Mapping) \
            or not isinstance(plan.get("gateways"), Mapping):
        raise AnsibleFilterError("mesh_health_report: plan must be the mesh plan (routevpn_mesh_plan)")
    if generated_at is not None and not isinstance(generated_at, str):
        raise AnsibleFilterError("mesh_health_report: generated_at must be a timestamp (a string), or omitted")
    problems = _by_gateway(problems, "problems", lambda lines: isinstance(lines, (list, tuple))
                           and all(isinstance(line, str) for line in lines), "lists of lines")
    read_at = _by_gateway(read_at, "read_at", lambda moment: moment is None or isinstance(moment, str), "timestamps")
    try:
        return health_report([dict(row) for row in rows], plan, verified=_names(verified, "verified"),
                             silent=_names(silent, "silent") or [],
                             problems=dict((name, list(lines)) for name, lines in problems.items()),
                             read_at=read_at, generated_at=generated_at)
    except HealthReportError as exc:
        raise AnsibleFilterError("mesh_health_report: %s" % exc)
    except KeyError as exc:
        raise AnsibleFilterError("mesh_health_report: a row or the plan lacks %s; give it the rows of "
                                 "mesh_health_cross_check and routevpn_mesh_plan" % exc)


def mesh_health_svg(report):
    if not isinstance(report, Mapping):
        raise AnsibleFilterError("mesh_health_svg: the input must be the report of mesh_health_report (a dict)")
    try:
        return health_svg(report)
    except HealthSvgError as exc:
        raise AnsibleFilterError("mesh_health_svg: %s" % exc)


def mesh_health_table(rows):
    if not isinstance(rows, (list, tuple)) or not all(isinstance(row, Mapping) for row in rows):
        raise AnsibleFilterError("mesh_health_table: the input must be the rows of mesh_health")
    try:
        return health_table(rows)
    except KeyError as exc:
        raise AnsibleFilterError("mesh_health_table: a row lacks %s; give it the rows of mesh_health" % exc)


class FilterModule(object):
    def filters(self):
        return {
            "mesh_health": mesh_health,
            "mesh_health_cross_check": mesh_health_cross_check,
            "mesh_health_problems": mesh_health_problems,
            "mesh_health_report": mesh_health_report,
            "mesh_health_svg": mesh_health_svg,
            "mesh_health_table": mesh_health_table,
        }
