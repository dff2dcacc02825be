"""The mesh_health filters: thin fronts of module_utils/_mesh/health.py, fed as playbooks/verify.yml feeds them."""

import json
import pathlib

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.routevpn.mesh.plugins.filter.mesh_health import (
    FilterModule,
    mesh_health,
    mesh_health_cross_check,
    mesh_health_problems,
    mesh_health_report,
    mesh_health_svg,
    mesh_health_table,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan

from ..module_utils.mesh_inventory import inventory

CAPTURED = pathlib.Path(__file__).parents[1] / "module_utils" / "captured"


def captured(name):
    text = (CAPTURED / name).read_text()
    return json.loads(text) if name.endswith(".json") else text


def registered(stdout, rc=0, stderr=""):
    """A command's result as Ansible registers it."""
    return {"changed": False, "rc": rc, "stdout": stdout, "stderr": stderr, "cmd": ["swanctl", "--list-sas"],
            "failed_when_result": False}


def the_plan():
    hostvars = inventory({1: 1, 2: 1})
    return plan(hostvars, sorted(hostvars))


def ends(gateway):
    return the_plan()["hosts"][gateway]


def test_the_filters_are_registered():
    assert sorted(FilterModule().filters()) == ["mesh_health", "mesh_health_cross_check", "mesh_health_problems",
                                                "mesh_health_report", "mesh_health_svg", "mesh_health_table"]


def test_registered_results_go_in_whole():
    rows = []
    for gateway in ("v1-1", "v2-1"):
        xfrm = captured("pair-up-%s.xfrm.json" % gateway)
        routes = {"results": [registered("[]"), registered("", rc=1, stderr="Cannot open network namespace")]}
        rows += mesh_health(ends(gateway), swanctl=registered(captured("pair-up-%s.swanctl.pretty" % gateway)),
                            policies=xfrm["policies"], states=xfrm["states"], routes=routes, require_prefixes=False,
                            birdc={"skipped": True})
    checked = mesh_health_cross_check(rows, verified=["v1-1", "v2-1"])
    assert [(row["ike"], row["child"], row["if_id_ok"]) for row in checked] == [("ESTABLISHED", "INSTALLED", True)] * 2
    assert [row["problems"] for row in checked] == [["no BGP session with 169.254.1.145 or 2001:db8:ff::191"],
                                                    ["no BGP session with 169.254.1.144 or 2001:db8:ff::190"]]
    assert mesh_health_table(checked)[-1] == "0 of 2 link ends healthy"


def test_plain_text_still_goes_in():
    (row,) = mesh_health(ends("v1-1"), swanctl=captured("swanctl-established.raw"), birdc="", routes=[[]],
                         require_prefixes=False)
    assert row["ike"] == "ESTABLISHED"


@pytest.mark.parametrize("call, message", [
    (lambda: mesh_health("v1-1"), "a gateway's link ends"),
    (lambda: mesh_health(ends("v1-1"), swanctl=["x"]), "swanctl must be the command's output"),
    (lambda: mesh_health(ends("v1-1"), routes="[]"), "routes must be a list"),
    (lambda: mesh_health(ends("v1-1"), states={"spi": 1}), "states must be a list of dicts"),
    (lambda: mesh_health(ends("v1-1"), swanctl="list-sa event {rv-21 {"), "mesh_health: swanctl output"),
    (lambda: mesh_health_cross_check("rows"), "the rows of mesh_health"),
    (lambda: mesh_health_cross_check([], verified="v1-1"), "verified must be a list"),
    (lambda: mesh_health_cross_check([{"gateway": "v1-1"}]), "a row lacks"),
    (lambda: mesh_health_problems(["x"]), "a dict of registered results"),
    (lambda: mesh_health_report({"rows": []}, the_plan()), "the rows of mesh_health_cross_check"),
    (lambda: mesh_health_report([], {"hosts": []}), "plan must be the mesh plan"),
    (lambda: mesh_health_report([], the_plan(), verified="v1-1"), "verified must be a list of gateway names"),
    (lambda: mesh_health_report([], the_plan(), problems={"v1-1": "down"}), "problems must be a dict of lists"),
    (lambda: mesh_health_report([], the_plan(), read_at=["now"]), "read_at must be a dict of timestamps"),
    (lambda: mesh_health_report([], the_plan(), generated_at=0), "generated_at must be a timestamp"),
    (lambda: mesh_health_report([{"gateway": "v1-1"}], the_plan()), "rows must be those of mesh_health_cross_c"),
    (lambda: mesh_health_report([{"status": "ok"}], the_plan()), "no link end of the plan"),
    (lambda: mesh_health_svg([]), "mesh_health_svg: the input must be the report of mesh_health_report"),
    (lambda: mesh_health_svg({"schema": "routevpn.mesh/health-report", "schema_version": 2}),
     "mesh_health_svg: the input is no routevpn.mesh/health-report version 1"),
])
def test_wrong_input_is_a_filter_error(call, message):
    with pytest.raises(AnsibleFilterError, match=message):
        call()


def test_mesh_health_problems():
    assert mesh_health_problems({"swanctl": captured("swanctl-refused.result.json"), "pluto": None}) == [
        "charon is not running: /run/cap/a/charon.vici refused the connection"]


def test_mesh_health_report_as_verify_calls_it():
    """As the report play feeds it: the cross-checked rows, the plan, the run's gateways, their problems and times."""
    rows = []
    for gateway in ("v1-1", "v2-1"):
        xfrm = captured("pair-up-%s.xfrm.json" % gateway)
        rows += mesh_health(ends(gateway), swanctl=captured("pair-up-%s.swanctl.pretty" % gateway),
                            policies=xfrm["policies"], states=xfrm["states"], require_prefixes=False)
    checked = mesh_health_cross_check(rows, verified=["v1-1", "v2-1"])
    report = mesh_health_report(checked, the_plan(), verified=["v1-1", "v2-1"], silent=[],
                                problems={"v2-1": ["drift: set net.ipv4.ip_forward to 1 in netns private"]},
                                read_at={"v1-1": "2026-12-07T21:50:20Z", "v2-1": "2026-12-07T21:50:21Z"},
                                generated_at="2026-12-07T21:50:24Z")
    assert report["generated_at"] == "2026-12-07T21:50:24Z"
    # No BIRD output given: both ends are down for their BGP session alone.
    assert [(record["gateway"], record["status"], record["ike"], record["read_at"]) for record in
            report["link_ends"]] == [("v1-1", "DOWN", "ESTABLISHED", "2026-12-07T21:50:20Z"),
                                     ("v2-1", "DOWN", "ESTABLISHED", "2026-12-07T21:50:21Z")]
    assert [gateway["problems"] for gateway in report["gateways"]] == [
        [], ["drift: set net.ipv4.ip_forward to 1 in netns private"]]
    json.dumps(report)  # plain data, as to_nice_json takes it
    # The picture of the same report, or of the report read back from its JSON file: the same.
    svg = mesh_health_svg(report)
    assert svg == mesh_health_svg(json.loads(json.dumps(report)))
    assert 'data-link="11-21" data-status="DOWN"' in svg and "0 of 2 link ends healthy, 2 DOWN" in svg
