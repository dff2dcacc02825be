# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to routevpn.mesh: bring the links of one kind to a wanted state over rtnetlink.

A kind of link is described as data (``LinkKind`` made of ``LinkAttr``):
which attributes the kernel takes only when the link is created (a
difference means delete and create again), how pyroute2 sends and reads
them, which must be unique, which per-device sysctls the link needs.  What
every link has -- MTU, addresses, up/down, sysctls -- is changed in place.

``LinkSet`` reads the namespaces involved (one socket and one dump of links
and of addresses per namespace, so that hundreds of links cost the same
handful of dumps), computes one ``LinkChange`` per listed link, applies
them unless in check mode, reads back and checks the result.

Links are created in the module's own namespace and then moved to their
target namespace: a tunnel device keeps its underlay, and so its SAs, in
the namespace it was created in, where the IKE daemon runs.  A move takes
the link down and drops its addresses and per-device sysctls, so those are
set after the move.  Taking a link down flushes its IPv6 addresses, so a
link is never bounced to apply a change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import ipaddress

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._netns import (
    NetnsError,
    is_current_netns,
    open_iproute,
    read_sysctls,
    require_netns,
    sysctl_path,
    write_sysctls,
)
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._pyroute2_dep import NetlinkError

IFF_UP = 0x1
IFNAMSIZ = 15

# How a difference in an attribute is resolved.
RECREATE = "recreate"  # the kernel takes it only at creation: delete the link and create it again
READ_ONLY = "read-only"  # reported, never compared nor sent

# Options every link has; a kind's attributes must not reuse these names.
COMMON_OPTIONS = ("name", "kind", "netns", "mtu", "enabled", "addresses", "sysctls")

# What the kernel answers RTM_NEWLINK with when it does not know the kind
# (no module, or none that can load): EOPNOTSUPP from rtnl_newlink, ENODEV
# or EAFNOSUPPORT from some tunnel drivers.
_UNSUPPORTED_KIND = (errno.EOPNOTSUPP, errno.ENODEV, errno.EAFNOSUPPORT)


class LinkError(Exception):
    """A link cannot be brought to the wanted state; the message names the link and the fix."""


class KernelUnsupported(LinkError):
    """The running kernel cannot create links of the wanted kind."""


class LinkAttr(object):
    """One attribute of a kind's IFLA_INFO_DATA.

    ``option``: its name in the module's options and in returned states.
    ``nla``: the attribute read back from the kernel.  ``keyword``: the
    pyroute2 keyword that sends it (``link("add", xfrm_if_id=...)``).
    ``unset``: what an absent attribute means.  ``device``: the value is
    the name of a device in the module's namespace, sent and read as its
    index.
    """

    def __init__(self, option, nla, keyword=None, change=RECREATE, unset=None, device=False):
        if change not in (RECREATE, READ_ONLY):
            raise ValueError("%s: change must be %s or %s" % (option, RECREATE, READ_ONLY))
        if change == RECREATE and not keyword:
            raise ValueError("%s: an attribute the link is created with needs a pyroute2 keyword" % option)
        if option in COMMON_OPTIONS:
            raise ValueError("%s: every link has this option; a kind cannot redefine it" % option)
        self.option = option
        self.nla = nla
        self.keyword = keyword
        self.change = change
        self.unset = unset
        self.device = device


class LinkKind(object):
    """A kind of link (one or several IFLA_INFO_KINDs managed together).

    ``kinds``: ``{IFLA_INFO_KIND: (label, kernel module)}``, for messages.
    ``sysctls``: ``(family, key, value)`` per-device sysctls set once the link
    is in its namespace (a move resets them), where the kernel has them.
    ``unique``: tuples of attribute options that no two links of the kind
    may share (the kernel refuses the second one with EEXIST).
    ``normalise``: turns one item of the module's options into a wanted
    state (validates, fills defaults, sets ``kind``); raises LinkError.
    ``request``: extra pyroute2 keywords for ``link("add")`` (a veth's peer).
    """

    def __init__(self, kinds, attrs, sysctls=(), unique=(), normalise=None, request=None):
        self.kinds = dict(kinds)
        self.attrs = tuple(attrs)
        self.sysctls = tuple(sysctls)
        self.unique = tuple(tuple(group) for group in unique)
        self.normalise = normalise or (lambda entry: entry)
        self.request = request or (lambda wanted: {})
        options = [attr.option for attr in self.attrs]
        if len(set(options)) != len(options):
            raise ValueError("attribute options are not unique: %s" % ", ".join(options))
        for group in self.unique:
            unknown = [option for option in group if option not in options]
            if unknown:
                raise ValueError("unique refers to unknown attributes: %s" % ", ".join(unknown))

    def label(self, kind):
        return self.kinds.get(kind, (kind, None))[0]

    def module(self, kind):
        return self.kinds.get(kind, (None, kind))[1]

    def recreating(self):
        return [attr for attr in self.attrs if attr.change == RECREATE]


def normalise_address(text):
    """``ADDRESS/PREFIXLEN`` in canonical form; a bare address is refused (its length would be a guess)."""
    if "/" not in str(text):
        raise ValueError("%r has no prefix length (write e.g. 2001:db8:ff::190/127)" % (text,))
    interface = ipaddress.ip_interface(str(text))
    return "%s/%d" % (interface.ip, interface.network.prefixlen)


def _is_ipv6_link_local(address):
    # Only IPv6's: the kernel adds fe80:: itself.  IPv4 169.254/16 is a
    # legitimate transfer range here (the default v4 pool lives in it).
    ip = ipaddress.ip_interface(address).ip
    return ip.version == 6 and ip.is_link_local


def _where(netns):
    return "netns %s" % netns if netns else "the module's namespace"


class Namespace(object):
    """One namespace's links and addresses, through one socket, read with one dump of each."""

    def __init__(self, netns, kind):
        self.netns = netns
        self.kind = kind
        self.ipr = open_iproute(netns)
        self.links = {}
        self.names = {}

    def close(self):
        self.ipr.close()

    def load(self):
        links, by_index = {}, {}
        for message in self.ipr.get_links():
            state = self._describe(message)
            links[state["name"]] = by_index[state["index"]] = state
        for message in self.ipr.get_addr():
            state = by_index.get(message["index"])
            address = message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS")
            if state is None or address is None:
                continue
            text = normalise_address("%s/%d" % (address, message["prefixlen"]))
            if not _is_ipv6_link_local(text):
                state["addresses"].append(text)
        for state in links.values():
            state["addresses"].sort()
        self.links = links
        self.names = dict((index, state["name"]) for index, state in by_index.items())

    def _describe(self, message):
        info = message.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
        state = {
            "name": message.get_attr("IFLA_IFNAME"),
            "index": message["index"],
            "kind": kind,
            "netns": self.netns,
            "mtu": message.get_attr("IFLA_MTU"),
            "enabled": bool(message["flags"] & IFF_UP),
            "addresses": [],
        }
        if kind in self.kind.kinds:
            data = info.get_attr("IFLA_INFO_DATA")
            for attr in self.kind.attrs:
                value = data.get_attr(attr.nla) if data is not None else None
                state[attr.option] = attr.unset if value is None else value
        return state

    def of_kind(self):
        return [state for state in self.links.values() if state["kind"] in self.kind.kinds]

    def addresses_of(self, index):
        """A fresh read of one link's addresses (after a change flushed some)."""
        found = []
        for message in self.ipr.get_addr(index=index):
            address = message.get_attr("IFA_LOCAL") or message.get_attr("IFA_ADDRESS")
            if message["index"] == index and address is not None:
                text = normalise_address("%s/%d" % (address, message["prefixlen"]))
                if not _is_ipv6_link_local(text):
                    found.append(text)
        return sorted(found)


class LinkChange(object):
    """What one listed link needs, as steps the kernel must see in this order."""

    def __init__(self, wanted, current):
        self.wanted = wanted
        self.current = current
        self.delete = []  # (state, why): a leftover copy, or the old link of a recreate
        self.create = False
        self.recreate = []  # (option, old, new): why the link is created again
        self.move = None  # a leftover in the module's namespace that goes to the target
        self.mtu = None  # (old, new)
        self.down = False
        self.remove = []
        self.add = []
        self.sysctls = {}  # label -> (path, value)
        self.up = False

    def lines(self):
        name, kind, where = self.wanted["name"], self.wanted["kind"], _where(self.wanted["netns"])
        lines = []
        for state, why in self.delete:
            lines.append("%s: delete from %s (%s)" % (name, _where(state["netns"]), why))
        if self.recreate:
            lines.append("%s: create %s in %s (%s)" % (name, kind, where, ", ".join(
                "%s %s -> %s" % change for change in self.recreate)))
        elif self.create:
            lines.append("%s: create %s in %s" % (name, kind, where))
        if self.move is not None:
            lines.append("%s: move into %s" % (name, where))
        if self.mtu is not None:
            old, new = self.mtu
            lines.append("%s: mtu %s" % (name, new) if old is None else "%s: mtu %s -> %s" % (name, old, new))
        if self.down:
            lines.append("%s: down" % name)
        if self.remove or self.add:
            lines.append("%s: addresses %s" % (
                name, " ".join(["-" + a for a in self.remove] + ["+" + a for a in self.add])))
        for label, (_path, value) in sorted(self.sysctls.items()):
            lines.append("%s: %s=%s" % (name, label, value))
        if self.up:
            lines.append("%s: up" % name)
        return lines


class LinkSet(object):
    """Links of one kind brought to a list of wanted states in one pass.

    ``entries``: wanted states (dicts from ``LinkKind.normalise``): name,
    kind, netns (None: the module's namespace), mtu, enabled, addresses
    (None: leave alone) and the kind's attribute options.
    ``state``: ``merged`` (create or update the listed links),
    ``overridden`` (also delete links of the kind named ``prefix``... that
    are not listed, in every namespace involved and in the module's own),
    ``deleted`` (delete the listed links, wherever they are).
    ``scope``: further namespaces ``overridden`` cleans.
    """

    def __init__(self, kind, entries, state="merged", prefix=None, scope=(), check_mode=False):
        if state not in ("merged", "overridden", "deleted"):
            raise ValueError("state %r" % (state,))
        self.kind = kind
        self.entries = [dict(entry) for entry in entries]
        self.state = state
        self.prefix = prefix
        self.scope = [netns for netns in scope if netns]
        self.check_mode = check_mode
        self._namespaces = {}

    # -- the one entry point -------------------------------------------------
    def run(self):
        """Read, compute, apply unless in check mode, read back; the module's result."""
        try:
            return self._run()
        except NetnsError as exc:
            raise LinkError(str(exc))
        finally:
            for namespace in self._namespaces.values():
                namespace.close()
            self._namespaces = {}

    def _run(self):
        self._validate()
        for netns in self._involved():
            self.namespace(netns)
        self._load_sysctls()
        if self.state == "deleted":
            deletions, changes = self._plan_deleted(), []
        else:
            changes = [self._plan(wanted) for wanted in self.entries]
            deletions = self._plan_overridden() if self.state == "overridden" else []
            self._check_unique(changes, deletions)
        lines = ["%s: delete from %s (%s)" % (state["name"], _where(state["netns"]), why) for state, why in deletions]
        for change in changes:
            lines.extend(change.lines())

        before, after = {}, {}
        for state, _why in deletions:
            before[self._key(state)] = self._summary(state)
        for change in changes:
            before[change.wanted["name"]] = self._summary(change.current)

        if lines and not self.check_mode:
            self._apply(deletions, changes)
            for namespace in self._namespaces.values():
                namespace.load()
            self._load_sysctls()
        results = []
        for change in changes:
            if self.check_mode and change.lines():
                final = self._predicted(change)
            else:
                final = self._summary(self.namespace(change.wanted["netns"]).links.get(change.wanted["name"]))
                self._verify(change, final)
            after[change.wanted["name"]] = final
            results.append(final)
        return {
            "changed": bool(lines),
            "changes": lines,
            "interfaces": results,
            "diff": {
                "before": dict((key, value) for key, value in before.items() if value is not None),
                "after": dict((key, value) for key, value in after.items() if value is not None),
            },
        }

    # -- reading ---------------------------------------------------------------
    def namespace(self, netns):
        if netns not in self._namespaces:
            if netns is not None:
                require_netns(netns)
            namespace = Namespace(netns, self.kind)
            self._namespaces[netns] = namespace
            namespace.load()
        return self._namespaces[netns]

    def _involved(self):
        namespaces = set(entry["netns"] for entry in self.entries)
        if self.state == "overridden":
            namespaces.update(self.scope)
        return [None] + sorted(netns for netns in namespaces if netns is not None)

    def _validate(self):
        seen = set()
        for entry in self.entries:
            name = entry["name"]
            if not name or len(name) > IFNAMSIZ or "/" in name or name.strip() != name:
                raise LinkError("%r: an interface name has 1 to %d characters, no '/' and no blanks" % (name, IFNAMSIZ))
            if name in seen:
                raise LinkError("%s: listed twice" % name)
            seen.add(name)
            if entry.get("netns") is not None and is_current_netns(entry["netns"]):
                # The module already runs in it (ip netns exec): a move would be a no-op and
                # the "leftover in the module's namespace" would be the link itself.
                entry["netns"] = None
            entry.setdefault("netns", None)
        if self.state == "overridden" and not self.prefix:
            raise LinkError("state=overridden needs a non-empty prefix: it deletes the unlisted %s whose names "
                            "start with it" % "/".join(sorted(self.kind.kinds)))
        self.scope = [netns for netns in self.scope if not is_current_netns(netns)]

    def _load_sysctls(self):
        if not self.kind.sysctls:
            return
        listed = set(entry["name"] for entry in self.entries)
        for netns, namespace in self._namespaces.items():
            states = [state for state in namespace.of_kind() if state["name"] in listed]
            paths = [path for state in states for path, _value in self._sysctls(state["name"]).values()]
            values = read_sysctls(paths, netns)
            for state in states:
                state["sysctls"] = dict((label, values[path]) for label, (path, _value)
                                        in self._sysctls(state["name"]).items() if values.get(path) is not None)

    def _sysctls(self, name):
        """``{label: (path, value)}`` of the sysctls the kind wants on link ``name``."""
        return dict(("net.%s.conf.%s.%s" % (family, name, key), (sysctl_path("net", family, "conf", name, key), value))
                    for family, key, value in self.kind.sysctls)

    def _device_index(self, wanted, attr):
        device = wanted.get(attr.option)
        if device in (None, ""):
            return attr.unset
        here = self.namespace(None)
        if device not in here.links:
            raise LinkError("%s: underlying device %s does not exist in the module's namespace"
                            % (wanted["name"], device))
        return here.links[device]["index"]

    def _device_name(self, index):
        if not index:
            return None
        return self.namespace(None).names.get(index, "#%d" % index)

    # -- computing ---------------------------------------------------------------
    def _foreign(self, state, name):
        if state is not None and state["kind"] not in self.kind.kinds:
            raise LinkError("%s: a %s device of that name exists in %s; this module manages only %s devices: "
                            "rename or delete it" % (name, state["kind"] or "plain", _where(state["netns"]),
                                                     "/".join(sorted(self.kind.kinds))))

    def _plan(self, wanted):
        name, target = wanted["name"], wanted["netns"]
        in_target = self.namespace(target).links.get(name)
        in_here = self.namespace(None).links.get(name) if target is not None else None
        self._foreign(in_target, name)
        self._foreign(in_here, name)
        change = LinkChange(wanted, in_target or in_here)
        current = change.current
        if in_target is not None and in_here is not None:
            change.delete.append((in_here, "a leftover copy"))
        if current is None:
            change.create = True
        else:
            if current["kind"] != wanted["kind"]:
                change.recreate.append(("kind", current["kind"], wanted["kind"]))
            for attr in self.kind.recreating():
                want = self._device_index(wanted, attr) if attr.device else wanted.get(attr.option)
                if current.get(attr.option) != want:
                    show = self._device_name if attr.device else (lambda value: value)
                    change.recreate.append((attr.option, show(current.get(attr.option)), show(want)))
            if change.recreate:
                change.delete.append((current, "to create it again"))
                change.create = True
            elif current is in_here:
                change.move = current
        # A new or moved link starts down, without addresses and with the kernel's sysctls.
        fresh = change.create or change.move is not None
        base = None if change.create else current
        if base is None or base["mtu"] != wanted["mtu"]:
            change.mtu = (base["mtu"] if base else None, wanted["mtu"])
        enabled = False if fresh else current["enabled"]
        change.down = enabled and not wanted["enabled"]
        change.up = wanted["enabled"] and not enabled
        if wanted.get("addresses") is not None:
            have = [] if fresh else current["addresses"]
            change.remove = [a for a in have if a not in wanted["addresses"]]
            change.add = [a for a in wanted["addresses"] if a not in have]
        have_sysctls = {} if fresh else current.get("sysctls", {})
        for label, (path, value) in self._sysctls(name).items():
            # Absent from a link that exists: this kernel has no such sysctl (IPv6 ones on old kernels).
            if fresh or (label in have_sysctls and have_sysctls[label] != value):
                change.sysctls[label] = (path, value)
        return change

    def _plan_overridden(self):
        listed = dict((entry["name"], entry["netns"]) for entry in self.entries)
        deletions = []
        for netns in self._involved():
            for state in sorted(self.namespace(netns).of_kind(), key=lambda s: s["name"]):
                name = state["name"]
                if not name.startswith(self.prefix):
                    continue
                if name in listed and (listed[name] == netns or netns is None):
                    continue  # the link itself, or its leftover in the module's namespace: _plan handles it
                deletions.append((state, "not listed"))
        return deletions

    def _plan_deleted(self):
        deletions = []
        for entry in self.entries:
            for netns in ([entry["netns"], None] if entry["netns"] is not None else [None]):
                state = self.namespace(netns).links.get(entry["name"])
                if state is None:
                    continue
                if state["kind"] not in self.kind.kinds:
                    raise LinkError("%s: is a %s device in %s, not one of %s; not deleting it" % (
                        entry["name"], state["kind"] or "plain", _where(netns), "/".join(sorted(self.kind.kinds))))
                deletions.append((state, "listed for deletion"))
        return deletions

    def _check_unique(self, changes, deletions):
        if not self.kind.unique:
            return
        gone = set(id(state) for state, _why in deletions)
        gone.update(id(state) for change in changes for state, _why in change.delete)
        for group in self.kind.unique:
            owners = {}
            # Listed links first, then the survivors of the module's namespace, where links of
            # this collection are created (the kernel checks there, e.g. an XFRM if_id).
            for change in changes:
                key = tuple(change.wanted.get(option) for option in group)
                if key in owners:
                    raise LinkError("%s: %s already used by %s (listed)"
                                    % (change.wanted["name"], _values(group, key), owners[key]))
                owners[key] = change.wanted["name"]
            for state in self.namespace(None).of_kind():
                if id(state) in gone or state["name"] in owners.values():
                    continue
                key = tuple(state.get(option) for option in group)
                if key in owners:
                    raise LinkError("%s: %s already used by %s in the module's namespace; choose another or delete %s"
                                    % (owners[key], _values(group, key), state["name"], state["name"]))

    # -- applying ---------------------------------------------------------------
    def _call(self, name, what, method, *args, **kwargs):
        try:
            return method(*args, **kwargs)
        except NetlinkError as exc:
            raise LinkError("%s: %s failed: %s" % (name, what, exc))

    def _apply(self, deletions, changes):
        # Deletions first: a stale link may hold the if_id (or endpoints and key) that a listed one needs.
        for state, _why in deletions + [pair for change in changes for pair in change.delete]:
            namespace = self.namespace(state["netns"])
            self._call(state["name"], "delete from %s" % _where(state["netns"]), namespace.ipr.link, "del",
                       index=state["index"])
        here = self.namespace(None)
        for change in changes:
            if change.create:
                self._create(change.wanted)
            if (change.create or change.move is not None) and change.wanted["netns"] is not None:
                index = self._index(here, change.wanted["name"])
                self._call(change.wanted["name"], "move into %s" % _where(change.wanted["netns"]), here.ipr.link,
                           "set", index=index, net_ns_fd=change.wanted["netns"])
        sysctls = {}
        for change in changes:
            name, namespace = change.wanted["name"], self.namespace(change.wanted["netns"])
            if not (change.mtu or change.down or change.add or change.remove or change.up or change.sysctls):
                continue
            change.index = self._index(namespace, name)
            if change.down:
                self._call(name, "down", namespace.ipr.link, "set", index=change.index, state="down")
            if change.mtu is not None:
                self._call(name, "mtu %s" % change.wanted["mtu"], namespace.ipr.link, "set", index=change.index,
                           mtu=change.wanted["mtu"])
            if change.add or change.remove or (change.down and change.wanted.get("addresses") is not None):
                self._addresses(namespace, change)
            for _label, (path, value) in change.sysctls.items():
                sysctls.setdefault(change.wanted["netns"], {})[path] = value
        for netns, values in sorted(sysctls.items(), key=lambda item: item[0] or ""):
            write_sysctls(values, netns, skip_missing=True)
        for change in changes:
            if change.up:
                namespace = self.namespace(change.wanted["netns"])
                self._call(change.wanted["name"], "up", namespace.ipr.link, "set", index=change.index, state="up")

    def _create(self, wanted):
        request = {"ifname": wanted["name"], "kind": wanted["kind"]}
        for attr in self.kind.recreating():
            value = self._device_index(wanted, attr) if attr.device else wanted.get(attr.option)
            if value is not None and not (attr.device and value == 0):
                request[attr.keyword] = value
        request.update(self.kind.request(wanted))
        try:
            self.namespace(None).ipr.link("add", **request)
        except NetlinkError as exc:
            if exc.code in _UNSUPPORTED_KIND:
                raise KernelUnsupported("%s: the kernel has no %s support (modprobe %s)" % (
                    wanted["name"], self.kind.label(wanted["kind"]), self.kind.module(wanted["kind"])))
            if exc.code == errno.EEXIST:
                raise LinkError("%s: the kernel refused to create it (%s): another %s created from the module's "
                                "namespace has the same %s, possibly one moved into another namespace" % (
                                    wanted["name"], exc, self.kind.label(wanted["kind"]),
                                    " and ".join(" ".join(group) for group in self.kind.unique) or "identity"))
            raise LinkError("%s: creating the %s failed: %s" % (wanted["name"], self.kind.label(wanted["kind"]), exc))

    def _index(self, namespace, name):
        indices = self._call(name, "lookup", namespace.ipr.link_lookup, ifname=name)
        if not indices:
            raise LinkError("%s: vanished from %s while being configured" % (name, _where(namespace.netns)))
        return indices[0]

    def _addresses(self, namespace, change):
        name = change.wanted["name"]
        have = change.current["addresses"] if change.current and not (change.create or change.move) else []
        if change.down:
            # Unless keep_addr_on_down is set, the down flushed the IPv6 addresses: they go back.
            have = namespace.addresses_of(change.index)
        for address in have:
            if address not in change.wanted["addresses"]:
                ip, length = address.split("/")
                self._call(name, "remove address %s" % address, namespace.ipr.addr, "del", index=change.index,
                           address=ip, prefixlen=int(length))
        for address in change.wanted["addresses"]:
            if address not in have:
                ip, length = address.split("/")
                self._call(name, "add address %s" % address, namespace.ipr.addr, "add", index=change.index,
                           address=ip, prefixlen=int(length))

    # -- reporting ---------------------------------------------------------------
    def _key(self, state):
        return state["name"] if state["netns"] is None else "%s@%s" % (state["name"], state["netns"])

    def _summary(self, state):
        if state is None:
            return None
        summary = dict((key, state.get(key)) for key in ("name", "kind", "netns", "mtu", "enabled"))
        summary["addresses"] = list(state.get("addresses") or [])
        for attr in self.kind.attrs:
            value = state.get(attr.option)
            summary[attr.option] = self._device_name(value) if attr.device else value
        if self.kind.sysctls:
            summary["sysctls"] = dict(state.get("sysctls") or {})
        return summary

    def _predicted(self, change):
        """The state check mode promises: what is wanted, over what is kept."""
        wanted = change.wanted
        summary = dict((key, wanted.get(key)) for key in ("name", "kind", "netns", "mtu", "enabled"))
        kept = change.current if change.current and not (change.create or change.move) else None
        summary["addresses"] = list(wanted["addresses"] if wanted.get("addresses") is not None
                                    else (kept["addresses"] if kept else []))
        for attr in self.kind.attrs:
            if attr.change == RECREATE:
                value = wanted.get(attr.option)
                summary[attr.option] = None if attr.device and value in (None, "") else value
            else:
                summary[attr.option] = kept.get(attr.option) if kept else attr.unset
        if self.kind.sysctls:
            current = dict(kept.get("sysctls") or {}) if kept else {}
            current.update((label, value) for label, (_path, value) in self._sysctls(wanted["name"]).items()
                           if label in current or not kept)
            summary["sysctls"] = current
        return summary

    def _verify(self, change, final):
        """After applying, what the kernel reports must be what was asked: else the next run would change it again."""
        wanted, name = change.wanted, change.wanted["name"]
        if final is None:
            raise LinkError("%s: not found in %s after the change" % (name, _where(wanted["netns"])))
        expected = dict((key, wanted[key]) for key in ("kind", "mtu", "enabled"))
        if wanted.get("addresses") is not None:
            expected["addresses"] = sorted(wanted["addresses"])
        for attr in self.kind.recreating():
            value = wanted.get(attr.option)
            expected[attr.option] = (value or None) if attr.device else value
        for label, value in final.get("sysctls", {}).items():
            expected.setdefault("sysctls", {})[label] = self._sysctls(name)[label][1]
        for key, value in sorted(expected.items()):
            got = sorted(final[key]) if key == "addresses" else final.get(key)
            if got != value:
                raise LinkError("%s: after the change the kernel reports %s %s, not %s" % (name, key, got, value))


def _values(options, values):
    return ", ".join("%s %s" % pair for pair in zip(options, values))
