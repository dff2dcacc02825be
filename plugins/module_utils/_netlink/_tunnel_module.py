# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to routevpn.mesh: the tunnel modules' two forms, and the one place errors become fail_json.

The single form (``name``) manages one interface with ``state`` present or
absent.  The list form (``config``) follows Ansible's network resource
modules: ``merged``, ``overridden`` or ``deleted``; top-level values other
than ``name`` and ``addresses`` are defaults for the items.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._links import (
    LinkError,
    LinkSet,
    normalise_address,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._pyroute2_dep import require_pyroute2

SINGLE_STATES = ("present", "absent")
LIST_STATES = ("merged", "overridden", "deleted")

# Options of every interface, in the single form and in each ``config`` item.
INTERFACE_OPTIONS = dict(
    name=dict(type="str"),
    netns=dict(type="str"),
    mtu=dict(type="int"),
    addresses=dict(type="list", elements="str"),
    enabled=dict(type="bool"),
)
DEFAULTS = dict(mtu=1500, enabled=True)


def argument_spec(kind_options):
    """The module's argument spec: the single form's options, ``config`` items of the same, prefix and state."""
    item = dict(INTERFACE_OPTIONS)
    item.update(kind_options)
    item["name"] = dict(type="str", required=True)
    spec = dict(INTERFACE_OPTIONS)
    spec.update(kind_options)
    spec.update(
        config=dict(type="list", elements="dict", options=item),
        prefix=dict(type="str", default="rv-"),
        state=dict(type="str", choices=list(SINGLE_STATES + LIST_STATES)),
    )
    return spec


MODULE_KWARGS = dict(
    mutually_exclusive=[("name", "config"), ("addresses", "config")],
    required_one_of=[("name", "config")],
    supports_check_mode=True,
)


def _items(params, option_names):
    """The wanted interfaces: the single form's one, or the config items with top-level defaults filled in."""
    if params["config"] is None:
        return [dict((key, params.get(key)) for key in option_names)]
    defaults = dict((key, params.get(key)) for key in option_names if key not in ("name", "addresses"))
    items = []
    for given in params["config"]:
        item = dict(defaults)
        item.update((key, value) for key, value in given.items() if value is not None)
        items.append(item)
    return items


def wanted_state(kind, item):
    """One item of the module's options as a wanted state: defaults, canonical addresses, then the kind's checks."""
    item = dict(item)
    for key, value in DEFAULTS.items():
        if item.get(key) is None:
            item[key] = value
    if not 0 < item["mtu"] <= 65535:
        raise LinkError("%s: mtu %s is out of range" % (item["name"], item["mtu"]))
    if item.get("addresses") is not None:
        try:
            item["addresses"] = sorted(set(normalise_address(address) for address in item["addresses"]))
        except ValueError as exc:
            raise LinkError("%s: address %s" % (item["name"], exc))
    return kind.normalise(item)


def run(module, kind, kind_options):
    """Drive one tunnel module: forms, LinkSet, and the result or fail_json."""
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
    option_names = tuple(INTERFACE_OPTIONS) + tuple(kind_options)
    link_state = {"present": "merged", "absent": "deleted"}.get(state, state)
    try:
        items = _items(params, option_names)
        if link_state == "deleted":
            entries = [dict(name=item["name"], netns=item.get("netns")) for item in items]
        else:
            entries = [wanted_state(kind, item) for item in items]
        result = LinkSet(kind, entries, state=link_state, prefix=params["prefix"],
                         scope=[params.get("netns")], check_mode=module.check_mode).run()
    except LinkError as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:  # pylint: disable=protected-access
        result.pop("diff")
    if not list_form:
        result["interface"] = result["interfaces"][0] if result["interfaces"] else None
    module.exit_json(**result)
