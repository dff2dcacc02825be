"""The tunnels role, run by ansible-playbook against this machine (connection local).

This machine's kernel has no XFRM interfaces or VTI: natively the role is run
in check mode against a real namespace, up to the module's kernel error, and
the parts that need no tunnel device (the MSS rules, the boot unit's code
and state: their own task files) for real.  The kernel tier (tests/vm/run)
runs the whole role on Debian's kernel.
"""

import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.routevpn.mesh.plugins.action.tunnels_boot import build_archive
from ansible_collections.routevpn.mesh.plugins.filter.mesh_tunnels import mesh_tunnels
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan

from ..collection_paths import COLLECTION_ROOT
from ..conftest import kernel_supports
from ..module_runner import addresses_of, if_id_of, link_of, run_module
from ..plugins.module_utils.mesh_inventory import inventory
from .mesh_roles import documented_variables
from .role_runner import render, run_playbook, systemd_unit_dir_held, write_inventory, write_playbook

UNIT_DIR = "/etc/systemd/system"
BOOT_MODULE = "ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnels_boot"


def mesh_plan(layout, **per_host):
    hostvars = inventory(layout)
    for host, variables in per_host.items():
        hostvars[host].update(variables)
    return plan(hostvars, sorted(hostvars))


def planned(interfaces):
    return [(i["name"], i["if_id"], sorted(i["addresses"]), i["netns"], i["mtu"]) for i in interfaces]


@pytest.fixture
def gateway(tmp_path, scratch_netns):
    """Run the tunnels role as gateway v1-1 of a given plan, into a scratch namespace."""
    made = {"netns": scratch_netns, "tmp": tmp_path}
    unit_dir_was_writable = os.access(UNIT_DIR, os.W_OK)
    if not unit_dir_was_writable and os.environ.get("ROUTEVPN_IN_VM") == "1":
        # The VM shares this machine's root read-only; give systemctl a writable unit directory.
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", UNIT_DIR], check=True)

    def run(mesh, check=False, host="v1-1", **variables):
        base = {
            "routevpn_mesh_plan": mesh,
            "routevpn_private_netns": scratch_netns,
            "routevpn_tunnels_config_dir": str(tmp_path / "etc"),
            "routevpn_libexec_dir": str(tmp_path / "libexec"),
            "routevpn_service_manager": "direct",
        }
        base.update(variables)
        inventory_path = write_inventory(tmp_path, {host: base})
        playbook = write_playbook(tmp_path, [{"hosts": "routevpn_gateways", "gather_facts": False,
                                              "roles": ["routevpn.mesh.tunnels"]}])
        return run_playbook(tmp_path, inventory_path, playbook, check=check, extra=["-v"])

    def run_mss(mesh, check=False, host="v1-1", **variables):
        """The role's MSS tasks alone (tasks/mss.yml) on the lists its main tasks compute: every end of a plan
        is a device now, and this kernel can make none of them."""
        base = {
            "routevpn_mesh_plan": mesh,
            "routevpn_private_netns": scratch_netns,
            "routevpn_tunnels_config_dir": str(tmp_path / "etc"),
        }
        base.update(variables)
        inventory_path = write_inventory(tmp_path, {host: base})
        playbook = write_playbook(tmp_path, [{"hosts": "routevpn_gateways", "gather_facts": False, "tasks": [
            {"name": "Tunnel lists of this gateway, as tasks/main.yml computes them", "ansible.builtin.set_fact": {
                "__routevpn_tunnels": "{{ routevpn_mesh_plan.hosts[inventory_hostname]"
                                      " | routevpn.mesh.mesh_tunnels(netns=routevpn_private_netns) }}"}},
            {"name": "The namespace, as tasks/main.yml looks for it", "ansible.builtin.stat": {
                "path": "/run/netns/{{ routevpn_private_netns }}", "get_checksum": False, "get_mime": False,
                "get_attributes": False}, "register": "__routevpn_tunnels_netns"},
            {"name": "The role's MSS tasks", "ansible.builtin.include_role": {
                "name": "routevpn.mesh.tunnels", "tasks_from": "mss.yml"}},
        ]}], name="mss.yml")
        return run_playbook(tmp_path, inventory_path, playbook, check=check, extra=["-v"])

    def run_boot(mesh, check=False, host="v1-1", **variables):
        """The role's boot unit tasks alone (tasks/boot_unit.yml) on the lists its main tasks compute."""
        base = {
            "routevpn_mesh_plan": mesh,
            "routevpn_private_netns": scratch_netns,
            "routevpn_tunnels_config_dir": str(tmp_path / "etc"),
            "routevpn_libexec_dir": str(tmp_path / "libexec"),
            "routevpn_service_manager": "direct",
        }
        base.update(variables)
        inventory_path = write_inventory(tmp_path, {host: base})
        playbook = write_playbook(tmp_path, [{"hosts": "routevpn_gateways", "gather_facts": False, "tasks": [
            {"name": "Tunnel lists of this gateway, as tasks/main.yml computes them", "ansible.builtin.set_fact": {
                "__routevpn_tunnels": "{{ routevpn_mesh_plan.hosts[inventory_hostname]"
                                      " | routevpn.mesh.mesh_tunnels(netns=routevpn_private_netns) }}"}},
            {"name": "The role's boot unit tasks", "ansible.builtin.include_role": {
                "name": "routevpn.mesh.tunnels", "tasks_from": "boot_unit.yml"}},
        ]}], name="boot_unit.yml")
        return run_playbook(tmp_path, inventory_path, playbook, check=check, extra=["-v"])

    made["run"] = run
    made["run_mss"] = run_mss
    made["run_boot"] = run_boot
    with systemd_unit_dir_held():
        try:
            yield made
        finally:
            for name in ("rv-21", "rv-22", "rv-31"):
                subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
            wants = os.path.join(UNIT_DIR, "multi-user.target.wants", "routevpn-tunnels@%s.service" % scratch_netns)
            for path in (wants, os.path.join(UNIT_DIR, "routevpn-tunnels@.service")):
                if os.path.lexists(path):
                    os.unlink(path)


@pytest.mark.parametrize("ike_daemon", ["strongswan", "libreswan"])
def test_check_mode_reports_every_planned_interface(gateway, ike_daemon):
    """A libreswan end's XFRM interface is made like a strongSwan end's (libreswan 5.2, unmanaged ipsec-interface)."""
    mesh = mesh_plan({1: 1, 2: 2}, **{"v1-1": {"routevpn_ike_daemon": ike_daemon}})
    checked = gateway["run"](mesh, check=True)
    assert checked.rc == 0 and checked.changed("v1-1") > 0, checked
    (result,) = checked.task_results("XFRM interfaces")
    assert planned(result["interfaces"]) == [
        (end["interface"], end["if_id"], sorted([end["address_v6"], end["address_v4"]]), gateway["netns"], 1500)
        for end in mesh["hosts"]["v1-1"]]
    for end in mesh["hosts"]["v1-1"]:
        assert "%s: create xfrm in netns %s" % (end["interface"], gateway["netns"]) in result["changes"]
        assert link_of(end["interface"]) is None and link_of(end["interface"], netns=gateway["netns"]) is None


def test_check_mode_before_the_namespace_exists_skips_the_tunnels(gateway):
    checked = gateway["run"](mesh_plan({1: 1, 2: 1}), check=True, routevpn_private_netns="rvpriv-missing")
    assert checked.rc == 0, checked
    assert "create xfrm" not in checked.output


def test_vti_ends_get_their_endpoints_and_both_transfer_addresses(gateway):
    mesh = mesh_plan({1: 1, 2: 1}, **{"v1-1": {"routevpn_tunnel_type": "vti"}})
    checked = gateway["run"](mesh, check=True)
    assert checked.rc == 0, checked
    end = mesh["hosts"]["v1-1"][0]
    (result,) = checked.task_results("VTI devices")
    assert "rv-21: create vti6 in netns %s" % gateway["netns"] in result["changes"]
    (device,) = result["interfaces"]
    assert (device["local"], device["remote"], device["ikey"], device["okey"], sorted(device["addresses"])) == (
        end["local_ike_address"], end["remote_ike_address"], end["mark"], end["mark"],
        sorted([end["address_v6"], end["address_v4"]]))


@pytest.mark.skipif(kernel_supports("xfrm_interface"), reason="this kernel has XFRM interfaces")
def test_a_real_run_without_xfrm_interfaces_stops_with_the_modules_error(gateway):
    failed = gateway["run"](mesh_plan({1: 1, 2: 1}))
    assert failed.rc != 0, failed
    assert re.search(r"rv-21: (this|the) kernel has no xfrm \w* ?support", failed.output), failed
    assert "xfrm_interface" in failed.output


def nft_table(netns):
    proc = subprocess.run(["ip", "netns", "exec", netns, "nft", "-j", "list", "table", "inet", "routevpn_mss"],
                          capture_output=True, text=True, check=False)
    return json.loads(proc.stdout)["nftables"] if proc.returncode == 0 else None


def test_mss_rules_follow_the_plan(gateway):
    mesh = mesh_plan({1: 1, 2: 2}, **{"v1-1": {"routevpn_ike_daemon": "libreswan"}})
    names = [end["interface"] for end in mesh["hosts"]["v1-1"]]
    assert names == ["rv-21", "rv-22"], "a libreswan end's device is the collection's rv-* interface"
    applied = gateway["run_mss"](mesh, routevpn_tcp_mss_clamp=True)
    assert applied.rc == 0 and applied.changed("v1-1") > 0, applied
    rules = [item["rule"] for item in nft_table(gateway["netns"]) if "rule" in item]
    assert len(rules) == 1
    assert sorted(rules[0]["expr"][0]["match"]["right"]["set"]) == sorted(names)
    assert "rt mtu" in open(gateway["tmp"] / "etc" / (gateway["netns"] + "-mss.nft")).read()

    # The package step ran above; later runs skip it (apt costs seconds).
    again = gateway["run_mss"](mesh, routevpn_tcp_mss_clamp=True, routevpn_tunnels_packages=[])
    assert again.rc == 0 and again.changed("v1-1") == 0, again

    # Rules lost (a reboot without the unit, or by hand): reloaded.
    subprocess.run(["ip", "netns", "exec", gateway["netns"], "nft", "delete", "table", "inet", "routevpn_mss"],
                   check=True)
    assert gateway["run_mss"](mesh, routevpn_tcp_mss_clamp=True, routevpn_tunnels_packages=[]).changed("v1-1") == 1
    assert nft_table(gateway["netns"]) is not None

    off = gateway["run_mss"](mesh, routevpn_tcp_mss_clamp=False)
    assert off.rc == 0 and off.changed("v1-1") == 2, off
    assert nft_table(gateway["netns"]) is None
    assert gateway["run_mss"](mesh, routevpn_tcp_mss_clamp=False).changed("v1-1") == 0


def unit_command(netns):
    """The installed unit's ExecStart for instance ``netns``, and its environment (Environment=)."""
    unit = open(os.path.join(UNIT_DIR, "routevpn-tunnels@.service")).read()
    lines = dict(line.split("=", 1) for line in unit.splitlines() if line.startswith(("ExecStart=", "Environment=")))
    name, value = lines["Environment"].split("=", 1)
    return lines["ExecStart"].replace("%i", netns).split(), {name: value}


def _boot(gateway):
    """What systemd runs at boot: the unit's command line, with its environment."""
    command, environment = unit_command(gateway["netns"])
    return subprocess.run(command, capture_output=True, text=True, check=False, cwd="/",
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **environment})


def test_boot_unit_tasks_install_the_archive_and_the_state_once(gateway):
    """Check mode writes nothing; a run writes the archive and NETNS.json and removes an earlier version's script
    and state file; a second run and check mode change nothing; the unit runs the archive's code."""
    netns, tmp = gateway["netns"], gateway["tmp"]
    mesh = mesh_plan({1: 1, 2: 2}, **{"v1-1": {"routevpn_tunnel_type": "vti"}})
    (tmp / "libexec").mkdir()
    (tmp / "etc").mkdir()
    (tmp / "libexec" / "routevpn-tunnels").write_text("#!/bin/sh\n# routevpn-tunnels up NAMESPACE [CONFIG]\n")
    (tmp / "etc" / (netns + ".conf")).write_text(
        "# Ansible managed\n# Read at boot by routevpn-tunnels@%s.service (/usr/local/libexec/routevpn/"
        "routevpn-tunnels).\nvti rv-21 vti6 2001:db8::1 2001:db8::2 4296 4296 1500\n" % netns)
    zip_path, json_path = tmp / "libexec" / "routevpn-mesh-boot.zip", tmp / "etc" / (netns + ".json")

    checked = gateway["run_boot"](mesh, check=True, routevpn_tcp_mss_clamp=True)
    assert checked.rc == 0 and checked.changed("v1-1") > 0, checked
    (result,) = checked.task_results("Code and state with which the boot unit")
    assert result["changed"] and result["written"] == [str(zip_path), str(json_path)], result
    assert not zip_path.exists() and not json_path.exists() and (tmp / "libexec" / "routevpn-tunnels").exists()

    applied = gateway["run_boot"](mesh, routevpn_tcp_mss_clamp=True)
    assert applied.rc == 0 and applied.changed("v1-1") > 0, applied
    assert zip_path.read_bytes() == build_archive()
    state = json.loads(json_path.read_text())
    tunnels = mesh_tunnels(mesh["hosts"]["v1-1"], netns=netns)
    assert state == {"netns": netns, "xfrm": [], "vti": tunnels["vti"],
                     "mss_file": str(tmp / "etc" / (netns + "-mss.nft"))}, state
    assert sorted(os.listdir(tmp / "libexec")) == ["routevpn-mesh-boot.zip"]
    assert sorted(os.listdir(tmp / "etc")) == [netns + ".json"]
    command, environment = unit_command(netns)
    assert command == ["/usr/bin/python3", "-m", BOOT_MODULE, "up", netns, str(json_path)], command
    assert environment == {"PYTHONPATH": str(zip_path)}, environment

    for check in (False, True):
        again = gateway["run_boot"](mesh, check=check, routevpn_tcp_mss_clamp=True)
        assert again.rc == 0 and again.changed("v1-1") == 0, again

    # The unit's command reads what the tasks wrote (this kernel may lack VTI: then it names each device).
    booted = _boot(gateway)
    if kernel_supports("vti6"):
        assert booted.returncode == 0, booted.stderr
    else:
        assert booted.returncode == 1 and "rv-21: the kernel has no vti6 support (modprobe ip6_vti)" in booted.stderr
    assert "is missing" not in booted.stderr and "Traceback" not in booted.stderr, booted.stderr

    # Clamping off: the state names no MSS file any more.
    off = gateway["run_boot"](mesh, routevpn_tcp_mss_clamp=False)
    assert off.rc == 0 and off.changed("v1-1") == 1, off
    assert json.loads(json_path.read_text())["mss_file"] is None


def test_tunnels_on_a_real_kernel(gateway, kernel_feature):
    """Kernel tier: apply, then the boot unit's script after a "reboot".

    One playbook run only: under TCG it takes about seven minutes.  A second
    run (idempotence) and a link leaving the plan are checked on a real
    kernel by the lab's Molecule scenario (molecule/default: idempotence,
    removal of v3-1); the engine's removal of unlisted links natively in
    tests/unit/plugins/module_utils/test_netlink_links.py.
    """
    kernel_feature("xfrm_interface")
    netns = gateway["netns"]
    mesh = mesh_plan({1: 1, 2: 2})
    applied = gateway["run"](mesh, routevpn_tcp_mss_clamp=True, routevpn_tunnels_packages=[])
    assert applied.rc == 0 and applied.changed("v1-1") > 0, applied
    for end in mesh["hosts"]["v1-1"]:
        link = link_of(end["interface"], netns=netns)
        assert link is not None and "UP" in link["flags"] and link["mtu"] == 1500, link
        assert link["linkinfo"]["info_kind"] == "xfrm" and if_id_of(link) == end["if_id"]
        assert addresses_of(end["interface"], netns=netns) == sorted([end["address_v6"], end["address_v4"]])
    assert nft_table(netns) is not None

    # A reboot: the interface and the MSS table are gone; the boot unit brings back what the role wants.
    for end in mesh["hosts"]["v1-1"]:
        subprocess.run(["ip", "-n", netns, "link", "del", end["interface"]], check=True)
    subprocess.run(["ip", "netns", "exec", netns, "nft", "delete", "table", "inet", "routevpn_mss"], check=True)
    boot = _boot(gateway)
    assert boot.returncode == 0, boot.stderr
    assert nft_table(netns) is not None
    config = mesh_tunnels(mesh["hosts"]["v1-1"], netns=netns)["xfrm"]
    again = run_module("xfrm_interface", {"config": config, "netns": netns, "state": "overridden"}, check=True)
    assert again["_rc"] == 0 and not again["changed"], again
    assert _boot(gateway).returncode == 0, "a second start of the unit must change nothing"


@pytest.mark.parametrize("tunnel_type, order", [("xfrm", ["VTI devices", "XFRM interfaces"]),
                                                ("vti", ["XFRM interfaces", "VTI devices"])])
def test_the_kind_a_gateway_does_not_use_is_cleaned_first(gateway, tunnel_type, order):
    """So that switching routevpn_tunnel_type deletes the old devices before the same names are created."""
    checked = gateway["run"](mesh_plan({1: 1, 2: 1}, **{"v1-1": {"routevpn_tunnel_type": tunnel_type}}), check=True)
    assert checked.rc == 0, checked
    titles = [line for line in checked.output.splitlines() if line.startswith("TASK [routevpn.mesh.tunnels : ")]
    found = [name for title in titles for name in order if name in title]
    assert found == order, titles


def test_readme_documents_every_variable_of_the_argument_specs():
    spec, table, defaults = documented_variables("tunnels")
    assert table == spec
    assert set(defaults) <= set(spec), set(defaults) - set(spec)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_boot_unit_is_accepted_by_systemd_next_to_the_namespace_unit(tmp_path):
    roles = COLLECTION_ROOT / "roles"
    for role, unit in (("tunnels", "routevpn-tunnels@.service"), ("private_netns", "routevpn-netns@.service")):
        variables = yaml.safe_load((roles / role / "defaults" / "main.yml").read_text())
        variables.update(ansible_managed="test", routevpn_libexec_dir=str(tmp_path))
        (tmp_path / unit).write_text(render(roles / role / "templates" / (unit + ".j2"), variables))
    shutil.copy(roles / "private_netns" / "files" / "routevpn-netns", tmp_path)
    verified = subprocess.run(["systemd-analyze", "verify", "--man=no",
                               str(tmp_path / "routevpn-tunnels@private.service")],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr
    unit = (tmp_path / "routevpn-tunnels@.service").read_text()
    assert "Requires=routevpn-netns@%i.service" in unit and "Before=routevpn-bird@%i.service" in unit
    assert "\nEnvironment=PYTHONPATH=%s/routevpn-mesh-boot.zip\n" % tmp_path in unit
    assert ("\nExecStart=/usr/bin/python3 -m %s up %%i /etc/routevpn/tunnels/%%i.json\n" % BOOT_MODULE) in unit
