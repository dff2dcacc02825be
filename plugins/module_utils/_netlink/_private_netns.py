# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to routevpn.mesh: the private network namespace of a gateway, over netlink.

``PrivateNetns`` brings one named namespace to the wanted state: it exists,
the listed interfaces are in it with exactly their listed addresses and up,
``lo`` is up, forwarding is on, and IPv6 addresses survive a link going down
(``keep_addr_on_down``; a tunnel device that bounces would otherwise lose its
transfer address and its BGP session).  It also finds *leaks*: a device on
one side whose peer or lower device is on the other side (a veth pair, a
macvlan), which would route around the tunnels.  Tunnel devices (XFRM, VTI)
are the one legitimate crossing: only ESP leaves through their underlay.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import os

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._netns import (
    NETNS_RUN_DIR,
    NetnsError,
    netns_exists,
    open_iproute,
    read_sysctl,
    sysctl_path,
    write_sysctl,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._pyroute2_dep import NetlinkError

IFF_UP = 0x1
TUNNEL_KINDS = ("xfrm", "vti", "vti6")
# RTM_GETNSID answers this when the namespace has no id in the asking one,
# which means no device there refers to it.
NSID_NOT_ASSIGNED = (None, -1, 0xFFFFFFFF)


class PrivateNetnsError(Exception):
    """The namespace cannot be brought to the wanted state; the message names the object and the fix."""


class LeakError(PrivateNetnsError):
    pass


def interface_items(items):
    """The ``interfaces`` option as ``{"name", "addresses"}`` dicts; a name alone leaves its addresses alone."""
    found = []
    for item in items or []:
        if isinstance(item, str):
            found.append({"name": item, "addresses": None})
        elif isinstance(item, dict) and isinstance(item.get("name"), str) and set(item) <= {"name", "addresses"}:
            addresses = item.get("addresses")
            if addresses is not None and not isinstance(addresses, list):
                raise PrivateNetnsError("interfaces: %s: addresses must be a list" % item["name"])
            found.append({"name": item["name"], "addresses": addresses})
        else:
            raise PrivateNetnsError("interfaces: %r must be a name or a dict with name and addresses" % (item,))
    return found


def _sysctl(*components):
    return ".".join(components), sysctl_path(*components)


def _normalise_address(text):
    interface = ipaddress.ip_interface(text)
    return "%s/%d" % (interface.ip, interface.network.prefixlen)


class PrivateNetns(object):
    """Read, compare and apply one private namespace.

    ``interfaces`` is a list of ``{"name": str, "addresses": list or None}``;
    ``addresses=None`` leaves the addresses alone (a moved device has none).
    """

    def __init__(self, name, interfaces=(), forwarding=True, keep_addr_on_down=True, state="present",
                 forbid_leaks=True, check_mode=False):
        self.name = name
        self.interfaces = [dict(item) for item in interfaces]
        self.forwarding = forwarding
        self.keep_addr_on_down = keep_addr_on_down
        self.state = state
        self.forbid_leaks = forbid_leaks
        self.check_mode = check_mode
        self.changes = []
        self._sockets = {}

    # -- sockets -------------------------------------------------------------
    def ipr(self, netns):
        if netns not in self._sockets:
            self._sockets[netns] = open_iproute(netns)
        return self._sockets[netns]

    def close(self):
        for sock in self._sockets.values():
            sock.close()
        self._sockets = {}

    # -- what is wanted --------------------------------------------------------
    def wanted_sysctls(self):
        """Namespace-wide sysctls, in the order they are applied (before any device moves in)."""
        wanted = []
        if self.keep_addr_on_down:
            # `all` is consulted for every device, including those moved in
            # later, whose own settings start from the namespace's defaults.
            wanted.append(_sysctl("net", "ipv6", "conf", "all", "keep_addr_on_down") + ("1",))
        if self.forwarding is not None:
            value = "1" if self.forwarding else "0"
            wanted.append(_sysctl("net", "ipv4", "ip_forward") + (value,))
            wanted.append(_sysctl("net", "ipv6", "conf", "all", "forwarding") + (value,))
        return wanted

    def _validate(self):
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise PrivateNetnsError("%r is not a usable network namespace name" % (self.name,))
        seen = set()
        for item in self.interfaces:
            ifname = item.get("name")
            if not ifname or len(ifname) > 15:
                raise PrivateNetnsError("%r is not a valid interface name (1 to 15 characters)" % (ifname,))
            if ifname == "lo":
                raise PrivateNetnsError("lo cannot be moved; every namespace has its own")
            if ifname in seen:
                raise PrivateNetnsError("%s is listed twice in the interfaces" % ifname)
            seen.add(ifname)
            if item.get("addresses") is not None:
                normalised = []
                for text in item["addresses"]:
                    try:
                        if "/" not in str(text):
                            raise ValueError(text)
                        normalised.append(_normalise_address(text))
                    except ValueError:
                        raise PrivateNetnsError("%s: address %r must be written with its prefix length, "
                                                "e.g. 10.1.0.1/24" % (ifname, text))
                item["addresses"] = sorted(set(normalised))

    # -- reading -------------------------------------------------------------
    def _link(self, netns, ifname):
        indices = self.ipr(netns).link_lookup(ifname=ifname)
        if not indices:  # get_links() without an index would return every link
            return None
        link = self.ipr(netns).get_links(indices[0])[0]
        info = link.get_attr("IFLA_LINKINFO")
        addresses = []
        for message in self.ipr(netns).get_addr(index=link["index"]):
            address = message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS")
            text = _normalise_address("%s/%d" % (address, message["prefixlen"]))
            if not ipaddress.ip_interface(text).ip.is_link_local:
                addresses.append(text)
        return {
            "index": link["index"],
            "netns": netns,
            "kind": info.get_attr("IFLA_INFO_KIND") if info is not None else None,
            "enabled": bool(link["flags"] & IFF_UP),
            "addresses": sorted(addresses),
        }

    def snapshot(self):
        """The current state, as the diff shows it; ``_links`` keeps what applying needs."""
        exists = netns_exists(self.name)
        state = {"name": self.name, "exists": exists, "sysctls": {}, "lo_enabled": None, "interfaces": {}}
        links = {}
        if exists:
            for label, path, _value in self.wanted_sysctls():
                state["sysctls"][label] = read_sysctl(path, self.name)
            state["lo_enabled"] = self._link(self.name, "lo")["enabled"]
        for item in self.interfaces:
            found = (self._link(self.name, item["name"]) if exists else None) or self._link(None, item["name"])
            links[item["name"]] = found
            state["interfaces"][item["name"]] = None if found is None else {
                "netns": found["netns"], "enabled": found["enabled"], "addresses": found["addresses"]}
        return state, links

    # -- leaks -----------------------------------------------------------------
    def _crossing(self, netns, other, **target):
        """Devices in ``netns`` whose peer or lower device is in the namespace ``target`` names.

        Links are dumped before the namespace id is asked for: a dump assigns
        ids to the namespaces its devices point to, RTM_GETNSID does not, so
        asking first could answer "no id" although a device points there.
        """
        links = self.ipr(netns).get_links()
        answer = self.ipr(netns).get_netnsid(**target)
        nsid = answer.get("nsid") if answer else None
        if nsid in NSID_NOT_ASSIGNED:
            return []
        found = []
        for link in links:
            if link.get_attr("IFLA_LINK_NETNSID") != nsid:
                continue
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            if kind in TUNNEL_KINDS:
                continue
            found.append({
                "interface": link.get_attr("IFLA_IFNAME"),
                "kind": kind,
                "netns": netns,
                "peer_netns": other,
            })
        return found

    def leaks(self):
        """Devices that join the public namespace (the module's own) and the private one directly."""
        if not netns_exists(self.name):
            return []
        handle = os.open(os.path.join(NETNS_RUN_DIR, self.name), os.O_RDONLY)
        try:
            from_public = self._crossing(None, self.name, fd=handle)
        finally:
            os.close(handle)
        # A pid names its process's namespace: ours is the public one.
        return from_public + self._crossing(self.name, None, pid=os.getpid())

    # -- planning --------------------------------------------------------------
    def _steps(self, before, links):
        steps = []
        if not before["exists"]:
            steps.append(("create", None))
        for label, path, value in self.wanted_sysctls():
            if before["sysctls"].get(label) != value:
                steps.append(("sysctl", (label, path, value)))
        if not before["lo_enabled"]:
            steps.append(("lo_up", None))
        for item in self.interfaces:
            current = links[item["name"]]
            if current is None:
                raise PrivateNetnsError(
                    "%s: no such interface in the public namespace nor in netns %s; fix "
                    "routevpn_private_interfaces or create the device first" % (item["name"], self.name))
            if current["netns"] is None:
                if current["kind"] in TUNNEL_KINDS:
                    raise PrivateNetnsError("%s: is a %s tunnel device; the tunnels role places those, list only "
                                            "LAN interfaces here" % (item["name"], current["kind"]))
                steps.append(("move", item))
                current = None  # a moved device arrives down and without addresses
            if item.get("addresses") is not None and (current is None or current["addresses"] != item["addresses"]):
                steps.append(("addresses", item))
            if current is None or not current["enabled"]:
                steps.append(("up", item))
        return steps

    def _describe(self, verb, detail, before):
        if verb == "create":
            return "create netns %s" % self.name
        if verb == "delete":
            return "delete netns %s" % self.name
        if verb == "sysctl":
            return "netns %s: %s=%s" % (self.name, detail[0], detail[2])
        if verb == "lo_up":
            return "netns %s: lo up" % self.name
        if verb == "move":
            return "%s: move into netns %s" % (detail["name"], self.name)
        if verb == "addresses":
            current = before["interfaces"].get(detail["name"]) or {}
            shown = current.get("addresses") if current.get("netns") == self.name else []
            return "%s: addresses %s -> %s" % (detail["name"], ", ".join(shown or []) or "none",
                                               ", ".join(detail["addresses"]) or "none")
        return "%s: up" % detail["name"]

    def _predict(self, before, steps):
        after = {"name": self.name, "exists": self.state == "present", "sysctls": dict(before["sysctls"]),
                 "lo_enabled": before["lo_enabled"], "interfaces": {}}
        if self.state != "present":
            return dict(after, sysctls={}, lo_enabled=None)
        for name, state in before["interfaces"].items():
            after["interfaces"][name] = dict(state) if state else None
        for verb, detail in steps:
            if verb == "sysctl":
                after["sysctls"][detail[0]] = detail[2]
            elif verb == "lo_up":
                after["lo_enabled"] = True
            elif verb == "move":
                after["interfaces"][detail["name"]] = {"netns": self.name, "enabled": False, "addresses": []}
            elif verb == "addresses":
                after["interfaces"][detail["name"]]["addresses"] = list(detail["addresses"])
            elif verb == "up":
                after["interfaces"][detail["name"]]["enabled"] = True
        return after

    # -- applying ----------------------------------------------------------------
    def _index(self, netns, ifname):
        indices = self.ipr(netns).link_lookup(ifname=ifname)
        if not indices:
            raise PrivateNetnsError("%s: vanished while being configured" % ifname)
        return indices[0]

    def _apply(self, steps):
        from pyroute2 import netns as pyroute2_netns

        for verb, detail in steps:
            if verb == "create":
                pyroute2_netns.create(self.name)
            elif verb == "delete":
                self.close()
                pyroute2_netns.remove(self.name)
            elif verb == "sysctl":
                write_sysctl(detail[1], detail[2], self.name)
            elif verb == "lo_up":
                self.ipr(self.name).link("set", index=self._index(self.name, "lo"), state="up")
            elif verb == "move":
                self.ipr(None).link("set", index=self._index(None, detail["name"]), net_ns_fd=self.name)
            elif verb == "addresses":
                index = self._index(self.name, detail["name"])
                current = set(self._link(self.name, detail["name"])["addresses"])
                for address in sorted(current - set(detail["addresses"])):
                    ip, length = address.split("/")
                    self.ipr(self.name).addr("del", index=index, address=ip, prefixlen=int(length))
                for address in detail["addresses"]:
                    if address not in current:
                        ip, length = address.split("/")
                        self.ipr(self.name).addr("add", index=index, address=ip, prefixlen=int(length))
            elif verb == "up":
                self.ipr(self.name).link("set", index=self._index(self.name, detail["name"]), state="up")

    def run(self):
        """Compute and (unless check mode) apply; returns the module's result dict."""
        try:
            return self._run()
        except NetlinkError as exc:
            raise PrivateNetnsError("netns %s: netlink error: %s" % (self.name, exc))
        except NetnsError as exc:
            raise PrivateNetnsError(str(exc))
        finally:
            self.close()

    def _run(self):
        self._validate()
        before, links = self.snapshot()
        if self.state == "absent":
            steps = [("delete", None)] if before["exists"] else []
        else:
            steps = self._steps(before, links)
        self.changes = [self._describe(verb, detail, before) for verb, detail in steps]
        if steps and not self.check_mode:
            self._apply(steps)
            after, _links = self.snapshot()
        else:
            after = self._predict(before, steps) if steps else before
        leaks = self.leaks() if self.state == "present" else []
        if leaks and self.forbid_leaks:
            named = ", ".join(
                "%s (%s, in %s)" % (leak["interface"], leak["kind"] or "device",
                                    "netns " + leak["netns"] if leak["netns"] else "the public namespace")
                for leak in leaks)
            raise LeakError("netns %s is joined directly to the public namespace by %s; only tunnel devices may "
                            "cross (delete the device, or move both of its ends to one side)" % (self.name, named))
        return {
            "changed": bool(steps),
            "changes": self.changes,
            "namespace": after,
            "leaks": leaks,
            "diff": {"before": before, "after": after},
        }
