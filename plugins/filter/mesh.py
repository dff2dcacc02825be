# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters over the mesh planner; the planning itself lives in module_utils/_mesh/plan.py."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from jinja2 import Undefined

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.external_config import (
    FILE_NAME,
    ExternalConfigError,
    file_name,
    render,
)
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


def _job(function, job):
    """AWX's job variables of this run (awx_workflow_job_id, ...) as plain data; None when not given."""
    if job is None:
        return None
    if not isinstance(job, Mapping):
        raise AnsibleFilterError("%s: job must map AWX's job variables (awx_workflow_job_id, ...) to their values, "
                                 "got %s" % (function, type(job).__name__))
    try:
        return _plain(job)
    except _NotTemplated as exc:
        raise AnsibleFilterError("%s: job could not be templated: %s" % (function, exc))


def mesh_plan(hostvars, gateway_names, job=None):
    names, selected = _selected(hostvars, gateway_names)
    try:
        return plan(selected, names, _job("mesh_plan", job))
    except PlanError as exc:
        raise AnsibleFilterError(str(exc))


def mesh_planning(hostvars, gateway_names, job=None):
    """``{plan, problems}``: the plan, or None and every problem, for a play that prints them once."""
    names, selected = _selected(hostvars, gateway_names)
    try:
        return {"plan": plan(selected, names, _job("mesh_planning", job)), "problems": []}
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


def _external_record(function, mesh_plan_, name):
    """(plan, record) of external peer ``name``; AnsibleFilterError naming it when the plan has none."""
    try:
        plan_ = _plain(mesh_plan_)
    except _NotTemplated as exc:
        raise AnsibleFilterError("%s: the plan could not be templated: %s" % (function, exc))
    if not isinstance(plan_, Mapping) or not isinstance(plan_.get("external_peers"), Mapping):
        raise AnsibleFilterError("%s: the input must be the mesh plan (routevpn_mesh_plan)" % function)
    if name not in plan_["external_peers"]:
        raise AnsibleFilterError("%s: routevpn_external_peers[%s]: not a peer of the plan (it has: %s)"
                                 % (function, name, ", ".join(sorted(plan_["external_peers"])) or "none"))
    return plan_, plan_["external_peers"][name]


def _external_psks(function, name, record, psk_master, overrides, external_peers):
    """{link: pre-shared key} of the peer's links, as the Linux ends derive them (plan.link_psk)."""
    if overrides is not None and not isinstance(overrides, Mapping):
        raise AnsibleFilterError("%s: overrides must map link names to secrets" % function)
    try:
        peers = _plain(external_peers) if external_peers else []
    except _NotTemplated as exc:
        raise AnsibleFilterError("%s: routevpn_external_peers could not be templated: %s" % (function, exc))
    psks = {}
    for end in record.get("ends") or []:
        given = given_psk(peers, name, str(end.get("peer")))
        try:
            psks[str(end.get("link"))] = link_psk(
                None if psk_master is None else str(psk_master), str(end.get("link")),
                {str(k): str(v) for k, v in (overrides or {}).items()}, None if given is None else str(given))
        except ValueError as exc:
            raise AnsibleFilterError("%s: routevpn_external_peers[%s]: %s" % (function, name, exc))
    return psks


def _external_text(function, mesh_plan_, name, psk_master, overrides, external_peers):
    plan_, record = _external_record(function, mesh_plan_, name)
    psks = _external_psks(function, name, record, psk_master, overrides, external_peers)
    try:
        return render(record, name, psks, sites=plan_.get("sites"),
                      transfer_pools=[plan_.get("transfer_pool_v4"), plan_.get("transfer_pool_v6")])
    except ExternalConfigError as exc:
        raise AnsibleFilterError("%s: %s" % (function, exc))


def mesh_external_config(mesh_plan_, name, psk_master=None, overrides=None, external_peers=None):
    """The configuration of external peer ``name`` for its operator (module_utils/_mesh/external_config.py)."""
    return _external_text("mesh_external_config", mesh_plan_, str(name), psk_master, overrides, external_peers)


def mesh_external_files(mesh_plan_, found=None, psk_master=None, overrides=None, external_peers=None):
    """``{write: [{name, file}], remove: [file], problems: [...]}`` for routevpn_external_peers_dir.

    ``found`` lists the names of the files in the directory; a file named
    like a peer's (NAME.junos.conf, NAME.vyos.conf, NAME.txt) that the plan
    does not write is to be removed.  ``problems`` holds, for each peer whose
    configuration cannot be rendered, why (never a secret): a play stops on
    them before it writes a file with no_log.
    """
    try:
        plan_ = _plain(mesh_plan_)
    except _NotTemplated as exc:
        raise AnsibleFilterError("mesh_external_files: the plan could not be templated: %s" % exc)
    if not isinstance(plan_, Mapping) or not isinstance(plan_.get("external_peers"), Mapping):
        raise AnsibleFilterError("mesh_external_files: the input must be the mesh plan (routevpn_mesh_plan)")
    if found is not None and (isinstance(found, str) or not isinstance(found, (list, tuple))):
        raise AnsibleFilterError("mesh_external_files: found must be a list of file names")
    write, problems = [], []
    for name in sorted(plan_["external_peers"]):
        record = plan_["external_peers"][name]
        try:
            write.append({"name": name, "file": file_name(name, record.get("platform") if isinstance(record, Mapping)
                                                          else None)})
        except ExternalConfigError as exc:
            raise AnsibleFilterError("mesh_external_files: %s" % exc)
        try:
            _external_text("mesh_external_config", plan_, name, psk_master, overrides, external_peers)
        except AnsibleFilterError as exc:
            problems.append(str(exc))
    planned = set(item["file"] for item in write)
    remove = sorted(str(found_name) for found_name in found or []
                    if FILE_NAME.match(str(found_name)) and str(found_name) not in planned)
    return {"write": write, "remove": remove, "problems": problems}


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
            "mesh_external_config": mesh_external_config,
            "mesh_external_files": mesh_external_files,
            "mesh_reauth": mesh_reauth,
        }
