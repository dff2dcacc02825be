# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One gateway's health, read on the gateway in one module run (the gateway_health module).

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  It reads what health.py judges - the IKE daemon's
SAs (``swanctl --list-sas`` or ``ipsec whack --showstates``), the kernel's
XFRM policies and SAs, BIRD's protocols, the private namespace's routes and
the namespace itself - and hands it to ``link_health`` and
``gateway_problems``.  Every read goes through a callable given to it (the
module gives the real ones: AnsibleModule.run_command, the netlink readers),
so that nothing here imports Ansible or pyroute2, and a failed read becomes
the same one-line problem as in verify's earlier form, never an exception.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .health import command_result, gateway_problems, link_health
from .health_report import timestamp

IKE_DAEMONS = ("strongswan", "libreswan")


class GatewayHealthError(ValueError):
    """The module's arguments cannot be judged (an unknown IKE daemon, ends of another gateway)."""


class GatewayHealth:
    """Read one gateway's state and judge each of its link ends alone.

    run(argv) -> (rc, stdout, stderr) runs a command, raising OSError when it
    cannot start; read_xfrm() -> {"policies": [...], "states": [...]} and
    check_netns() -> the private_netns module's result (check mode) raise
    an exception whose text is the problem; now() -> an aware datetime
    (default: the gateway's clock, in UTC) says when the read began.
    """

    def __init__(self, ends, run, read_xfrm, check_netns, ike_daemon="strongswan", sites=None, netns="private",
                 vici_socket="/run/charon.vici", pluto_socket="/run/pluto/pluto.ctl",
                 birdc_socket="/run/routevpn-bird/private.ctl", require_prefixes=True, now=None):
        if ike_daemon not in IKE_DAEMONS:
            raise GatewayHealthError("ike_daemon must be one of %s, not %r" % (", ".join(IKE_DAEMONS), ike_daemon))
        gateways = sorted({end.get("gateway") for end in ends})
        if len(gateways) > 1:
            raise GatewayHealthError("ends must be one gateway's, not those of %s" % ", ".join(map(str, gateways)))
        self.ends = ends
        self.sites = sites or {}
        self.ike_daemon = ike_daemon
        self.netns = netns
        self.vici_socket = vici_socket
        self.pluto_socket = pluto_socket
        self.birdc_socket = birdc_socket
        self.require_prefixes = require_prefixes
        self._run = run
        self._read_xfrm = read_xfrm
        self._check_netns = check_netns
        self._now = now

    def _command(self, argv):
        return command_result(self._run, argv)

    def _module(self, read):
        try:
            return read()
        except Exception as exc:  # pylint: disable=broad-except  # any reader's error is the gateway's problem
            return {"failed": True, "msg": str(exc) or exc.__class__.__name__}

    def read(self):
        """{"links": one row per end (health.link_health), "problems": the gateway's own, one line each,
        "read_at": when the read began (health_report.timestamp)}."""
        read_at = timestamp(self._now() if self._now else None)
        netns = self._module(self._check_netns)
        if self.ike_daemon == "strongswan":
            swanctl = self._command(["swanctl", "--list-sas", "--pretty", "--uri", "unix://" + self.vici_socket])
            pluto = None
        else:
            swanctl = None
            pluto = self._command(["ipsec", "whack", "--ctlsocket", self.pluto_socket, "--showstates"])
        xfrm = self._module(self._read_xfrm)
        birdc = self._command(["ip", "netns", "exec", self.netns, "birdc", "-s", self.birdc_socket,
                               "show", "protocols", "all"])
        routes = {"results": [self._command(["ip", "-j", family, "-n", self.netns, "route", "show"])
                              for family in ("-4", "-6")]}
        xfrm_failed = bool(xfrm.get("failed"))
        links = link_health(
            self.ends, sites=self.sites, swanctl=swanctl, pluto=pluto,
            policies=[] if xfrm_failed else xfrm.get("policies") or [],
            states=None if xfrm_failed else xfrm.get("states"),
            birdc=birdc, routes=routes, require_prefixes=self.require_prefixes)
        problems = gateway_problems({"netns": netns, "swanctl": swanctl, "pluto": pluto, "kernel": xfrm,
                                     "birdc": birdc, "routes": routes})
        return {"links": links, "problems": problems, "read_at": read_at}
