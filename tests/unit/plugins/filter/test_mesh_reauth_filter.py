"""The mesh_reauth filter: module_utils/_mesh/rotation.py behind AnsibleFilterError, reading the roles' facts."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.routevpn.mesh.plugins.filter.mesh import mesh_reauth
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan

from ..module_utils.mesh_inventory import inventory

HOSTVARS = inventory({1: 2, 2: 2, 3: 1})
PLAN = plan(HOSTVARS, sorted(HOSTVARS))
ALL = sorted(HOSTVARS)


def test_filter_reads_the_roles_facts_from_hostvars():
    hostvars = dict((host, {}) for host in ALL)
    hostvars["v2-1"]["__routevpn_reauth_pending"] = ["11-21"]
    steps = mesh_reauth(PLAN, hostvars, ALL)
    assert steps["v1-1"]["reauth"] == ["rv-21"] and steps["v2-1"]["settled"] == ["11-21"]
    with pytest.raises(AnsibleFilterError, match="must be hostvars"):
        mesh_reauth(PLAN, [], ALL)
    with pytest.raises(AnsibleFilterError, match="list of host names"):
        mesh_reauth(PLAN, hostvars, "v1-1")
    hostvars["v1-1"]["__routevpn_reauth_pending"] = ["22-31"]
    with pytest.raises(AnsibleFilterError, match="mesh_reauth: v1-1 has link 22-31 pending"):
        mesh_reauth(PLAN, hostvars, ALL)
