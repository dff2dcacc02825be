"""Inventory builders shared by the planner's tests (plain dicts, like hostvars)."""

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import PlanError, plan

MASTER = "lab-master-secret-0123456789abcdef"


def site_name(site):
    return "site%d" % site


def gateway_name(site, index):
    return "v%d-%d" % (site, index)


def mesh_vars(sites, **extra):
    common = {
        "routevpn_sites": {site_name(s): {"asn": 65000 + s} for s in sites},
        "routevpn_transfer_prefix_v6": "2001:db8:ff::/64",
        "routevpn_transfer_prefix_v4": "169.254.0.0/16",
        "routevpn_psk_master": MASTER,
    }
    common.update(extra)
    return common


def gateway_vars(site, index, gateway_id=None, **extra):
    hostvars = {
        "routevpn_site": site_name(site),
        "routevpn_gateway_id": gateway_id if gateway_id is not None else site * 10 + index,
        "routevpn_public_address": "2001:db8:%x::%x" % (site, index),
    }
    hostvars.update(extra)
    return hostvars


def inventory(layout, **extra):
    """layout: {site: number of gateways}; returns hostvars for the whole mesh."""
    common = mesh_vars(sorted(layout), **extra)
    hostvars = {}
    for site, count in layout.items():
        for index in range(1, count + 1):
            name = gateway_name(site, index)
            hostvars[name] = dict(common, **gateway_vars(site, index))
    return hostvars


def problems_of(hostvars):
    """The problems the planner finds in ``hostvars`` (it must find some)."""
    with pytest.raises(PlanError) as caught:
        plan(hostvars, list(hostvars))
    return caught.value.problems
