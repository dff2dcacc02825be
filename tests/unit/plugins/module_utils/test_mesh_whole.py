"""The planner given part of the fleet: routevpn_expected_gateways, and AWX's job slices (module_utils/_mesh/whole.py).

A partial inventory plans fewer links, and the roles remove every link the
plan does not name: these tests are the planner refusing one, before anything.
"""

import os

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.inputs import RULES
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import PlanError, plan
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.whole import launched_by_workflow, whole_problems

from .mesh_inventory import inventory, problems_of

FLEET = ["v1-1", "v1-2", "v2-1", "v2-2", "v3-1"]
# The extra vars AWX gives a job that a workflow job launched (a slice is one), as its awx_meta_vars writes them.
SLICE_JOB = {"awx_job_id": 17, "tower_job_id": 17, "awx_workflow_job_id": 16, "tower_workflow_job_id": 16,
             "awx_job_launch_type": "workflow"}


def fleet(expected=None):
    hostvars = inventory({1: 2, 2: 2, 3: 1})
    if expected is not None:
        for variables in hostvars.values():
            variables["routevpn_expected_gateways"] = expected
    return hostvars


def awx_slice(hostvars, number, count):
    """What a slice's ansible-playbook is given: AWX 24.6.1's Inventory.get_sliced_hosts, hosts by name[n-1::count]."""
    names = sorted(hostvars)[number - 1::count]
    return dict((name, hostvars[name]) for name in names)


def refusal(hostvars, job=None):
    """The planner's problems for ``hostvars`` (it must refuse them)."""
    with pytest.raises(PlanError) as caught:
        plan(hostvars, list(hostvars), job)
    return caught.value.problems


MISSING_V2 = ("all: routevpn_expected_gateways: v2-1, v2-2 are not in this run's group routevpn_gateways (2 of the "
              "5 expected gateways): planned without them, the roles would remove every link to them; run with the "
              "whole inventory (no AWX job slicing, an inventory source that returns every gateway), or take them "
              "out of routevpn_expected_gateways when they leave the mesh")
SLICE_REFUSED = ("all: routevpn_expected_gateways: not set, and this run is a job launched by AWX workflow job 16 "
                 "(awx_workflow_job_id), as every slice of a sliced job template is: a slice holds part of the "
                 "inventory, and planned from it the roles would remove every link to the gateways it lacks; set "
                 "routevpn_expected_gateways to the names of every gateway (docs/awx.md), or launch the job template "
                 "without slicing")


def test_the_whole_fleet_listed_in_any_order_plans_as_without_the_variable():
    listed = plan(fleet(list(reversed(FLEET))), FLEET)
    unlisted = plan(fleet(), FLEET)
    assert listed == unlisted
    assert listed["summary"] == "5 gateways in 3 sites, 8 links"


def test_a_partial_inventory_is_refused_naming_the_missing_gateways():
    hostvars = fleet(FLEET)
    del hostvars["v2-1"], hostvars["v2-2"]
    assert refusal(hostvars) == [MISSING_V2]


def test_one_missing_gateway_is_named_in_the_singular():
    hostvars = fleet(FLEET)
    del hostvars["v3-1"]
    assert refusal(hostvars) == [
        "all: routevpn_expected_gateways: v3-1 is not in this run's group routevpn_gateways (1 of the 5 expected "
        "gateways): planned without it, the roles would remove every link to it; run with the whole inventory (no "
        "AWX job slicing, an inventory source that returns every gateway), or take it out of "
        "routevpn_expected_gateways when it leaves the mesh"]


def test_a_gateway_not_listed_is_a_problem_too():
    assert refusal(fleet(["v1-1", "v1-2", "v2-1", "v2-2"])) == [
        "all: routevpn_expected_gateways: v3-1 is in the group routevpn_gateways but not listed; add it when it "
        "joins the mesh"]


def test_missing_and_unlisted_gateways_are_two_problems():
    hostvars = fleet(["v1-1", "v1-2", "v2-1", "v2-2", "v4-1"])
    problems = refusal(hostvars)  # sorted by message, as every problem of a variable
    assert [problem.split(": ", 2)[2].split(" (")[0] for problem in problems] == [
        "v3-1 is in the group routevpn_gateways but not listed; add it when it joins the mesh",
        "v4-1 is not in this run's group routevpn_gateways"]


def test_without_the_variable_a_partial_inventory_still_plans_as_before():
    # The default is unchanged, and this is the risk docs/awx.md states: site 2 alone plans no link at all, and
    # the roles would remove every tunnel of its gateways.
    hostvars = fleet()
    part = dict((name, hostvars[name]) for name in ("v2-1", "v2-2"))
    assert plan(part, list(part))["summary"] == "2 gateways in 3 sites, 0 links"


@pytest.mark.parametrize("variable", ["awx_workflow_job_id", "tower_workflow_job_id"])
def test_a_job_launched_by_a_workflow_must_name_its_gateways(variable):
    job = {variable: 16}
    assert refusal(fleet(), job) == [SLICE_REFUSED.replace("(awx_workflow_job_id)", "(%s)" % variable)]
    # Listed, the whole inventory plans: the variable proves it whole.
    assert plan(fleet(FLEET), FLEET, job)["summary"] == "5 gateways in 3 sites, 8 links"


@pytest.mark.parametrize("job", [
    None,
    {},
    {"awx_job_id": 17, "tower_job_id": 17, "awx_job_launch_type": "manual"},  # a job template launched alone
    {"awx_workflow_job_id": None, "tower_workflow_job_id": None},  # what playbooks/tasks/plan.yml passes outside AWX
    {"awx_workflow_job_id": ""},
])
def test_a_run_no_workflow_launched_needs_no_list(job):
    assert launched_by_workflow(job) is None
    assert plan(fleet(), FLEET, job)["summary"] == "5 gateways in 3 sites, 8 links"


@pytest.mark.parametrize("count", [2, 3, 5])
def test_every_slice_of_a_sliced_job_is_refused_with_or_without_the_list(count):
    for number in range(1, count + 1):
        without = awx_slice(fleet(), number, count)
        assert refusal(without, SLICE_JOB) == [SLICE_REFUSED], (number, count)
        listed = awx_slice(fleet(FLEET), number, count)
        (problem,) = refusal(listed, SLICE_JOB)
        missing = sorted(set(FLEET) - set(listed))
        assert problem.startswith("all: routevpn_expected_gateways: %s " % ", ".join(missing)), problem


@pytest.mark.parametrize("value, message", [
    ("v1-1", "'v1-1' is a string, not a list"),
    ([], "has 0 item(s); it must be a list of at least 1 gateway inventory names"),
    (["v1-1", "v1-1"], "'v1-1' is listed twice"),
    (["v1-1", "../v2-1"], "item 2: '../v2-1' is not usable as a gateway name"),
    ([11, 12], "item 1: 11 is not usable as a gateway name"),
])
def test_a_malformed_list_is_one_problem_and_no_guess(value, message):
    problems = refusal(fleet(value), SLICE_JOB)
    assert len(problems) == 1 and problems[0].startswith("all: routevpn_expected_gateways: " + message), problems


def test_the_list_is_mesh_wide():
    hostvars = fleet(FLEET)
    del hostvars["v3-1"]["routevpn_expected_gateways"]
    assert "v3-1: routevpn_expected_gateways: not set differs from v1-1's; it is mesh-wide (set it once, in " \
        "group_vars)" in problems_of(hostvars)


def test_the_problem_is_listed_with_the_inventory_s_others():
    hostvars = fleet(FLEET)
    del hostvars["v2-1"], hostvars["v2-2"]
    hostvars["v1-2"]["routevpn_site"] = "mars"
    problems = problems_of(hostvars)
    assert problems[0] == MISSING_V2
    assert problems[1].startswith("v1-2: routevpn_site: unknown site 'mars'")


def test_whole_problems_reads_only_the_workflow_variables():
    assert whole_problems(None, FLEET, {"awx_job_id": 17}) == []
    assert whole_problems(FLEET, FLEET, SLICE_JOB) == []
    assert launched_by_workflow({"awx_workflow_job_id": "16\nx"}) == "AWX workflow job '16\\nx' (awx_workflow_job_id)"
    assert launched_by_workflow(["awx_workflow_job_id"]) is None


def test_docs_awx_names_every_secret_variable_of_the_rule_table():
    # docs/awx.md tells AWX users which variables need a credential or a vault: the rule table's secret ones.
    docs = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "docs", "awx.md")
    with open(docs) as stream:
        text = stream.read()
    secret = sorted(name for name, rule in RULES.items() if rule.secret)
    assert secret == ["routevpn_external_peers", "routevpn_psk_master", "routevpn_psk_overrides"]
    assert [name for name in secret if "`%s`" % name not in text] == []
