"""mesh_external_config and mesh_external_files: the plan's external peers, their keys and their files."""

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.routevpn.mesh.plugins.filter.mesh import mesh_external_config, mesh_external_files
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import derive_psk

from ..module_utils.mesh_inventory import MASTER
from ..module_utils.test_external_config import GIVEN_PSK, mesh, peer

OVERRIDE = "an-override-for-link-21-31-0123"


def test_the_filter_renders_with_each_link_s_key():
    result, peers = mesh([peer()], layout={1: 1, 2: 1})
    text = mesh_external_config(result, "edge-3-1", MASTER, {"21-31": OVERRIDE}, peers)
    assert 'pre-shared-key ascii-text "%s"' % GIVEN_PSK in text  # given in routevpn_external_peers
    assert 'pre-shared-key ascii-text "%s"' % OVERRIDE in text  # routevpn_psk_overrides
    assert derive_psk(MASTER, "21-31") not in text


def test_the_master_derives_the_keys_not_given():
    result, peers = mesh([peer()], layout={1: 1, 2: 1})
    text = mesh_external_config(result, "edge-3-1", MASTER, {}, peers)
    assert 'pre-shared-key ascii-text "%s"' % derive_psk(MASTER, "21-31") in text


def test_errors_name_the_filter_and_the_peer():
    result, peers = mesh([peer()], layout={1: 1, 2: 1})
    with pytest.raises(AnsibleFilterError, match=r"routevpn_external_peers\[nobody\]: not a peer of the plan "
                                                 r"\(it has: edge-3-1\)"):
        mesh_external_config(result, "nobody", MASTER, {}, peers)
    with pytest.raises(AnsibleFilterError, match=r"mesh_external_config: routevpn_external_peers\[edge-3-1\]: "
                                                 r"routevpn_psk_master is not set and link 21-31"):
        mesh_external_config(result, "edge-3-1", None, {}, peers)
    with pytest.raises(AnsibleFilterError, match="the input must be the mesh plan"):
        mesh_external_config({"links": []}, "edge-3-1", MASTER, {}, peers)


def test_files_to_write_and_to_remove():
    result, peers = mesh([peer(), peer(name="vyos-3-2", platform="vyos", gateway_id=32,
                                       public_address="2001:db8:3::2", tunnels={})], layout={1: 1, 2: 1})
    files = mesh_external_files(result, ["edge-3-1.junos.conf", "edge-3-1.txt", "gone-3-9.vyos.conf", "notes.md",
                                         "README"], MASTER, {}, peers)
    assert files == {"write": [{"name": "edge-3-1", "file": "edge-3-1.junos.conf"},
                               {"name": "vyos-3-2", "file": "vyos-3-2.vyos.conf"}],
                     "remove": ["edge-3-1.txt", "gone-3-9.vyos.conf"],
                     "problems": []}


def test_files_report_problems_without_secrets():
    secret = 'a"quote-in-a-given-key-0123456'
    result, peers = mesh([peer(tunnels={"v1-1": {"psk": secret}})], layout={1: 1, 2: 1})
    problems = mesh_external_files(result, [], MASTER, {}, peers)["problems"]
    assert len(problems) == 1 and "routevpn_external_peers[edge-3-1].tunnels (link 11-31)" in problems[0]
    assert secret not in problems[0]
