"""playbooks/mesh.yml's play for the peers the collection does not manage: their files on the controller.

ansible-playbook runs natively (connection local), limited to localhost and a
gateway, with only this play's tag (and the planning play, tagged always).
"""

import copy
import stat

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.inputs import RULES
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import derive_psk

from ..collection_paths import COLLECTION_ROOT

from ..plugins.module_utils.mesh_inventory import MASTER, inventory
from ..roles.role_runner import run_playbook, write_inventory

GIVEN_PSK = "provider-given-secret-0123456789"
JUNOS = {"name": "vsrx-3-1", "platform": "junos", "gateway_id": 31, "site": "site3", "public_address": "2001:db8:3::1",
         "tunnels": {"v1-1": {"psk": GIVEN_PSK}}}
VYOS = {"name": "vyos-3-2", "platform": "vyos", "gateway_id": 32, "site": "site3", "public_address": "2001:db8:3::2"}
CLOUD = {"name": "cloud-3-3", "platform": "generic", "gateway_id": 33, "site": "site3",
         "public_address": "2001:db8:3::3"}


@pytest.fixture
def controller(tmp_path):
    directory = tmp_path / "home" / "external-peers"

    def run(peers, check=False):
        hostvars = inventory({1: 2, 2: 1}, routevpn_transfer_prefix_v4="169.254.0.0/17")
        for variables in hostvars.values():
            variables["routevpn_sites"]["site3"] = {"asn": 64513, "prefixes": ["10.30.0.0/16"]}
            variables["routevpn_external_peers"] = copy.deepcopy(peers)
            variables["routevpn_external_peers_dir"] = str(directory)
        return run_playbook(tmp_path, write_inventory(tmp_path, hostvars), "routevpn.mesh.mesh", check=check,
                            extra=["--limit", "localhost,v1-1", "--tags", "external_peers", "-v"])

    return directory, run


def secrets():
    links = ["11-31", "12-31", "21-31", "11-32", "12-32", "21-32", "11-33", "12-33", "21-33"]
    return [GIVEN_PSK] + [derive_psk(MASTER, link) for link in links]


def test_the_play_writes_each_peer_s_file_0600_once_and_logs_no_secret(controller):
    directory, run = controller
    checked = run([JUNOS, VYOS, CLOUD], check=True)  # changed: the directory, the files (one loop)
    assert checked.rc == 0 and checked.changed("localhost") == 2, checked
    assert not directory.exists()

    first = run([JUNOS, VYOS, CLOUD])
    assert first.rc == 0 and first.changed("localhost") == 2, first
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    files = sorted(path.name for path in directory.iterdir())
    assert files == ["cloud-3-3.txt", "vsrx-3-1.junos.conf", "vyos-3-2.vyos.conf"]
    for name in files:
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    junos = (directory / "vsrx-3-1.junos.conf").read_text()
    assert 'pre-shared-key ascii-text "%s";' % GIVEN_PSK in junos
    assert "bind-interface st0.12;" in junos
    assert "set vpn ipsec site-to-site peer routevpn-21-32 vti bind 'vti21'" in \
        (directory / "vyos-3-2.vyos.conf").read_text()

    second = run([JUNOS, VYOS, CLOUD])
    assert second.rc == 0 and second.changed("localhost") == 0, second
    for output in (checked.output, first.output, second.output):
        for secret in secrets():
            assert secret not in output


def test_a_removed_peer_loses_its_file_and_other_files_stay(controller):
    directory, run = controller
    assert run([JUNOS, VYOS]).rc == 0
    (directory / "notes.md").write_text("the operator's own\n")
    removed = run([JUNOS])
    assert removed.rc == 0 and removed.changed("localhost") == 1, removed
    assert sorted(path.name for path in directory.iterdir()) == ["notes.md", "vsrx-3-1.junos.conf"]
    emptied = run([])
    assert emptied.rc == 0 and emptied.changed("localhost") == 1, emptied
    assert sorted(path.name for path in directory.iterdir()) == ["notes.md"]


def test_a_peer_that_cannot_be_rendered_stops_the_run_before_any_file_and_without_its_secret(controller):
    directory, run = controller
    hostile = dict(JUNOS, tunnels={"v1-1": {"psk": 'a"quote-in-the-given-key-0123'}})
    stopped = run([hostile, VYOS])
    assert stopped.rc != 0, stopped
    assert "routevpn_external_peers[vsrx-3-1].tunnels (link 11-31): the pre-shared key of link 11-31 has a" \
        in stopped.output
    assert 'a"quote-in-the-given-key-0123' not in stopped.output and "quote-in-the-given" not in stopped.output
    assert not any(directory.glob("*.conf"))


def test_the_play_s_default_directory_is_the_rule_s():
    text = (COLLECTION_ROOT / "playbooks" / "mesh.yml").read_text()
    assert "default('%s')" % RULES["routevpn_external_peers_dir"].default in text
