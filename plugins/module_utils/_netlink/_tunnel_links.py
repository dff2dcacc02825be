# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to routevpn.mesh: tunnel interfaces (XFRM interfaces, VTI devices) over netlink.

One class, ``TunnelLinks``, serves both modules.  A kind is described as
data (``TunnelKind``): which attributes identify the tunnel and therefore
force a recreate when they differ, how they are sent and read back.  MTU,
addresses, the up/down state and sysctls are changed in place.

Tunnels are created in the module's own (public) namespace and then moved
to their target namespace: the device keeps its underlay, and so its SAs, in
the namespace it was created in.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._netns import (
    NetnsError,
    open_iproute,
    read_sysctl,
    require_netns,
    sysctl_path,
    write_sysctl,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._pyroute2_dep import NetlinkError

IFF_UP = 0x1
IFNAMSIZ = 15


class TunnelError(Exception):
    """A tunnel interface cannot be brought to the requested state; the message says why and how to fix it."""


class KernelUnsupported(TunnelError):
    pass


class TunnelKind(object):
    """What distinguishes one kind of tunnel device.

    ``identity`` maps an option name to (IFLA_INFO_DATA attribute, pyroute2
    request keyword): a difference in any of them means recreate, because
    the kernel cannot change them in place (an XFRM interface's if_id and
    link) or because doing so would silently rebind the tunnel's SAs.
    """

    def __init__(self, kinds, identity, kernel_module, sysctls=()):
        self.kinds = kinds
        self.identity = identity
        self.kernel_module = kernel_module
        self.sysctls = sysctls

    def identity_of(self, entry):
        return dict((key, entry[key]) for key in self.identity)


XFRM = TunnelKind(
    kinds=("xfrm",),
    identity={
        "if_id": ("IFLA_XFRM_IF_ID", "xfrm_if_id"),
        "link_index": ("IFLA_XFRM_LINK", "xfrm_link"),
    },
    kernel_module="xfrm_interface",
)

VTI = TunnelKind(
    kinds=("vti", "vti6"),
    identity={
        "local": ("IFLA_VTI_LOCAL", "vti_local"),
        "remote": ("IFLA_VTI_REMOTE", "vti_remote"),
        "ikey": ("IFLA_VTI_IKEY", "vti_ikey"),
        "okey": ("IFLA_VTI_OKEY", "vti_okey"),
        "link_index": ("IFLA_VTI_LINK", "vti_link"),
    },
    kernel_module="ip_vti / ip6_vti",
    # Without disable_policy the kernel looks up an IPsec policy for the
    # decrypted packets arriving on the device and drops them.
    sysctls=(("ipv4", "disable_policy", "1"), ("ipv6", "disable_policy", "1")),
)


def _attr(message, name, default=None):
    value = message.get_attr(name)
    return default if value is None else value


def _normalise_address(text):
    interface = ipaddress.ip_interface(text)
    return "%s/%d" % (interface.ip, interface.network.prefixlen)


def _is_ipv6_link_local(address):
    # Only IPv6's: the kernel adds fe80:: itself.  IPv4 169.254/16 is a
    # legitimate transfer range here (the default v4 pool lives in it).
    ip = ipaddress.ip_interface(address).ip
    return ip.version == 6 and ip.is_link_local


class TunnelLinks(object):
    """Reads, compares and applies a list of tunnel interfaces of one kind.

    ``entries`` are dicts with: name, kind, netns (None: this namespace),
    mtu, addresses (list or None to leave alone), enabled, plus the kind's
    identity options (``link`` is a device name in this namespace; it is
    resolved to ``link_index``).
    """

    def __init__(self, kind, entries, state="merged", prefix=None, scope_netns=(), check_mode=False):
        self.kind = kind
        self.entries = entries
        self.state = state
        self.prefix = prefix
        self.scope_netns = list(scope_netns)
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

    # -- reading -------------------------------------------------------------
    def _describe(self, link, netns):
        info = link.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        state = {
            "name": link.get_attr("IFLA_IFNAME"),
            "index": link["index"],
            "kind": kind,
            "netns": netns,
            "mtu": link.get_attr("IFLA_MTU"),
            "enabled": bool(link["flags"] & IFF_UP),
        }
        if kind in self.kind.kinds:
            data = info.get_attr("IFLA_INFO_DATA")
            for key, (attribute, _keyword) in self.kind.identity.items():
                value = data.get_attr(attribute) if data is not None else None
                state[key] = value if value is not None else (0 if key in ("link_index", "ikey", "okey") else None)
        return state

    def _addresses(self, netns, index):
        addresses = []
        for message in self.ipr(netns).get_addr(index=index):
            address = message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS")
            text = "%s/%d" % (address, message["prefixlen"])
            if not _is_ipv6_link_local(text):
                addresses.append(_normalise_address(text))
        return sorted(addresses)

    def read(self, netns, name):
        indices = self.ipr(netns).link_lookup(ifname=name)
        if not indices:  # get_links() with no index would return every link
            return None
        state = self._describe(self.ipr(netns).get_links(indices[0])[0], netns)
        state["addresses"] = self._addresses(netns, state["index"])
        state["sysctls"] = self._read_sysctls(netns, state) if state["kind"] in self.kind.kinds else {}
        return state

    def _sysctl_paths(self, name):
        return dict(
            ("net.%s.conf.%s.%s" % (family, name, key), (sysctl_path("net", family, "conf", name, key), value))
            for family, key, value in self.kind.sysctls
        )

    def _read_sysctls(self, netns, state):
        current = {}
        for label, (path, _value) in self._sysctl_paths(state["name"]).items():
            value = read_sysctl(path, netns)
            if value is not None:
                current[label] = value
        return current

    def list_kind(self, netns):
        """Every link of this kind in ``netns`` whose name starts with the prefix."""
        found = []
        for link in self.ipr(netns).get_links():
            state = self._describe(link, netns)
            if state["kind"] in self.kind.kinds and self.prefix and state["name"].startswith(self.prefix):
                found.append(state)
        return found

    def resolve_link(self, device):
        if device in (None, ""):
            return 0
        indices = self.ipr(None).link_lookup(ifname=device)
        if not indices:
            raise TunnelError("underlying device %r does not exist in the module's namespace" % device)
        return indices[0]

    # -- comparing -----------------------------------------------------------
    def _wanted(self, entry):
        wanted = dict(entry)
        wanted["link_index"] = self.resolve_link(entry.get("link"))
        if entry.get("addresses") is not None:
            wanted["addresses"] = sorted(set(_normalise_address(a) for a in entry["addresses"]))
        return wanted

    def _summary(self, state):
        if state is None:
            return None
        summary = dict((key, state.get(key)) for key in ("name", "kind", "netns", "mtu", "enabled", "addresses"))
        for key in self.kind.identity:
            summary[key] = state.get(key)
        summary.pop("index", None)
        if state.get("sysctls"):
            summary["sysctls"] = state["sysctls"]
        return summary

    def _plan_entry(self, wanted):
        """The steps that bring one interface to ``wanted``, as (verb, detail) pairs."""
        target, name = wanted["netns"], wanted["name"]
        in_target = self.read(target, name)
        in_here = self.read(None, name) if target is not None else None
        for existing in (in_target, in_here):
            if existing is not None and existing["kind"] not in self.kind.kinds:
                raise TunnelError(
                    "%s: a %s device of that name already exists in %s; refusing to replace a device "
                    "this module did not create (rename one of them)"
                    % (name, existing["kind"] or "plain", "netns " + existing["netns"] if existing["netns"] else
                       "the module's namespace")
                )
        steps = []
        current = in_target
        if in_here is not None:
            if in_target is not None:
                steps.append(("delete_stray", in_here))
            else:
                current = in_here
        if current is None:
            steps.append(("create", None))
        else:
            differing = [key for key in self.kind.identity
                         if current.get(key) != wanted.get(key) or current["kind"] != wanted["kind"]]
            if differing:
                steps.append(("recreate", current))
            elif current is in_here:
                steps.append(("move", current))
        fresh = any(verb in ("create", "recreate") for verb, _ in steps)
        base = None if fresh else current
        if base is None or base["mtu"] != wanted["mtu"]:
            steps.append(("mtu", None))
        if wanted.get("addresses") is not None and (base is None or base["addresses"] != wanted["addresses"]):
            steps.append(("addresses", base["addresses"] if base else []))
        if base is None or base["enabled"] != wanted["enabled"]:
            steps.append(("enabled", None))
        expected = dict((label, value) for label, (_path, value) in self._sysctl_paths(name).items())
        if expected and (base is None or any(base["sysctls"].get(label, value) != value
                                             for label, value in expected.items())):
            steps.append(("sysctls", None))
        before = self._summary(current)
        return steps, before

    def _describe_step(self, wanted, verb, detail):
        name, where = wanted["name"], ("netns %s" % wanted["netns"]) if wanted["netns"] else "the module's namespace"
        if verb == "create":
            return "%s: create %s in %s" % (name, wanted["kind"], where)
        if verb == "recreate":
            differing = ", ".join("%s %s -> %s" % (key, detail.get(key), wanted.get(key))
                                  for key in self.kind.identity if detail.get(key) != wanted.get(key))
            return "%s: recreate (%s)" % (name, differing or "kind %s -> %s" % (detail["kind"], wanted["kind"]))
        if verb == "move":
            return "%s: move into %s" % (name, where)
        if verb == "delete_stray":
            return "%s: delete a leftover copy in the module's namespace" % name
        if verb == "mtu":
            return "%s: mtu %s" % (name, wanted["mtu"])
        if verb == "addresses":
            return "%s: addresses %s -> %s" % (name, ", ".join(detail) or "none", ", ".join(wanted["addresses"]) or "none")
        if verb == "enabled":
            return "%s: %s" % (name, "up" if wanted["enabled"] else "down")
        if verb == "sysctls":
            return "%s: %s" % (name, ", ".join("%s=%s" % (label, value) for label, (_p, value)
                                               in sorted(self._sysctl_paths(name).items())))
        return "%s: %s" % (name, verb)

    # -- applying ------------------------------------------------------------
    def _delete(self, state):
        self.ipr(state["netns"]).link("del", index=state["index"])

    def _create(self, wanted):
        request = {"ifname": wanted["name"], "kind": wanted["kind"]}
        for key, (_attribute, keyword) in self.kind.identity.items():
            value = wanted.get(key)
            if value not in (None, 0) or key in ("if_id",):
                request[keyword] = value
        try:
            self.ipr(None).link("add", **request)
        except NetlinkError as exc:
            if exc.code in (errno.EOPNOTSUPP, errno.ENODEV, errno.EAFNOSUPPORT):
                raise KernelUnsupported(
                    "%s: this kernel has no %s device support (%s); load the %s module"
                    % (wanted["name"], wanted["kind"], exc, self.kind.kernel_module)
                )
            raise
        index = self.ipr(None).link_lookup(ifname=wanted["name"])[0]
        if wanted["netns"] is not None:
            self.ipr(None).link("set", index=index, net_ns_fd=wanted["netns"])

    def _index(self, wanted):
        indices = self.ipr(wanted["netns"]).link_lookup(ifname=wanted["name"])
        if not indices:
            raise TunnelError("%s: vanished while being configured" % wanted["name"])
        return indices[0]

    def _apply_entry(self, wanted, steps):
        netns = wanted["netns"]
        for verb, detail in steps:
            if verb in ("delete_stray", "recreate"):
                self._delete(detail)
            if verb in ("create", "recreate"):
                self._create(wanted)
            elif verb == "move":
                self.ipr(None).link("set", index=detail["index"], net_ns_fd=netns)
            elif verb == "mtu":
                self.ipr(netns).link("set", index=self._index(wanted), mtu=wanted["mtu"])
            elif verb == "addresses":
                index = self._index(wanted)
                current = set(self._addresses(netns, index))
                for address in sorted(current - set(wanted["addresses"])):
                    ip, length = address.split("/")
                    self.ipr(netns).addr("del", index=index, address=ip, prefixlen=int(length))
                for address in wanted["addresses"]:
                    if address in current:
                        continue
                    ip, length = address.split("/")
                    self.ipr(netns).addr("add", index=index, address=ip, prefixlen=int(length))
            elif verb == "enabled":
                self.ipr(netns).link("set", index=self._index(wanted), state="up" if wanted["enabled"] else "down")
            elif verb == "sysctls":
                for label, (path, value) in self._sysctl_paths(wanted["name"]).items():
                    if read_sysctl(path, netns) is not None:
                        write_sysctl(path, value, netns)

    def _absent_steps(self, name, netns):
        steps = []
        for where in ([netns, None] if netns is not None else [None]):
            state = self.read(where, name)
            if state is None:
                continue
            if state["kind"] not in self.kind.kinds:
                raise TunnelError("%s: is a %s device, not one of %s; not deleting it"
                                  % (name, state["kind"] or "plain", "/".join(self.kind.kinds)))
            steps.append(state)
        return steps

    def run(self):
        """Compute and (unless check mode) apply; returns the module's result dict."""
        try:
            return self._run()
        except NetlinkError as exc:
            raise TunnelError("netlink error: %s" % (exc,))
        except NetnsError as exc:
            raise TunnelError(str(exc))
        finally:
            self.close()

    def _run(self):
        for entry in self.entries:
            if entry.get("netns") is not None:
                require_netns(entry["netns"])
            if len(entry["name"]) > IFNAMSIZ:
                raise TunnelError("%s: interface names are at most %d characters" % (entry["name"], IFNAMSIZ))
        before, after, results = {}, {}, []
        if self.state == "deleted":
            for entry in self.entries:
                for state in self._absent_steps(entry["name"], entry.get("netns")):
                    before.setdefault(entry["name"], self._summary(state))
                    self.changes.append("%s: delete from %s" % (
                        entry["name"], ("netns " + state["netns"]) if state["netns"] else "the module's namespace"))
                    if not self.check_mode:
                        self._delete(state)
                after[entry["name"]] = None
        else:
            for entry in self.entries:
                wanted = self._wanted(entry)
                steps, current = self._plan_entry(wanted)
                before[entry["name"]] = current
                for verb, detail in steps:
                    self.changes.append(self._describe_step(wanted, verb, detail))
                if steps and not self.check_mode:
                    self._apply_entry(wanted, steps)
                if not steps:
                    final = current
                elif self.check_mode:
                    final = self._summary(wanted)
                else:
                    final = self._summary(self.read(wanted["netns"], wanted["name"]))
                after[entry["name"]] = final
                results.append(after[entry["name"]])
            if self.state == "overridden":
                self._remove_unlisted(before, after)
        changed = bool(self.changes)
        return {
            "changed": changed,
            "changes": self.changes,
            "interfaces": results,
            "diff": {"before": _drop_none(before), "after": _drop_none(after)},
        }

    def _remove_unlisted(self, before, after):
        keep = set((entry.get("netns"), entry["name"]) for entry in self.entries)
        namespaces = [None] + sorted(set(ns for ns in self.scope_netns + [e.get("netns") for e in self.entries]
                                         if ns is not None))
        for netns in namespaces:
            if netns is not None:
                require_netns(netns)
            for state in self.list_kind(netns):
                if (netns, state["name"]) in keep:
                    continue
                if netns is None and any(name == state["name"] for _ns, name in keep):
                    continue  # a leftover of a listed interface: handled (deleted or moved) above
                label = state["name"] if netns is None else "%s@%s" % (state["name"], netns)
                before[label] = self._summary(dict(state, addresses=None))
                after[label] = None
                self.changes.append("%s: delete from %s (not in the list)" % (
                    state["name"], ("netns " + netns) if netns else "the module's namespace"))
                if not self.check_mode:
                    self._delete(state)


def _drop_none(mapping):
    return dict((key, value) for key, value in mapping.items() if value is not None)
