"""delete_policies against the kernel's real SPD, in a scratch namespace, with both pyroute2 generations.

The policies are planted with iproute2 and read back with iproute2, so that
neither side of the check is the code under test.
"""

import json
import os
import subprocess
import sys

import pytest

from ...collection_paths import COLLECTIONS_PATH
from ...module_runner import DEBIAN_PYTHON, _debian_path, debian_pyroute2_available

PYTHONS = [sys.executable] + ([DEBIAN_PYTHON] if debian_pyroute2_available() else [])
EVERYTHING = [("0.0.0.0/0", "0.0.0.0/0"), ("::/0", "::/0")]

CALL = """
import json, sys
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._xfrm_dump import XfrmError, delete_policies
args = json.loads(sys.argv[1])
try:
    print(json.dumps(delete_policies([tuple(s) for s in args["selectors"]], args["direction"], args["if_id"],
                                     netns=args["netns"])))
except XfrmError as exc:
    print(json.dumps({"error": str(exc)}))
"""


def delete(python, netns, selectors, direction, if_id):
    paths = [str(COLLECTIONS_PATH)] + ([_debian_path()] if python == DEBIAN_PYTHON else [])
    args = json.dumps(dict(selectors=selectors, direction=direction, if_id=if_id, netns=netns))
    proc = subprocess.run([python, "-c", CALL, args],
                          capture_output=True, text=True, check=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join(paths)))
    return json.loads(proc.stdout)


def out_policies(netns):
    """[(src, dst, if_id)] of the outbound policies, from iproute2."""
    text = subprocess.run(["ip", "-n", netns, "xfrm", "policy", "list", "dir", "out"], capture_output=True,
                          text=True, check=True).stdout
    found = []
    for block in text.split("src ")[1:]:
        words = ("src " + block).split()
        if_id = int(words[words.index("if_id") + 1], 16) if "if_id" in words else None
        found.append((words[1], words[3], if_id))
    return sorted(found)


@pytest.mark.parametrize("python", PYTHONS, ids=lambda path: "debian-python" if path == DEBIAN_PYTHON else "venv")
def test_the_policies_of_one_if_id_go_and_the_others_stay(scratch_netns_factory, python):
    netns = scratch_netns_factory("rvxd")
    for if_id in (4296, 4297):
        for source, destination in EVERYTHING:
            subprocess.run(["ip", "-n", netns, "xfrm", "policy", "add", "src", source, "dst", destination, "dir",
                            "out", "if_id", str(if_id)], check=True)
    subprocess.run(["ip", "-n", netns, "xfrm", "policy", "add", "src", "0.0.0.0/0", "dst", "0.0.0.0/0", "dir", "in",
                    "if_id", "4296"], check=True)

    deleted = delete(python, netns, EVERYTHING, "out", 4296)
    assert deleted == ["src 0.0.0.0/0 dst 0.0.0.0/0 dir out if_id 4296", "src ::/0 dst ::/0 dir out if_id 4296"]
    assert out_policies(netns) == [("0.0.0.0/0", "0.0.0.0/0", 4297), ("::/0", "::/0", 4297)]
    # The inbound policy of the same if_id is another policy.
    assert "dir in" in subprocess.run(["ip", "-n", netns, "xfrm", "policy"], capture_output=True, text=True,
                                      check=True).stdout

    assert delete(python, netns, EVERYTHING, "out", 4296) == []


def test_a_selector_mixing_families_is_an_error_before_anything_is_deleted(scratch_netns_factory):
    netns = scratch_netns_factory("rvxd")
    subprocess.run(["ip", "-n", netns, "xfrm", "policy", "add", "src", "0.0.0.0/0", "dst", "0.0.0.0/0", "dir", "out",
                    "if_id", "7"], check=True)
    result = delete(sys.executable, netns, [("0.0.0.0/0", "0.0.0.0/0"), ("0.0.0.0/0", "::/0")], "out", 7)
    assert "mixes address families" in result["error"], result
    assert out_policies(netns) == [("0.0.0.0/0", "0.0.0.0/0", 7)]
