# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the mesh planner; the planning itself lives in module_utils/_mesh/plan.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import PlanError, link_psk, plan

_VARIABLE_PREFIX = "routevpn_"


def _host_variables(hostvars, name):
    # Only the collection's own variables: reading every host variable would
    # template (and possibly fail on) unrelated ones.
    variables = hostvars[name]
    return {key: variables[key] for key in variables if key.startswith(_VARIABLE_PREFIX)}


def mesh_plan(hostvars, gateway_names):
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError("mesh_plan: the input must be hostvars (a mapping), got %s" % type(hostvars).__name__)
    if isinstance(gateway_names, str) or not isinstance(gateway_names, (list, tuple)):
        raise AnsibleFilterError("mesh_plan: the argument must be a list of host names, e.g. groups['routevpn_gateways']")
    names = [str(name) for name in gateway_names]
    selected = {name: _host_variables(hostvars, name) for name in names if name in hostvars}
    try:
        return plan(selected, names)
    except PlanError as exc:
        raise AnsibleFilterError(str(exc))


def mesh_link_psk(master, link, overrides=None):
    if overrides is not None and not isinstance(overrides, Mapping):
        raise AnsibleFilterError("mesh_link_psk: overrides must map link names to secrets")
    try:
        return link_psk(None if master is None else str(master), str(link),
                        {str(k): str(v) for k, v in (overrides or {}).items()})
    except ValueError as exc:
        raise AnsibleFilterError("mesh_link_psk: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {
            "mesh_plan": mesh_plan,
            "mesh_link_psk": mesh_link_psk,
        }
