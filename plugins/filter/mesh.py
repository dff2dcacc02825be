# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the mesh planner; the planning itself lives in module_utils/_mesh/plan.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from jinja2 import Undefined

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.inputs import Untemplatable
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import PlanError, given_psk, link_psk, plan
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.rotation import RotationInputError, reauth_steps

_VARIABLE_PREFIX = "routevpn_"
# Set by the strongswan and libreswan roles on each gateway: the links whose credentials changed there.
_PENDING = "__routevpn_reauth_pending"


class _NotTemplated(Exception):
    pass


def _undefined_message(value):
    if "vault" in type(value).__name__.lower():
        return ("it is encrypted with ansible-vault and no matching vault password was given "
                "(--ask-vault-pass or --vault-password-file)")
    try:
        return value._undefined_message  # pylint: disable=protected-access
    except Exception:  # pylint: disable=broad-except
        return "undefined"


def _plain(value):
    """A templated value as plain Python data (templating every nested value now, not lazily in the planner).

    ansible-core 2.19 hands an undefined variable over as a marker (a jinja2
    Undefined) instead of raising: that is a templating failure too.
    """
    if isinstance(value, Undefined):
        raise _NotTemplated(_undefined_message(value))
    if isinstance(value, Mapping):
        return dict((_plain(key), _plain(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _one_line(text):
    return " ".join(str(text).split())


def _host_variables(hostvars, name):
    """The host's routevpn_* variables; one that fails to template becomes an Untemplatable.

    Only the collection's own variables: reading every host variable would
    template (and possibly fail on) unrelated ones.  Each is templated on its
    own, so that one undefined variable (an unloaded vault) does not hide the
    inventory's other problems.
    """
    variables = hostvars[name]
    selected = {}
    for key in variables:
        if not str(key).startswith(_VARIABLE_PREFIX):
            continue
        try:
            selected[str(key)] = _plain(variables[key])
        except Exception as exc:  # pylint: disable=broad-except
            # Any templating failure (undefined variable, syntax error, a lookup
            # that raised) is reported by name; the message is Ansible's.
            selected[str(key)] = Untemplatable(_one_line(getattr(exc, "message", None) or exc)[:300])
    return selected


def _selected(hostvars, gateway_names):
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError("mesh_plan: the input must be hostvars (a mapping), got %s" % type(hostvars).__name__)
    if isinstance(gateway_names, str) or not isinstance(gateway_names, (list, tuple)):
        raise AnsibleFilterError(
            "mesh_plan: the argument must be a list of host names, e.g. groups['routevpn_gateways']")
    names = [str(name) for name in gateway_names]
    return names, dict((name, _host_variables(hostvars, name)) for name in names if name in hostvars)


def mesh_plan(hostvars, gateway_names):
    names, selected = _selected(hostvars, gateway_names)
    try:
        return plan(selected, names)
    except PlanError as exc:
        raise AnsibleFilterError(str(exc))


def mesh_planning(hostvars, gateway_names):
    """``{plan, problems}``: the plan, or None and every problem, for a play that prints them once."""
    names, selected = _selected(hostvars, gateway_names)
    try:
        return {"plan": plan(selected, names), "problems": []}
    except PlanError as exc:
        return {"plan": None, "problems": exc.problems}


def mesh_link_psk(master, link, overrides=None, external_peers=None, end=None):
    """The PSK of ``link``; with ``external_peers`` and the ``end``, the one a peer's operator gave wins."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise AnsibleFilterError("mesh_link_psk: overrides must map link names to secrets")
    given = None
    if external_peers and end:
        try:
            given = given_psk(_plain(external_peers), str(end.get("peer")), str(end.get("gateway")))
        except _NotTemplated as exc:
            raise AnsibleFilterError("mesh_link_psk: routevpn_external_peers could not be templated: %s" % exc)
    try:
        return link_psk(None if master is None else str(master), str(link),
                        {str(k): str(v) for k, v in (overrides or {}).items()},
                        None if given is None else str(given))
    except ValueError as exc:
        raise AnsibleFilterError("mesh_link_psk: %s" % exc)


def mesh_reauth(mesh_plan_, hostvars, active):
    """{host: {reauth, settled, waiting}}: who re-authenticates which link (module_utils/_mesh/rotation.py)."""
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError("mesh_reauth: the first argument must be hostvars (a mapping), got %s"
                                 % type(hostvars).__name__)
    if isinstance(active, str) or not isinstance(active, (list, tuple)):
        raise AnsibleFilterError(
            "mesh_reauth: the second argument must be a list of host names, e.g. ansible_play_hosts")
    pending = {}
    for name in active:
        variables = hostvars[name] if name in hostvars else {}
        try:
            pending[str(name)] = _plain(variables[_PENDING]) if _PENDING in variables else []
        except _NotTemplated as exc:
            raise AnsibleFilterError("mesh_reauth: %s: %s: %s" % (name, _PENDING, exc))
    try:
        return reauth_steps(_plain(mesh_plan_), pending, [str(name) for name in active])
    except RotationInputError as exc:
        raise AnsibleFilterError("mesh_reauth: %s" % exc)


class FilterModule(object):
    def filters(self):
        return {
            "mesh_plan": mesh_plan,
            "mesh_planning": mesh_planning,
            "mesh_link_psk": mesh_link_psk,
            "mesh_reauth": mesh_reauth,
        }
