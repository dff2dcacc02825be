# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to routevpn.mesh: what the two tunnel modules share (argument spec, single and list forms)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._pyroute2_dep import require_pyroute2
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnel_links import TunnelError, TunnelLinks

SINGLE_STATES = ("present", "absent")
LIST_STATES = ("merged", "overridden", "deleted")

# Options every interface has, in the single form and in each `config` item.
COMMON_INTERFACE_OPTIONS = dict(
    name=dict(type="str"),
    netns=dict(type="str"),
    mtu=dict(type="int"),
    addresses=dict(type="list", elements="str"),
    enabled=dict(type="bool"),
)
DEFAULTS = dict(mtu=1500, enabled=True)


def argument_spec(kind_options):
    item = dict(COMMON_INTERFACE_OPTIONS)
    item.update(kind_options)
    item["name"] = dict(type="str", required=True)
    spec = dict(COMMON_INTERFACE_OPTIONS)
    spec.update(kind_options)
    spec.update(
        config=dict(type="list", elements="dict", options=item),
        prefix=dict(type="str", default="rv-"),
        state=dict(type="str", choices=list(SINGLE_STATES + LIST_STATES)),
    )
    return spec


def _entries(module, kind_option_names):
    params = module.params
    shared = ("netns", "mtu", "enabled") + tuple(kind_option_names)
    if params["config"] is None:
        items = [dict((key, params[key]) for key in COMMON_INTERFACE_OPTIONS.keys() | set(kind_option_names))]
    else:
        items = params["config"]
        for item in items:
            for key in shared:
                if item.get(key) is None:
                    item[key] = params.get(key)
    for item in items:
        for key, value in DEFAULTS.items():
            if item.get(key) is None:
                item[key] = value
        for address in item.get("addresses") or []:
            try:
                interface = ipaddress.ip_interface(address)
            except ValueError:
                interface = None
            if interface is None or "/" not in address:
                raise TunnelError("%s: address %r must be written with its prefix length, e.g. 2001:db8::1/127"
                                  % (item["name"], address))
    return items


def run_tunnel_module(module, kind, kind_option_names, normalise_entry, required_for_present):
    """Validate the form, build the entries, run TunnelLinks and exit the module."""
    require_pyroute2(module)
    params = module.params
    list_form = params["config"] is not None
    state = params["state"] or ("merged" if list_form else "present")
    if list_form and state not in LIST_STATES:
        module.fail_json(msg="with config (the list form), state must be one of %s, not %s"
                         % (", ".join(LIST_STATES), state))
    if not list_form and state not in SINGLE_STATES:
        module.fail_json(msg="with name (the single form), state must be present or absent, not %s; "
                         "use config for %s" % (state, state))
    try:
        entries = _entries(module, kind_option_names)
        if state in ("present", "merged", "overridden"):
            for entry in entries:
                missing = [key for key in required_for_present if entry.get(key) in (None, "")]
                if missing:
                    raise TunnelError("%s: %s required to create the interface" % (entry["name"], " and ".join(missing)))
                normalise_entry(entry)
        links = TunnelLinks(
            kind,
            entries,
            state={"present": "merged", "absent": "deleted"}.get(state, state),
            prefix=params["prefix"],
            scope_netns=[params["netns"]] if params.get("netns") else [],
            check_mode=module.check_mode,
        )
        result = links.run()
    except TunnelError as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:  # pylint: disable=protected-access
        result.pop("diff")
    if not list_form:
        result["interface"] = result["interfaces"][0] if result["interfaces"] else None
    module.exit_json(**result)
