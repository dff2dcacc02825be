"""verify's health report (module_utils/_mesh/health_report.py), from rows judged on captured outputs.

The rows are health.cross_check's of the link 11-21 at the steps of
captured/capture.sh (see test_mesh_health.py); every report built here is
validated against docs/health-report.schema.json, and its records must carry
exactly the fields the schema lists: a field added to the report and not to
the schema (or the other way round) fails here.
"""

import json
import pathlib
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health import cross_check, link_health
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health_report import (
    SCHEMA,
    SCHEMA_VERSION,
    HealthReportError,
    health_report,
    timestamp,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan

from .mesh_inventory import MASTER, inventory
from .test_mesh_external import GIVEN_PSK, cloud
from .test_mesh_external import mesh as external_mesh
from .test_mesh_health import mesh, pair, pair_end, refused

SCHEMA_FILE = pathlib.Path(__file__).parents[4] / "docs" / "health-report.schema.json"
BOTH = ["v1-1", "v2-1"]
READ_AT = {"v1-1": "2026-12-07T21:50:20Z", "v2-1": "2026-12-07T21:50:21Z"}
GENERATED_AT = "2026-12-07T21:50:24Z"


def schema():
    return json.loads(SCHEMA_FILE.read_text())


def valid(report):
    """The report, once checked against the schema: valid, and every record with exactly the schema's fields."""
    the_schema = schema()
    jsonschema.Draft202012Validator(the_schema).validate(json.loads(json.dumps(report)))
    defs = the_schema["$defs"]
    assert set(report) == set(the_schema["properties"])
    assert set(report["mesh"]) == set(the_schema["properties"]["mesh"]["properties"])
    for record in report["gateways"]:
        assert set(record) == set(defs["gateway"]["properties"]), record
    for record in report["link_ends"]:
        assert set(record) == set(defs["link_end"]["properties"]), record
        assert set(record["sa_counts"]) == set(defs["link_end"]["properties"]["sa_counts"]["properties"])
        assert record["ok"] == (record["status"] == "ok") == (record["reasons"] == []), record
    return report


def report_of(rows, the_plan=None, **kwargs):
    kwargs.setdefault("read_at", READ_AT)
    kwargs.setdefault("generated_at", GENERATED_AT)
    return valid(health_report(rows, the_plan or mesh(), **kwargs))


def ends(report):
    return dict((record["gateway"], record) for record in report["link_ends"])


def test_the_schema_is_a_valid_json_schema():
    the_schema = schema()
    jsonschema.Draft202012Validator.check_schema(the_schema)
    assert the_schema["properties"]["schema"]["const"] == SCHEMA
    assert the_schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION
    # Every field is always there (null where not known): a reader can tell "absent" from "not known".
    for record in (the_schema, the_schema["$defs"]["gateway"], the_schema["$defs"]["link_end"]):
        assert sorted(record["required"]) == sorted(record["properties"])


def test_a_healthy_link_end():
    report = report_of(list(pair("up").values()), verified=BOTH)
    assert (report["schema"], report["schema_version"], report["generated_at"]) == (SCHEMA, 1, GENERATED_AT)
    assert ends(report)["v1-1"] == {
        "gateway": "v1-1", "peer": "v2-1", "link": "11-21", "site": "site1", "peer_site": "site2",
        "peer_external": False, "peer_platform": None, "interface": "rv-21", "tunnel_type": "xfrm",
        "if_id": 4296, "mark": None, "binding_ok": True, "ike_daemon": "strongswan",
        "ike": "ESTABLISHED", "child": "INSTALLED",
        "sa_counts": {"ike": 1, "child": 1, "kernel_in": 1, "kernel_out": 1},
        # pair_end leaves BGP and routes out of the judgement (the captures hold one BIRD's view).
        "bgp": "none", "bgp_imported_routes": 0, "prefixes": [], "missing_prefixes": [],
        "status": "ok", "ok": True, "reasons": [], "read_at": "2026-12-07T21:50:20Z",
    }
    assert report["mesh"] == {
        "ok": True,
        "link_ends": {"total": 2, "ok": 2, "down": 0, "not_verified": 0, "external": 0},
        "gateways": {"total": 2, "verified": 2, "reported": 2, "with_problems": 0},
    }
    assert report["gateways"][0] == {"gateway": "v1-1", "site": "site1", "ike_daemon": "strongswan",
                                     "tunnel_type": "xfrm", "verified": True, "reported": True, "ok": True,
                                     "problems": [], "read_at": "2026-12-07T21:50:20Z"}
    # The rows' evidence stays out: counts, not the SPIs of the IKE_SA, the CHILD_SA or the kernel's SAs.
    text = json.dumps(report)
    assert not [spi for spi in ("6b4eed0cd5d6be0c", "c1ca2ab0", "c28154a3") if spi in text]


def test_a_down_end_gives_its_reasons_and_counts_its_sas():
    """Duplicates: three IKE_SAs and two CHILD_SAs on each end, all established."""
    report = report_of(list(pair("dupike").values()), verified=BOTH)
    record = ends(report)["v1-1"]
    assert (record["status"], record["ok"], record["ike"], record["child"]) == (
        "DOWN", False, "ESTABLISHED", "INSTALLED")
    assert record["sa_counts"] == {"ike": 3, "child": 2, "kernel_in": 2, "kernel_out": 2}
    assert record["reasons"] == ["3 IKE_SAs established for rv-21 (duplicate)",
                                 "2 CHILD_SAs installed for rv-21 (duplicate)"]
    assert report["mesh"]["link_ends"]["down"] == 2 and report["mesh"]["ok"] is False


def test_a_daemon_that_does_not_answer_leaves_its_sa_counts_unknown_not_zero():
    killed = pair_end("killed", "v1-1", swanctl=refused())
    survivor = pair_end("killed", "v2-1")
    report = report_of(cross_check([killed, survivor]), verified=BOTH,
                       problems={"v1-1": ["charon is not running: /run/cap/a/charon.vici refused the connection"]})
    record = ends(report)["v1-1"]
    assert record["sa_counts"] == {"ike": None, "child": None, "kernel_in": 1, "kernel_out": 1}
    assert record["reasons"] == ["no IKE_SA rv-21 (charon is not running)"]
    assert ("link 11-21: peer v1-1 has no IKE_SA for it (charon is not running on v1-1: /run/cap/a/charon.vici "
            "refused the connection)") in ends(report)["v2-1"]["reasons"]
    gateway = report["gateways"][0]
    assert (gateway["reported"], gateway["ok"], gateway["problems"]) == (
        True, False, ["charon is not running: /run/cap/a/charon.vici refused the connection"])
    assert report["mesh"]["gateways"]["with_problems"] == 1


def test_a_silent_gateway_s_ends_are_down_and_its_record_says_why():
    """v2-1 is in the run but did not report (gateway_health could not run there): nothing proves its end."""
    rows = cross_check([pair_end("up", "v1-1")], verified=BOTH)
    report = report_of(rows, verified=BOTH, silent=["v2-1"], read_at={"v1-1": READ_AT["v1-1"]},
                       problems={"v2-1": ["gateway_health: pyroute2 is not installed"]})
    survivor, silent = ends(report)["v1-1"], ends(report)["v2-1"]
    assert (survivor["status"], survivor["reasons"]) == ("DOWN", ["link 11-21: peer v2-1 did not report"])
    assert silent == dict(silent, status="DOWN", ok=False, reasons=["gateway v2-1 did not report"], ike=None,
                          child=None, binding_ok=None, bgp=None, bgp_imported_routes=None, prefixes=None,
                          missing_prefixes=None, read_at=None, if_id=4296, interface="rv-11")
    assert silent["sa_counts"] == {"ike": None, "child": None, "kernel_in": None, "kernel_out": None}
    assert report["gateways"][1] == {"gateway": "v2-1", "site": "site2", "ike_daemon": "strongswan",
                                     "tunnel_type": "xfrm", "verified": True, "reported": False, "ok": False,
                                     "problems": ["gateway_health: pyroute2 is not installed"], "read_at": None}
    assert report["mesh"]["gateways"] == {"total": 2, "verified": 2, "reported": 1, "with_problems": 1}
    assert report["mesh"]["link_ends"] == {"total": 2, "ok": 0, "down": 2, "not_verified": 0, "external": 0}


def test_outside_the_limit_is_not_verified_and_the_mesh_not_proved_healthy():
    rows = cross_check([pair_end("up", "v1-1")], verified=["v1-1"])
    report = report_of(rows, verified=["v1-1"], read_at={"v1-1": READ_AT["v1-1"]})
    assert ends(report)["v1-1"]["reasons"] == ["peer v2-1 is not verified by this run (outside --limit)"]
    assert ends(report)["v2-1"]["reasons"] == ["gateway v2-1 is not verified by this run (outside --limit)"]
    assert [record["status"] for record in report["link_ends"]] == ["not verified"] * 2
    assert [(gateway["verified"], gateway["reported"], gateway["ok"]) for gateway in report["gateways"]] == [
        (True, True, True), (False, False, False)]
    assert report["mesh"]["ok"] is False and report["mesh"]["link_ends"]["not_verified"] == 2


def test_an_end_to_an_external_peer_says_so_and_the_peer_is_no_gateway():
    hostvars = external_mesh([cloud()])
    the_plan = plan(hostvars, BOTH)
    rows = []
    for gateway in BOTH:
        # No daemon output (IKE n/a), the planned policies: each end judged on what was given.
        policies = [{"direction": direction, "if_id": end["if_id"], "mark": None}
                    for end in the_plan["hosts"][gateway] for direction in ("in", "out")]
        rows += link_health(the_plan["hosts"][gateway], policies=policies, require_prefixes=False)
    report = report_of(cross_check(rows, verified=BOTH, external=["cloud-vgw-1"]), the_plan, verified=BOTH)
    external = [record for record in report["link_ends"] if record["peer"] == "cloud-vgw-1"]
    assert [(record["gateway"], record["link"], record["peer_external"], record["peer_platform"])
            for record in external] == [("v1-1", "11-31", True, "generic"), ("v2-1", "21-31", True, "generic")]
    assert not any(record["peer_external"] for record in report["link_ends"] if record["peer"] != "cloud-vgw-1")
    assert report["mesh"]["link_ends"]["total"] == 4 and report["mesh"]["link_ends"]["external"] == 2
    assert [gateway["gateway"] for gateway in report["gateways"]] == BOTH
    # Never a key: not the master, not a PSK the provider gave (the plan only says that one was given).
    text = json.dumps(report)
    assert MASTER not in text and GIVEN_PSK not in text and "psk" not in text


def test_a_vti_end_gives_its_mark_not_an_if_id():
    hostvars = inventory({1: 1, 2: 1})
    hostvars["v1-1"]["routevpn_tunnel_type"] = "vti"
    the_plan = plan(hostvars, BOTH)
    rows = link_health(the_plan["hosts"]["v1-1"], policies=[], require_prefixes=False)
    record = ends(report_of(cross_check(rows, verified=["v1-1"]), the_plan, verified=["v1-1"]))["v1-1"]
    assert (record["tunnel_type"], record["if_id"], record["mark"], record["binding_ok"]) == ("vti", None, 4296, False)
    assert "no XFRM policy with mark 4296 for in and out" in record["reasons"]


def test_a_gateway_that_reported_without_the_row_of_a_link_leaves_that_end_down():
    report = report_of(cross_check([pair_end("up", "v1-1")], verified=BOTH), verified=BOTH)
    assert ends(report)["v2-1"]["reasons"] == ["gateway v2-1 reported no end of link 11-21"]


def test_records_are_ordered_and_the_report_is_the_same_for_the_same_rows():
    rows = list(pair("up").values())
    first = report_of(rows, verified=BOTH)
    again = report_of(list(reversed(rows)), verified=list(reversed(BOTH)))
    assert first == again
    assert [(record["gateway"], record["link"]) for record in first["link_ends"]] == [
        ("v1-1", "11-21"), ("v2-1", "11-21")]


def test_generated_at_is_now_in_utc_unless_given():
    before = datetime.now(timezone.utc).replace(microsecond=0)
    report = health_report(list(pair("up").values()), mesh(), verified=BOTH)
    made = datetime.strptime(report["generated_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert before <= made <= datetime.now(timezone.utc)
    given = datetime(2026, 12, 7, 22, 50, 24, tzinfo=timezone(timedelta(hours=1)))
    assert health_report([], mesh(), generated_at=given)["generated_at"] == "2026-12-07T21:50:24Z"


def test_timestamps_are_utc_to_the_second_and_need_a_time_zone():
    assert timestamp(datetime(2026, 12, 7, 21, 50, 24, 999, tzinfo=timezone.utc)) == "2026-12-07T21:50:24Z"
    with pytest.raises(HealthReportError, match="no time zone"):
        timestamp(datetime(2026, 12, 7, 21, 50, 24))


@pytest.mark.parametrize("rows, message", [
    ([{"gateway": "v1-1", "link": "11-21"}], "rows must be those of mesh_health_cross_check"),
    ([dict(pair_end("up", "v1-1"), status="fine")], "has status 'fine'"),
    ([dict(pair_end("up", "v1-1"), status="ok", link="11-99")], "row v1-1 11-99 is no link end of the plan"),
])
def test_rows_that_do_not_make_a_report_are_named(rows, message):
    with pytest.raises(HealthReportError, match=message):
        health_report(rows, mesh())
