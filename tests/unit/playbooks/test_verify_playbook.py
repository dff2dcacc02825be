"""playbooks/verify.yml, run by ansible-playbook against two gateways built on this machine's kernel.

The gateways v1-1 and v2-1 of a two-gateway mesh (link 11-21, if_id 4296) are
made of real namespaces: ansible-playbook runs inside a scratch namespace, the
"public" one both gateways share, which holds real XFRM policies with the
planned if_id and, where the kernel has ESP (the VM tier), the link's two real
SAs; each gateway has its own private namespace holding a veth named after its
tunnel interface (this kernel has no XFRM interfaces; its far end sits in a
third namespace, as a tunnel's would) with the planned transfer addresses and
a BIRD-protocol route through it.  Only the daemons' command-line tools are
stand-ins: `swanctl` and `birdc` answer, for the socket asked for, what the
real ones printed (tests/unit/plugins/module_utils/captured/): both ends of
one link from capture.sh (pair-up-*), and the errors of a charon killed -9.
Both ends healthy is not checked here: every lab scenario's verify runs this
playbook against real daemons on a real kernel and asserts every end healthy.

Since the two gateways share one public namespace, each sees both SAs of the
link; verify tells them apart by the gateway's own IKE address (the source of
its outbound SA), as it does on real gateways, where each kernel holds its own.
"""

import json
import os
import pathlib
import re
import stat
import subprocess
import uuid
import xml.etree.ElementTree as ET

import jsonschema
import pytest
import yaml

from ..collection_paths import ansible_env
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health_svg import health_svg

from ..conftest import delete_netns, kernel_supports
from ..plugins.module_utils.mesh_inventory import inventory
from ..roles.role_runner import run_playbook, write_inventory

CAPTURED = pathlib.Path(__file__).parents[1] / "plugins" / "module_utils" / "captured"
REPORT_SCHEMA = pathlib.Path(__file__).parents[3] / "docs" / "health-report.schema.json"
SOCKETS = "/run/routevpn-verify-test"
# The SAs of pair-up-*: v1-1 (2001:db8:1::1) sends with c1ca2ab0, v2-1 (2001:db8:2::1) with c28154a3.
LINK_SAS = (("2001:db8:1::1", "2001:db8:2::1", "0xc1ca2ab0"), ("2001:db8:2::1", "2001:db8:1::1", "0xc28154a3"))
GATEWAYS = {
    # gateway: tunnel interface, its transfer address, the peer's, the peer site's prefix
    "v1-1": ("rv-21", "2001:db8:ff::190", "2001:db8:ff::191", "2001:db8:a2::/64"),
    "v2-1": ("rv-11", "2001:db8:ff::191", "2001:db8:ff::190", "2001:db8:a1::/64"),
}

# The stand-in answers, for the socket named by --uri (swanctl) or -s (birdc), what is in
# ANSWERS/<socket file name>.{out,err,rc}.
FAKE_TOOL = """#!/bin/sh
# Stand-in for {name}: answers what the real one printed, for the socket it is asked about.
socket=
while [ $# -gt 0 ]; do
  case $1 in --uri | -s) socket=${{2##*/}}; shift ;; esac
  shift
done
[ -f "{answers}/$socket.out" ] && cat "{answers}/$socket.out"
[ -f "{answers}/$socket.err" ] && cat "{answers}/$socket.err" >&2
exit "$(cat "{answers}/$socket.rc" 2>/dev/null || echo 0)"
"""


def ip(*args):
    subprocess.run(("ip",) + args, check=True, capture_output=True, text=True)


def captured(name):
    return (CAPTURED / name).read_text()


def birdc_of(gateway):
    """birdc-established.txt is v1-1's view; v2-1's is the same session seen from the other end."""
    text = captured("birdc-established.txt")
    if gateway == "v2-1":
        text = text.replace("Neighbor address: 2001:db8:ff::191", "Neighbor address: 2001:db8:ff::190")
        text = text.replace("rv-21 ", "rv-11 ").replace("Neighbor AS:      65002", "Neighbor AS:      65001")
    return text


def xfrm_policy(public, direction, if_id=4296):
    local, remote = ("2001:db8:1::1", "2001:db8:2::1")
    ip("-n", public, "xfrm", "policy", "add", "dir", direction, "src", "::/0", "dst", "::/0", "if_id", str(if_id),
       "tmpl", "src", local if direction == "out" else remote,
       "dst", remote if direction == "out" else local, "proto", "esp", "mode", "tunnel")


def add_link_sas(public):
    """The link's two ESP SAs with the captured SPIs (a kernel with ESP only: the VM tier)."""
    for src, dst, spi in LINK_SAS:
        ip("-n", public, "xfrm", "state", "add", "src", src, "dst", dst, "proto", "esp", "spi", spi, "mode", "tunnel",
           "aead", "rfc4106(gcm(aes))", "0x" + "11" * 20, "128", "if_id", "4296")


@pytest.fixture
def mesh(tmp_path, scratch_netns_factory):
    public, far = scratch_netns_factory("rvpub"), scratch_netns_factory("rvfar")
    privates = {}
    answers = tmp_path / "answers"
    answers.mkdir()
    hostvars = inventory({1: 1, 2: 1})
    try:
        for gateway, (interface, address, peer, prefix) in GATEWAYS.items():
            private = privates[gateway] = "rvpriv-" + uuid.uuid4().hex[:6]
            ip("netns", "add", private)
            far_end = "far" + interface[-2:]
            ip("-n", private, "link", "add", interface, "type", "veth", "peer", "name", far_end, "netns", far)
            for netns, name in ((private, "lo"), (private, interface), (far, far_end)):
                ip("-n", netns, "link", "set", name, "up")
            ip("-n", private, "address", "add", address + "/127", "dev", interface, "nodad")
            ip("-n", private, "-6", "route", "add", prefix, "via", peer, "dev", interface, "proto", "bird",
               "metric", "32")
            for name in ("net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1",
                         "net.ipv6.conf.all.keep_addr_on_down=1"):
                ip("netns", "exec", private, "sysctl", "-qw", name)
            hostvars[gateway].update(routevpn_private_netns=private,
                                     routevpn_strongswan_vici_socket="%s/%s.vici" % (SOCKETS, gateway),
                                     routevpn_bird_control_socket="%s/%s.ctl" % (SOCKETS, gateway))
            (answers / ("%s.vici.out" % gateway)).write_text(captured("pair-up-%s.swanctl.pretty" % gateway))
            (answers / ("%s.ctl.out" % gateway)).write_text(birdc_of(gateway))
        for direction in ("in", "out", "fwd"):
            xfrm_policy(public, direction)
        if kernel_supports("esp"):
            add_link_sas(public)
        tools = tmp_path / "bin"
        tools.mkdir()
        for name in ("swanctl", "birdc"):
            path = tools / name
            path.write_text(FAKE_TOOL.format(name=name, answers=answers))
            path.chmod(path.stat().st_mode | stat.S_IXUSR)
        for variables in hostvars.values():
            variables["routevpn_sites"]["site1"]["prefixes"] = ["2001:db8:a1::/64"]
            variables["routevpn_sites"]["site2"]["prefixes"] = ["2001:db8:a2::/64"]
        inventory_path = write_inventory(tmp_path, hostvars)

        def verify(check=False, limit=None, inventory_file=inventory_path, extra=()):
            extra = (["--limit", limit] if limit else []) + list(extra)
            return run_playbook(tmp_path, inventory_file, "routevpn.mesh.verify", check=check, netns=public,
                                extra=extra, env={"PATH": "%s:%s" % (tools, os.environ["PATH"])})

        def charon_killed(gateway):
            """swanctl on ``gateway`` answers as it did with charon killed -9 there (capture.sh)."""
            refused = json.loads(captured("swanctl-refused.result.json"))
            socket = "%s/%s.vici" % (SOCKETS, gateway)
            (answers / ("%s.vici.out" % gateway)).write_text("")
            (answers / ("%s.vici.err" % gateway)).write_text(
                refused["stderr"].replace("/run/cap/a/charon.vici", socket))
            (answers / ("%s.vici.rc" % gateway)).write_text(str(refused["rc"]))

        yield {"public": public, "private": privates, "verify": verify, "charon_killed": charon_killed,
               "hostvars": hostvars, "tmp_path": tmp_path}
    finally:
        for private in privates.values():
            delete_netns(private)


def table(run):
    """The lines of the health table in the output of a run."""
    return re.findall(r'^\s+"(.*)",?$', run.output.split("TASK [Health of every link]", 1)[-1].split("TASK [", 1)[0],
                      re.MULTILINE)


def test_with_limit_the_peer_is_not_verified_and_the_run_passes(mesh, kernel_feature):
    """Also under --check (verify only reads): one run, since each costs minutes under TCG."""
    kernel_feature("esp")
    run = mesh["verify"](limit="v1-1,localhost", check=True)
    assert run.rc == 0, run
    assert run.changed("v1-1") == 0 and run.changed("localhost") == 0
    rows = table(run)
    assert re.match(r"v1-1 +v2-1 +11-21 .* not verified$", rows[1]), rows
    assert "v1-1 -> v2-1: not verified: peer v2-1 is not verified by this run (outside --limit)" in rows
    assert rows[-1] == "0 of 1 link ends healthy, 1 not verified (peer outside this run)"


def test_no_sa_in_the_kernel_is_down_on_both_ends(mesh):
    if kernel_supports("esp"):
        for src, dst, spi in LINK_SAS:
            ip("-n", mesh["public"], "xfrm", "state", "del", "src", src, "dst", dst, "proto", "esp", "spi", spi)
    run = mesh["verify"]()
    assert run.rc != 0, run
    rows = table(run)
    for gateway, peer in (("v1-1", "v2-1"), ("v2-1", "v1-1")):
        assert "%s -> %s: no inbound ESP SA in the kernel with if_id 4296" % (gateway, peer) in rows, rows
        assert "%s -> %s: no outbound ESP SA in the kernel with if_id 4296" % (gateway, peer) in rows, rows
    assert "2 link end(s) down" in run.output


def test_a_dead_charon_on_the_peer_is_named_on_the_survivor(mesh):
    """charon killed -9 on v2-1: its kernel keeps the SAs and v1-1 its IKE_SA; v1-1's end is down all the same."""
    mesh["charon_killed"]("v2-1")
    run = mesh["verify"]()
    assert run.rc != 0, run
    rows = table(run)
    socket = "%s/v2-1.vici" % SOCKETS
    assert ("v1-1 -> v2-1: link 11-21: peer v2-1 has no IKE_SA for it (charon is not running on v2-1: "
            "%s refused the connection)" % socket) in rows, rows
    assert "v2-1 -> v1-1: no IKE_SA rv-11 (charon is not running)" in rows, rows
    # The gateway-level problem: one line, none of swanctl's plugin noise or usage text.
    assert '"charon is not running: %s refused the connection"' % socket in run.output, run
    assert "failed to load" not in run.output and "usage" not in run.output
    assert "problems on v2-1" in run.output


def test_a_peer_that_does_not_report_leaves_the_other_end_down(mesh):
    """v2-1 cannot be reached: it is in the run but says nothing; v1-1's end cannot be proved healthy."""
    hostvars = mesh["hostvars"]
    hosts = dict((name, dict(variables, ansible_connection="local")) for name, variables in hostvars.items())
    hosts["v2-1"].update(ansible_connection="ssh", ansible_host="127.0.0.1", ansible_port=9,
                         ansible_ssh_common_args="-o ConnectTimeout=3 -o BatchMode=yes")
    path = mesh["tmp_path"] / "unreachable.yml"
    path.write_text(yaml.safe_dump({"routevpn_gateways": {"hosts": hosts}}))
    report_path = mesh["tmp_path"] / "health.json"
    run = mesh["verify"](inventory_file=path, extra=["-e", "routevpn_verify_report=%s" % report_path])
    assert run.rc != 0, run
    assert "v1-1 -> v2-1: link 11-21: peer v2-1 did not report" in table(run), run
    assert "no report from v2-1" in run.output
    # The report says the same: v2-1 silent, its end down for that, v1-1's for want of its peer.
    report = json.loads(report_path.read_text())
    assert [(gateway["gateway"], gateway["reported"], gateway["read_at"] is None) for gateway in report["gateways"]] \
        == [("v1-1", True, False), ("v2-1", False, True)]
    survivor, silent = report["link_ends"]
    assert "link 11-21: peer v2-1 did not report" in survivor["reasons"], survivor
    assert (silent["gateway"], silent["status"], silent["reasons"]) == ("v2-1", "DOWN", ["gateway v2-1 did not report"])


def test_a_missing_policy_fails_the_run_and_names_it(mesh):
    ip("-n", mesh["public"], "xfrm", "policy", "del", "dir", "in", "src", "::/0", "dst", "::/0", "if_id", "4296")
    run = mesh["verify"](limit="v1-1,localhost")
    assert run.rc != 0, run
    assert "4296 BAD" in run.output and "DOWN" in run.output
    assert "v1-1 -> v2-1: no XFRM policy with if_id 4296 for in" in table(run)
    assert "1 link end(s) down" in run.output
    assert run.changed("localhost") == 0, "no report is written unless routevpn_verify_report names a file"


def test_a_veth_between_the_namespaces_fails_the_run(mesh):
    private = mesh["private"]["v1-1"]
    ip("-n", mesh["public"], "link", "add", "leak0", "type", "veth", "peer", "name", "leak1", "netns", private)
    run = mesh["verify"](limit="v1-1,localhost")
    assert run.rc != 0, run
    assert not [line for line in table(run) if "leak" in line], "a leak is the gateway's problem, not the link's"
    assert ("leak: leak0 (veth) joins the public namespace to netns %s directly; only tunnel devices may cross"
            % private) in run.output, run
    assert "problems on v1-1" in run.output


def without_times(report):
    """The report without what changes at every run: when it was made and when each gateway was read."""
    report = json.loads(json.dumps(report))
    del report["generated_at"]
    for record in report["gateways"] + report["link_ends"]:
        record.pop("read_at")
    return report


def test_the_health_report_is_written_healthy_or_not_and_valid(mesh):
    """routevpn_verify_report: the JSON report of both ends, valid against its schema, before the verdict.

    Natively the kernel has no ESP, so both ends are down (no SA): the run fails and the report is there all
    the same.  A second run over the same state writes the same report but for its times; the file changed
    (new times), and the task says so.
    """
    path = mesh["tmp_path"] / "reports" / "health.json"
    path.parent.mkdir()
    extra = ["-e", "routevpn_verify_report=%s" % path]
    first = mesh["verify"](extra=extra)
    text = path.read_text()
    assert text.endswith("}\n"), "a text file: the last line ends too"
    report = json.loads(text)
    jsonschema.Draft202012Validator(json.loads(REPORT_SCHEMA.read_text())).validate(report)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert first.changed("localhost") == 1, first
    assert report["mesh"]["ok"] is (first.rc == 0), "the report's verdict is the run's (no --limit)"
    assert [(record["gateway"], record["peer"], record["link"], record["if_id"]) for record in report["link_ends"]] == [
        ("v1-1", "v2-1", "11-21", 4296), ("v2-1", "v1-1", "11-21", 4296)]
    assert [(gateway["gateway"], gateway["reported"]) for gateway in report["gateways"]] == [
        ("v1-1", True), ("v2-1", True)]
    for record in report["link_ends"]:
        assert record["read_at"] is not None and record["bgp"] == "Established", record
        assert record["ok"] is (record["reasons"] == []), record
    if not kernel_supports("esp"):
        assert first.rc != 0, first
        assert report["mesh"]["link_ends"]["down"] == 2
        assert "no inbound ESP SA in the kernel with if_id 4296" in report["link_ends"][0]["reasons"]

    second = mesh["verify"](extra=extra)
    again = json.loads(path.read_text())
    assert second.rc == first.rc and second.changed("localhost") == 1, second
    assert without_times(again) == without_times(report)
    assert again["generated_at"] >= report["generated_at"]


def test_the_health_picture_is_the_report_drawn_healthy_or_not(mesh):
    """routevpn_verify_svg beside routevpn_verify_report: the SVG is the report of the same run drawn, byte for byte,
    written before the verdict (natively both ends are down, the run fails), well-formed, 0644."""
    report_path, svg_path = mesh["tmp_path"] / "health.json", mesh["tmp_path"] / "pictures" / "mesh.svg"
    svg_path.parent.mkdir()
    run = mesh["verify"](extra=["-e", "routevpn_verify_report=%s" % report_path,
                                "-e", "routevpn_verify_svg=%s" % svg_path])
    text = svg_path.read_text()
    report = json.loads(report_path.read_text())
    assert text == health_svg(report), "the picture is the report's: one report made once, for both files"
    assert stat.S_IMODE(svg_path.stat().st_mode) == 0o644
    assert run.changed("localhost") == 2, run
    root = ET.fromstring(text.encode())
    svg = "{http://www.w3.org/2000/svg}"
    links = [group for group in root.iter(svg + "g") if "link" in (group.get("class") or "").split()]
    assert [(group.get("data-link"), group.get("data-status")) for group in links] == [
        ("11-21", "ok" if report["mesh"]["ok"] else "DOWN")]
    assert sorted(group.get("data-name") for group in root.iter(svg + "g") if group.get("data-name")) == [
        "v1-1", "v2-1"]
    if not kernel_supports("esp"):
        assert run.rc != 0, run
        tooltip = links[0].find(svg + "title").text
        assert "v1-1 -> v2-1: DOWN\n  no inbound ESP SA in the kernel with if_id 4296" in tooltip, tooltip
        assert "0 of 2 link ends healthy, 2 DOWN; 2 of 2 gateways reported" in text


def test_the_picture_alone_needs_no_report_file(mesh):
    """routevpn_verify_svg without routevpn_verify_report: the picture, and no JSON anywhere; --check says it would
    write it, and writes nothing."""
    svg_path = mesh["tmp_path"] / "mesh.svg"
    checked = mesh["verify"](check=True, extra=["-e", "routevpn_verify_svg=%s" % svg_path])
    assert not svg_path.exists() and checked.changed("localhost") == 1, checked
    run = mesh["verify"](extra=["-e", "routevpn_verify_svg=%s" % svg_path])
    assert run.changed("localhost") == 1, run
    ET.fromstring(svg_path.read_bytes())
    assert list(mesh["tmp_path"].glob("*.json")) == []


def test_the_fake_tools_answer_per_socket(mesh, tmp_path):
    """The stand-ins themselves: each socket gets its own gateway's capture."""
    env = ansible_env(tmp_path)
    swanctl = str(tmp_path / "bin" / "swanctl")
    one = subprocess.run([swanctl, "--list-sas", "--pretty", "--uri", "unix://%s/v1-1.vici" % SOCKETS],
                         capture_output=True, text=True, env=env, check=True)
    two = subprocess.run([swanctl, "--list-sas", "--pretty", "--uri", "unix://%s/v2-1.vici" % SOCKETS],
                         capture_output=True, text=True, env=env, check=True)
    assert "rv-21 {" in one.stdout and "rv-11 {" in two.stdout
