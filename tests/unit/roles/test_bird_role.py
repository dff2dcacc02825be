"""The bird role against real BIRD daemons, natively.

Each gateway's private namespace is a scratch namespace; the role starts
BIRD there itself (routevpn_service_manager: direct).  Veth pairs named as
the plan names the tunnel interfaces stand in for XFRM interfaces (this
kernel has none), with the plan's transfer addresses, so that BGP between
role-configured gateways comes up for real: what each site announces and
accepts, and ECMP into the kernel, are then read back from BIRD and from the
kernel, not from the template.
"""

import ipaddress
import json
import os
import pathlib
import shutil
import signal
import uuid
from types import SimpleNamespace

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan

from .mesh_roles import (documented_variables, lab_hostvars, run, run_role, wait_until, write_inventory,
                         write_role_playbook)

ROLE = "routevpn.mesh.bird"
BIRD = "/usr/sbin/bird"

pytestmark = pytest.mark.skipif(not os.path.exists(BIRD), reason="bird2 is not installed")


def plan_of(hostvars):
    return plan(hostvars, sorted(hostvars))


def stop_bird(pid_file):
    try:
        pid = int(pathlib.Path(pid_file).read_text().strip())
        if os.readlink("/proc/%d/exe" % pid) == BIRD:
            os.kill(pid, signal.SIGTERM)
    except (OSError, ValueError):
        pass


@pytest.fixture
def gateways(scratch_netns_factory):
    """make(host, lan=[addresses]) -> a gateway: its private namespace, scratch tree and role variables."""
    made = []

    def make(host, lan=(), **variables):
        netns = scratch_netns_factory("rvbp")
        run("ip", "-n", netns, "link", "set", "lo", "up")
        # BIRD reads its configuration as user bird on `configure`: not under
        # pytest's private tmp directories.
        base = pathlib.Path("/run") / ("rvbt-" + uuid.uuid4().hex[:8])
        base.mkdir(mode=0o755)
        interfaces = []
        if lan:
            run("ip", "-n", netns, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
            for address in lan:
                run("ip", "-n", netns, "addr", "add", address, "dev", "lan0", "nodad")
            run("ip", "-n", netns, "link", "set", "lan0", "up")
            run("ip", "-n", netns, "link", "set", "lan1", "up")
            interfaces = ["lan0"]
        gateway = SimpleNamespace(
            host=host, netns=netns, base=base, config=base / "etc" / ("routevpn-%s.conf" % netns),
            socket=str(base / "run" / (netns + ".ctl")), pid_file=str(base / "run" / (netns + ".pid")),
            variables=dict({
                "routevpn_bird_packages": [],
                "routevpn_service_manager": "direct",
                "routevpn_private_netns": netns,
                "routevpn_private_interfaces": interfaces,
                "routevpn_bird_config_dir": str(base / "etc"),
                "routevpn_bird_run_dir": str(base / "run"),
                "routevpn_systemd_unit_dir": str(base / "systemd"),
            }, **variables))
        (base / "systemd").mkdir()
        made.append(gateway)
        return gateway

    try:
        yield make
    finally:
        for gateway in made:
            stop_bird(gateway.pid_file)
            shutil.rmtree(str(gateway.base), ignore_errors=True)


def apply(tmp_path, gateways_, hostvars, check=False, extra_vars=None):
    gateways_ = gateways_ if isinstance(gateways_, list) else [gateways_]
    inventory = write_inventory(tmp_path, hostvars, dict((g.host, g.variables) for g in gateways_))
    return run_role(tmp_path, inventory, write_role_playbook(tmp_path, ROLE), ",".join(g.host for g in gateways_),
                    check=check, extra_vars=extra_vars)


def birdc(gateway, *command):
    return run("birdc", "-s", gateway.socket, *command, check=False).stdout


def protocols(gateway):
    """{name: (proto, state, info)} from `birdc show protocols`."""
    found = {}
    for line in birdc(gateway, "show", "protocols").splitlines()[2:]:
        fields = line.split(None, 5)
        if len(fields) >= 4:
            found[fields[0]] = (fields[1], fields[3], fields[5].strip() if len(fields) > 5 else "")
    return found


def bgp_sessions(gateway):
    return dict((name, info) for name, (proto, dummy, info) in protocols(gateway).items() if proto == "BGP")


def exported_by(gateway, protocol):
    """Prefixes BIRD sends to a BGP peer (`show route export`)."""
    output = birdc(gateway, "show", "route", "export", "'%s'" % protocol)
    return sorted(set(line.split()[0] for line in output.splitlines()
                      if line and not line[0].isspace() and "/" in line.split()[0]))


def kernel_routes(gateway, family):
    output = run("ip", "-j", "-" + family, "-n", gateway.netns, "route", "show", "proto", "bird").stdout
    routes = {}
    for route in json.loads(output or "[]"):
        hops = route.get("nexthops") or [route]
        routes[route["dst"]] = sorted(hop.get("dev") for hop in hops)
    return routes


def test_check_apply_idempotent_and_parsed_by_bird(tmp_path, gateways):
    gateway = gateways("v1-1", lan=["10.1.1.1/24", "2001:db8:a1::1/64"])
    hostvars = lab_hostvars()
    ends = plan_of(hostvars)["hosts"]["v1-1"]

    checked = apply(tmp_path, gateway, hostvars, check=True)
    assert checked.rc == 0 and checked.changed("v1-1") > 0, checked
    assert not gateway.config.exists()

    applied = apply(tmp_path, gateway, hostvars)
    assert applied.rc == 0 and applied.changed("v1-1") > 0, applied
    parsed = run("bird", "-p", "-c", str(gateway.config), check=False)
    assert parsed.returncode == 0, parsed.stderr
    assert oct(gateway.config.stat().st_mode & 0o777) == "0o640"
    # Debian's own unit, which would run BIRD in the public namespace, is masked.
    assert os.readlink(str(gateway.base / "systemd" / "bird.service")) == "/dev/null"

    found = protocols(gateway)
    sessions = bgp_sessions(gateway)
    assert sorted(sessions) == sorted("%s-%s" % (end["connection"], family) for end in ends for family in ("v4", "v6"))
    assert {"routevpn_ospf_v4", "routevpn_ospf_v6", "routevpn_kernel_v4", "routevpn_kernel_v6",
            "routevpn_lan"} <= set(found)
    for end in ends:
        detail = birdc(gateway, "show", "protocols", "all", "'%s-v6'" % end["connection"])
        assert "Neighbor address: %s" % end["peer_address_v6"] in detail
        assert "Neighbor AS:      %d" % end["peer_asn"] in detail
    assert "routevpn_bfd" in found
    assert gateway.config.read_text().count("bfd on;") == len(sessions)

    again = apply(tmp_path, gateway, hostvars)
    assert again.rc == 0 and again.changed("v1-1") == 0, again
    checked_again = apply(tmp_path, gateway, hostvars, check=True)
    assert checked_again.rc == 0 and checked_again.changed("v1-1") == 0, checked_again

    # BFD off: a reload, not a restart (the same BIRD process).
    pid = pathlib.Path(gateway.pid_file).read_text()
    without_bfd = apply(tmp_path, gateway, hostvars, extra_vars={"routevpn_bfd": False})
    assert without_bfd.rc == 0 and without_bfd.changed("v1-1") > 0, without_bfd
    assert "routevpn_bfd" not in protocols(gateway)
    assert gateway.config.read_text().count("bfd off;") == len(sessions)
    assert pathlib.Path(gateway.pid_file).read_text() == pid


def test_file_bird_refuses_never_replaces_the_working_one(tmp_path, gateways):
    gateway = gateways("v1-1")
    hostvars = lab_hostvars()
    assert apply(tmp_path, gateway, hostvars).rc == 0
    before = gateway.config.read_bytes()
    sessions = bgp_sessions(gateway)

    refused = apply(tmp_path, gateway, hostvars, extra_vars={"routevpn_bird_extra_config": "protocol nonsense {"})
    assert refused.rc != 0 and "failed to validate" in refused.output, refused
    assert gateway.config.read_bytes() == before
    assert bgp_sessions(gateway).keys() == sessions.keys()


def _tunnel(one, other, name_in_one, name_in_other):
    """A veth pair standing in for the XFRM interfaces of one link."""
    temporary = "rvbt" + uuid.uuid4().hex[:8]
    run("ip", "-n", one.netns, "link", "add", name_in_one, "type", "veth", "peer", "name", temporary,
        "netns", other.netns)
    run("ip", "-n", other.netns, "link", "set", temporary, "name", name_in_other)


def _address(gateway, end):
    for family in ("v6", "v4"):
        run("ip", "-n", gateway.netns, "addr", "add", end["address_" + family], "dev", end["interface"], "nodad")
    run("ip", "-n", gateway.netns, "link", "set", end["interface"], "up")


def test_sites_exchange_only_their_private_routes_with_ecmp(tmp_path, gateways):
    hostvars = lab_hostvars()
    the_plan = plan_of(hostvars)
    static = {"routevpn_bird_private_protocol": "none"}
    # v1-1's LAN: one network inside site1's prefixes, one outside them.
    v11 = gateways("v1-1", lan=["10.1.1.1/24", "192.168.77.1/24", "2001:db8:a1::1/64"], **static)
    v21 = gateways("v2-1", **static)
    v22 = gateways("v2-2", **static)
    ends = dict(((end["gateway"], end["peer"]), end) for end in the_plan["links"] for end in end["ends"])
    for peer in (v21, v22):
        mine, theirs = ends[("v1-1", peer.host)], ends[(peer.host, "v1-1")]
        _tunnel(v11, peer, mine["interface"], theirs["interface"])
        _address(v11, mine)
        _address(peer, theirs)

    applied = apply(tmp_path, [v11, v21, v22], hostvars)
    assert applied.rc == 0, applied

    up = ["rv-21-v6", "rv-21-v4", "rv-22-v6", "rv-22-v4"]
    wait_until(lambda: all(bgp_sessions(v11).get(name, "").startswith("Established") for name in up), 60,
               message="BGP sessions of v1-1 Established: %s" % up)

    # What site1 announces: its listed prefixes and the LAN network inside them; not
    # 192.168.77.0/24 (outside the list), not a transfer network, not a default route.
    assert exported_by(v11, "rv-21-v4") == ["10.1.0.0/16", "10.1.1.0/24"]
    assert exported_by(v11, "rv-21-v6") == ["2001:db8:a1::/64"]
    # What site2 announces back: only site2's prefixes (no transit of site1's).
    assert exported_by(v21, "rv-11-v6") == ["2001:db8:a2::/64"]

    # ECMP: site2's prefixes reach v1-1's kernel with a next hop over each tunnel.  Each family's
    # routes come over its own sessions, which may settle seconds apart.
    for family, prefix in (("6", "2001:db8:a2::/64"), ("4", "10.2.0.0/16")):
        wait_until(lambda family=family, prefix=prefix: kernel_routes(v11, family).get(prefix) == ["rv-21", "rv-22"],
                   30, message="%s over rv-21 and rv-22 in v1-1's kernel" % prefix)
    # Learned routes go to the kernel; the blackhole anchors do not.
    assert "10.1.0.0/16" not in kernel_routes(v11, "4")
    transfer = ipaddress.ip_network(hostvars["v1-1"]["routevpn_transfer_prefix_v6"])
    assert not [dst for dst in kernel_routes(v21, "6") if ipaddress.ip_network(dst).subnet_of(transfer)]

    again = apply(tmp_path, [v11, v21, v22], hostvars)
    assert again.rc == 0 and sum(again.changed(g) for g in ("v1-1", "v2-1", "v2-2")) == 0, again

    # v2-2 leaves the mesh: v1-1 drops its sessions on reload, the route keeps one path.
    removed = apply(tmp_path, v11, lab_hostvars(drop=["v2-2"]))
    assert removed.rc == 0 and removed.changed("v1-1") > 0, removed
    assert not [name for name in bgp_sessions(v11) if name.startswith("rv-22-")]
    assert bgp_sessions(v11)["rv-21-v6"].startswith("Established")
    wait_until(lambda: kernel_routes(v11, "6").get("2001:db8:a2::/64") == ["rv-21"], 30,
               message="2001:db8:a2::/64 over rv-21 only")


ROUTER_CONF = """\
router id 10.1.0.254;
protocol device { }
protocol direct { ipv4; ipv6; interface "net0"; }
protocol kernel { ipv4 { export all; }; merge paths on; }
protocol kernel { ipv6 { export all; }; merge paths on; }
protocol ospf v2 {
  ecmp yes; merge external yes;
  ipv4 { import all; export where source = RTS_DEVICE; };
  area 0 { interface "br0" { hello 1; dead 4; }; };
}
protocol ospf v3 {
  ecmp yes; merge external yes;
  ipv6 { import all; export where source = RTS_DEVICE; };
  area 0 { interface "br0" { hello 1; dead 4; }; };
}
"""


def test_site_routers_over_ospf_and_sibling_gateways(tmp_path, gateways, scratch_netns_factory):
    """R1 behind v1-1 and v1-2 (OSPF on one LAN), v2-1 across two tunnels.

    Site1's networks come from R1 (as OSPF externals), reach site2 over both
    gateways; site2's come back over BGP and reach R1 from both gateways.
    Each gateway keeps its own tunnel for site2, never its sibling's route.
    """
    hostvars = lab_hostvars()
    ends = dict(((end["gateway"], end["peer"]), end) for link in plan_of(hostvars)["links"] for end in link["ends"])
    router = scratch_netns_factory("rvbr")
    run("ip", "-n", router, "link", "set", "lo", "up")
    run("ip", "-n", router, "link", "add", "br0", "type", "bridge")
    run("ip", "-n", router, "addr", "add", "10.1.0.254/24", "dev", "br0")
    run("ip", "-n", router, "link", "set", "br0", "up")
    run("ip", "-n", router, "link", "add", "net0", "type", "veth", "peer", "name", "net1")
    run("ip", "-n", router, "addr", "add", "10.1.5.1/24", "dev", "net0")
    run("ip", "-n", router, "addr", "add", "2001:db8:a1::1/64", "dev", "net0", "nodad")
    for name in ("net0", "net1"):
        run("ip", "-n", router, "link", "set", name, "up")

    site1 = []
    for number, host in enumerate(("v1-1", "v1-2"), 1):
        gateway = gateways(host)
        run("ip", "-n", router, "link", "add", "port%d" % number, "type", "veth", "peer", "name", "lan0",
            "netns", gateway.netns)
        run("ip", "-n", router, "link", "set", "port%d" % number, "master", "br0", "up")
        run("ip", "-n", gateway.netns, "addr", "add", "10.1.0.%d/24" % number, "dev", "lan0")
        run("ip", "-n", gateway.netns, "link", "set", "lan0", "up")
        gateway.variables["routevpn_private_interfaces"] = ["lan0"]
        site1.append(gateway)
    v21 = gateways("v2-1", routevpn_bird_private_protocol="none")
    for gateway in site1:
        mine, theirs = ends[(gateway.host, "v2-1")], ends[("v2-1", gateway.host)]
        _tunnel(gateway, v21, mine["interface"], theirs["interface"])
        _address(gateway, mine)
        _address(v21, theirs)

    router_conf = site1[0].base / "router.conf"
    router_conf.write_text(ROUTER_CONF)
    router_pid = str(site1[0].base / "router.pid")
    run("ip", "netns", "exec", router, "bird", "-c", str(router_conf), "-s", str(site1[0].base / "router.ctl"),
        "-P", router_pid)
    try:
        applied = apply(tmp_path, site1 + [v21], hostvars)
        assert applied.rc == 0, applied

        # Site1's networks, learned from R1, reach site2 over both gateways.
        for family, prefix in (("6", "2001:db8:a1::/64"), ("4", "10.1.5.0/24")):
            wait_until(lambda family=family, prefix=prefix:
                       kernel_routes(v21, family).get(prefix) == ["rv-11", "rv-12"],
                       90, message="%s over rv-11 and rv-12 in v2-1's kernel" % prefix)
        assert exported_by(site1[0], "rv-21-v4") == ["10.1.0.0/24", "10.1.5.0/24"]
        assert exported_by(site1[0], "rv-21-v6") == ["2001:db8:a1::/64"]

        # Site2's networks reach R1 from both gateways (OSPF externals, ECMP).
        wait_until(lambda: kernel_routes(SimpleNamespace(netns=router), "6").get("2001:db8:a2::/64") == ["br0", "br0"],
                   30, message="2001:db8:a2::/64 via both gateways in R1's kernel")
        # Each gateway uses its own tunnel, not its sibling's route over the LAN.
        for gateway in site1:
            assert kernel_routes(gateway, "6").get("2001:db8:a2::/64") == ["rv-21"]
            assert kernel_routes(gateway, "4").get("10.2.0.0/16") == ["rv-21"]
    finally:
        stop_bird(router_pid)


def _render(template, variables):
    """Render a role template with Ansible's own templating, as the template module would."""
    from .role_runner import render

    return render(template, variables)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_unit_accepted_by_systemd_next_to_the_namespace_unit(tmp_path):
    """systemd's own parser accepts the unit, and finds the private_netns role's unit it requires."""
    import yaml

    from ..collection_paths import COLLECTION_ROOT

    roles = COLLECTION_ROOT / "roles"
    variables = yaml.safe_load((roles / "bird" / "defaults" / "main.yml").read_text())
    variables.update(yaml.safe_load((roles / "bird" / "vars" / "main.yml").read_text()))
    variables["routevpn_private_netns"] = "private"
    (tmp_path / "routevpn-bird@private.service").write_text(
        _render(roles / "bird" / "templates" / "routevpn-bird.service.j2", variables))
    netns_template = roles / "private_netns" / "templates" / "routevpn-netns@.service.j2"
    if netns_template.exists():
        netns_vars = yaml.safe_load((roles / "private_netns" / "defaults" / "main.yml").read_text())
        netns_vars.update(ansible_managed="test", routevpn_libexec_dir=str(tmp_path))
        (tmp_path / "routevpn-netns@.service").write_text(_render(netns_template, netns_vars))
        script = tmp_path / "routevpn-netns"
        script.write_text("#!/bin/sh\n")
        script.chmod(0o755)
    verified = run("systemd-analyze", "verify", "--man=no", str(tmp_path / "routevpn-bird@private.service"),
                   check=False)
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr


def test_readme_documents_every_variable_of_the_argument_specs():
    spec, table, defaults = documented_variables("bird")
    assert table == spec
    assert set(defaults) <= set(spec), set(defaults) - set(spec)
