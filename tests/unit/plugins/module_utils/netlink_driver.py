"""Run the _netlink module_utils in another interpreter and network namespace, as the modules do.

``drive()`` hands a JSON request to ``DRIVER`` running under a chosen Python
(this venv's pyroute2 0.9, or Debian's /usr/bin/python3 with pyroute2 0.7)
inside a scratch namespace that plays the module's own (public) namespace,
so that nothing the tests do touches this machine's namespace.

Besides the tunnel kinds, the driver knows two kinds this machine's kernel
has, described with the same data classes: ``veth`` (with the sysctls a VTI
device gets) and ``vxlan``, whose VNI and underlying device behave like an
XFRM interface's if_id and link: set only at creation, and a VNI stays
taken in the creating namespace after the device has moved away.
"""

import json
import os
import subprocess
import sys

from ...collection_paths import COLLECTIONS_PATH
from ...module_runner import DEBIAN_PYTHON, debian_pyroute2_available

PYTHONS = [("pyroute2-0.9", sys.executable)] + (
    [("pyroute2-0.7", DEBIAN_PYTHON)] if debian_pyroute2_available() else [])


DRIVER = r'''
import json
import sys

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink import _netns
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._links import (
    READ_ONLY, LinkAttr, LinkError, LinkKind, LinkSet)
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnel_kinds import VTI, XFRM
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnel_module import wanted_state


def kind_of(name):
    def normalise(entry):
        entry["kind"] = name
        if name == "vxlan":
            if entry.get("vni") is None:
                raise LinkError("%s: vni is required" % entry["name"])
            entry["link"] = entry.get("link") or "lo"
        return entry
    return normalise


KINDS = {
    "veth": LinkKind(kinds={"veth": ("veth", "veth")}, attrs=(),
                     sysctls=(("ipv4", "disable_policy", "1"), ("ipv6", "disable_policy", "1")),
                     normalise=kind_of("veth"), request=lambda wanted: {"peer": "p" + wanted["name"]}),
    "vxlan": LinkKind(kinds={"vxlan": ("vxlan", "vxlan")},
                      attrs=(LinkAttr("vni", "IFLA_VXLAN_ID", "vxlan_id"),
                             LinkAttr("link", "IFLA_VXLAN_LINK", "vxlan_link", unset=0, device=True),
                             LinkAttr("port", "IFLA_VXLAN_PORT", change=READ_ONLY)),
                     unique=(("vni",),), normalise=kind_of("vxlan"),
                     request=lambda wanted: {"vxlan_port": 4789}),
    "xfrm": XFRM,
    "vti": VTI,
}

request = json.load(sys.stdin)
try:
    if request["call"] == "linkset":
        kind = KINDS[request["kind"]]
        entries = request["entries"]
        if request["state"] != "deleted":
            entries = [wanted_state(kind, dict(entry, netns=entry.get("netns"))) for entry in entries]
        result = LinkSet(kind, entries, state=request["state"], prefix=request.get("prefix", "rv-"),
                         scope=request.get("scope", ()), check_mode=request.get("check", False)).run()
    elif request["call"] == "open_iproute":
        if request.get("skip_require"):
            # What pyroute2 does on its own with the flags this helper passes.
            _netns.require_netns = lambda name: None
        ipr = _netns.open_iproute(request["netns"])
        result = {"links": sorted(link.get_attr("IFLA_IFNAME") for link in ipr.get_links())}
        if request.get("add_veth"):
            ipr.link("add", ifname=request["add_veth"], kind="veth", peer="p" + request["add_veth"])
        ipr.close()
    elif request["call"] == "sysctls":
        if request.get("write"):
            _netns.write_sysctls(request["write"], request["netns"], skip_missing=request.get("skip_missing", False))
        result = {"values": _netns.read_sysctls(request.get("read", []), request["netns"])}
    elif request["call"] == "is_current_netns":
        result = {"current": _netns.is_current_netns(request["netns"])}
    else:
        raise ValueError(request["call"])
except (LinkError, _netns.NetnsError) as exc:
    result = {"error": type(exc).__name__, "msg": str(exc)}
except Exception as exc:  # an unexpected type: the test shows it
    result = {"error": type(exc).__name__, "msg": repr(exc)}
json.dump(result, sys.stdout)
'''


def drive(python, public, call, **request):
    """Run ``call`` under ``python`` inside namespace ``public`` (None: this one); its JSON answer."""
    request["call"] = call
    command = [python, "-c", DRIVER]
    if public:
        # nsenter, not `ip netns exec`: only the network namespace changes, /run/netns stays shared.
        command = ["nsenter", "--net=/run/netns/" + public] + command
    env = dict(os.environ, PYTHONPATH=str(COLLECTIONS_PATH), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run(command, input=json.dumps(request), capture_output=True, text=True, env=env,
                          check=False, timeout=900)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("driver printed no JSON (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr))


def linkset(python, public, kind, entries, **options):
    """LinkSet's result; an error fails the test unless ``error=True`` (then the error is the answer)."""
    expect_error = options.pop("error", False)
    answer = drive(python, public, "linkset", kind=kind, entries=entries, state=options.pop("state", "merged"),
                   **options)
    if ("error" in answer) != expect_error:
        raise AssertionError("expected %s, got %r" % ("an error" if expect_error else "a result", answer))
    return answer
