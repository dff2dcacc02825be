"""The private_netns role, run by ansible-playbook against this machine's kernel.

Veth pairs stand in for LAN interfaces: one end in the public namespace (to
be moved), the other in a scratch 'router' namespace.  The boot unit is
installed and enabled for real (systemctl enable works without a running
systemd); its script is run by hand to stand in for a boot.
"""

import os
import shutil
import subprocess
import uuid

import pytest
import yaml

from ..collection_paths import COLLECTION_ROOT
from ..conftest import delete_netns
from ..module_runner import addresses_of, link_of
from .mesh_roles import documented_variables, wait_until
from .role_runner import render, run_playbook, systemd_unit_dir_held, write_inventory, write_playbook

UNIT_DIR = "/etc/systemd/system"


def ip(*args):
    subprocess.run(("ip",) + args, check=True, capture_output=True, text=True)


def sysctl_in(netns, name):
    return subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-n", name],
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def gateway(tmp_path, scratch_netns_factory):
    tag = uuid.uuid4().hex[:6]
    netns = "rvpriv-" + tag
    router = scratch_netns_factory("rvrouter")
    lans = ["rvl%s%d" % (tag, n) for n in range(2)]

    def plug_lans():
        for n, name in enumerate(lans):
            ip("link", "add", name, "type", "veth", "peer", "name", "rvr%s%d" % (tag, n), "netns", router)

    plug_lans()
    variables = {
        "routevpn_private_netns": netns,
        "routevpn_private_interfaces": [lans[0], {"name": lans[1],
                                                  "addresses": ["10.1.0.1/24", "2001:db8:a1::1/64"]}],
        "routevpn_private_netns_config_dir": str(tmp_path / "etc"),
        "routevpn_libexec_dir": str(tmp_path / "libexec"),
        # Enable only: this machine's PID 1 is not systemd (and other tests may fake /run/systemd/system).
        "routevpn_service_manager": "direct",
    }
    inventory = write_inventory(tmp_path, {"gw": variables})
    playbook = write_playbook(tmp_path, [{"hosts": "routevpn_gateways", "gather_facts": False,
                                          "roles": ["routevpn.mesh.private_netns"]}])
    wants = os.path.join(UNIT_DIR, "multi-user.target.wants", "routevpn-netns@%s.service" % netns)
    with systemd_unit_dir_held():
        try:
            yield {"netns": netns, "lans": lans, "inventory": inventory, "playbook": playbook, "tmp": tmp_path,
                   "plug_lans": plug_lans, "wants": wants, "router": router, "tag": tag}
        finally:
            delete_netns(netns)
            for name in lans:
                subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
            for path in (wants, os.path.join(UNIT_DIR, "routevpn-netns@.service")):
                if os.path.lexists(path):
                    os.unlink(path)


def test_role_check_apply_idempotent_and_rebuilt_at_boot(gateway):
    netns, lans, tmp = gateway["netns"], gateway["lans"], gateway["tmp"]

    def play(check=False):
        return run_playbook(tmp, gateway["inventory"], gateway["playbook"], check=check)

    checked = play(check=True)
    assert checked.rc == 0 and checked.changed("gw") > 0, checked
    assert not os.path.exists("/run/netns/" + netns) and link_of(lans[0]) is not None

    applied = play()
    assert applied.rc == 0 and applied.changed("gw") > 0, applied
    for name in lans:
        assert link_of(name) is None and "UP" in link_of(name, netns=netns)["flags"]
    assert addresses_of(lans[1], netns=netns) == ["10.1.0.1/24", "2001:db8:a1::1/64"]
    assert "UP" in link_of("lo", netns=netns)["flags"]
    for name in ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding", "net.ipv6.conf.all.keep_addr_on_down"):
        assert sysctl_in(netns, name) == "1", name
    assert os.path.islink(gateway["wants"]), "the instance is not enabled"
    conf = (tmp / "etc" / (netns + ".conf")).read_text()
    assert "interface %s\n" % lans[0] in conf and "interface %s 10.1.0.1/24 2001:db8:a1::1/64\n" % lans[1] in conf
    unit = open(os.path.join(UNIT_DIR, "routevpn-netns@.service")).read()
    assert "ExecStart=%s/routevpn-netns up %%i %s/%%i.conf" % (tmp / "libexec", tmp / "etc") in unit

    for check in (False, True):
        again = play(check=check)
        assert again.rc == 0 and again.changed("gw") == 0, again

    # A reboot: the namespace and its veths are gone, the LAN devices come back in the public namespace.
    delete_netns(netns)
    # The kernel dismantles a deleted namespace in the background; its veths' peers go with it, later.
    peers = ["rvr%s%d" % (gateway["tag"], n) for n in range(len(lans))]
    wait_until(lambda: all(link_of(name, netns=gateway["router"]) is None for name in peers), 30,
               message="%s gone from %s" % (peers, gateway["router"]))
    gateway["plug_lans"]()
    boot = subprocess.run([str(tmp / "libexec" / "routevpn-netns"), "up", netns, str(tmp / "etc" / (netns + ".conf"))],
                          capture_output=True, text=True, check=False)
    assert boot.returncode == 0, boot.stderr
    after_boot = play(check=True)
    assert after_boot.rc == 0 and after_boot.changed("gw") == 0, after_boot
    # The boot script is idempotent too: a second start changes nothing the role would see.
    assert subprocess.run([str(tmp / "libexec" / "routevpn-netns"), "up", netns,
                           str(tmp / "etc" / (netns + ".conf"))], capture_output=True, check=False).returncode == 0
    assert addresses_of(lans[1], netns=netns) == ["10.1.0.1/24", "2001:db8:a1::1/64"]


def test_role_fails_on_a_veth_between_public_and_private(gateway):
    netns, tmp = gateway["netns"], gateway["tmp"]
    assert run_playbook(tmp, gateway["inventory"], gateway["playbook"]).rc == 0
    leak = "rvk" + netns[-6:]
    ip("link", "add", leak + "0", "type", "veth", "peer", "name", leak + "1", "netns", netns)
    try:
        run = run_playbook(tmp, gateway["inventory"], gateway["playbook"])
        assert run.rc != 0 and "is joined directly to the public namespace by" in run.output, run
    finally:
        subprocess.run(["ip", "link", "del", leak + "0"], capture_output=True, check=False)


def test_boot_script_reports_a_missing_interface(tmp_path):
    netns = "rvpriv-" + uuid.uuid4().hex[:6]
    conf = tmp_path / "x.conf"
    conf.write_text("FORWARDING=1\nKEEP_ADDR_ON_DOWN=1\nWAIT=1\ninterface rvabsent0\n")
    script = str(COLLECTION_ROOT / "roles" / "private_netns" / "files" / "routevpn-netns")
    try:
        boot = subprocess.run([script, "up", netns, str(conf)], capture_output=True, text=True, check=False)
        assert boot.returncode == 1 and "rvabsent0 did not appear within 1s" in boot.stderr
        assert os.path.exists("/run/netns/" + netns) and sysctl_in(netns, "net.ipv4.ip_forward") == "1"
    finally:
        delete_netns(netns)


def test_readme_documents_every_variable_of_the_argument_specs():
    spec, table, defaults = documented_variables("private_netns")
    assert table == spec
    assert set(defaults) <= set(spec), set(defaults) - set(spec)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_boot_unit_is_accepted_by_systemd(tmp_path):
    variables = yaml.safe_load((COLLECTION_ROOT / "roles" / "private_netns" / "defaults" / "main.yml").read_text())
    variables.update(ansible_managed="test", routevpn_libexec_dir=str(tmp_path))
    (tmp_path / "routevpn-netns@.service").write_text(
        render(COLLECTION_ROOT / "roles" / "private_netns" / "templates" / "routevpn-netns@.service.j2", variables))
    shutil.copy(COLLECTION_ROOT / "roles" / "private_netns" / "files" / "routevpn-netns", tmp_path)
    verified = subprocess.run(["systemd-analyze", "verify", "--man=no",
                               str(tmp_path / "routevpn-netns@private.service")],
                              capture_output=True, text=True, check=False)
    assert verified.returncode == 0 and not verified.stderr.strip(), verified.stderr
