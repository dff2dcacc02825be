# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health of each link of the mesh, from what both of its gateways report about it.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  Pure Python, no I/O: the gateway_health module
(gateway_health.py) collects the raw outputs on each gateway (``swanctl
--list-sas`` or libreswan's ``ipsec whack --showstates``, the kernel's XFRM
policies and SAs, ``birdc show protocols all``, ``ip -j route``) and hands
them here, so every judgement is tested natively against captured outputs:

- ``link_health``: each link end of one gateway, alone (its IKE_SA and
  CHILD_SA, exactly one of each, bound to the planned if_id or mark in the
  daemon and in the kernel, BGP, routes), with the SPIs it sees;
- ``cross_check``: each end against its peer's (both reported, the peer's
  IKE daemon alive, the kernels' SPIs and the IKE_SA SPIs agree);
- ``gateway_problems``: what is wrong with a gateway rather than a link, one
  line each, from the commands' rc, stdout and stderr.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import re

from collections.abc import Mapping

IKE_UP = "ESTABLISHED"
CHILD_UP = "INSTALLED"
BGP_UP = "Established"


class HealthInputError(ValueError):
    """An output could not be read; the message names which."""


# -- command results (as Ansible's command module registers them) -------------------
# Every output below may be given as its text (stdout) or as the registered result of the command
# (rc, stdout, stderr, cmd): then a command that failed says why, in one line, and the daemon behind it
# counts as not answering.
_NOISE = re.compile(r"^plugin '[^']*': failed to load\b")
_USAGE = re.compile(r"^(?:usage:|strongSwan \S+ swanctl)$")


def _lines(text):
    """The lines of a tool's output worth showing: no plugin noise, no usage text, no blank lines."""
    kept = []
    for line in (text or "").splitlines():
        line = line.strip()
        if _USAGE.match(line):
            break
        if line and not _NOISE.match(line):
            kept.append(line)
    return kept


def _argv(result):
    cmd = result.get("cmd")
    if isinstance(cmd, str):
        return cmd.split()
    return [str(word) for word in cmd or []]


def _after(argv, *options):
    """The word after the first of these options in argv, or None."""
    for index, word in enumerate(argv[:-1]):
        if word in options:
            return argv[index + 1]
    return None


def _unreachable(daemon, socket, error, where=""):
    """A daemon's control socket could not be connected to: whether it runs, and what the socket did."""
    error = error.strip().rstrip(".")
    lowered = error.lower()
    if "refused" in lowered:
        return "%s is not running%s: %s refused the connection" % (daemon, where, socket)
    if "no such file" in lowered:
        return "%s is not running%s: %s does not exist" % (daemon, where, socket)
    if "permission denied" in lowered:
        return "%s%s cannot be asked: %s is not accessible (permission denied: run verify as root)" % (
            daemon, where, socket)
    return "%s%s cannot be asked: %s (%s)" % (daemon, where, socket, error)


_NETNS_ERROR = re.compile(r'^Cannot open network namespace "(?P<netns>[^"]+)": (?P<error>.+)$')
_EXEC_ERROR = re.compile(r'^exec of "(?P<tool>[^"]+)" failed: (?P<error>.+)$')
_SWANCTL_ERROR = re.compile(r"^connecting to '(?:unix://)?(?P<socket>[^']+)' failed: (?P<error>.+)$")
_PLUTO_MISSING = re.compile(r'Pluto is not running \(no "(?P<socket>[^"]+)"\)')
_PLUTO_REFUSED = re.compile(r'connect\(\) for "(?P<socket>[^"]+)" failed \(\d+ (?P<error>[^)]+)\)'
                            r"|connect\(pluto_ctl\) failed: (?P<error52>[^(]+)")
_BIRDC_ERROR = re.compile(r"^Unable to connect to server control socket \((?P<socket>[^)]+)\): (?P<error>.+)$")


def _known_problem(line, argv):
    """The one-line problem a known error line of swanctl, whack, birdc or ip means, or None."""
    netns = _after(argv, "exec") if argv[:3] == ["ip", "netns", "exec"] else _after(argv, "-n", "-netns")
    match = _NETNS_ERROR.match(line)
    if match:
        if "no such file" in match.group("error").lower():
            return "netns %s does not exist" % match.group("netns")
        return "netns %s cannot be entered: %s" % (match.group("netns"), match.group("error"))
    match = _EXEC_ERROR.match(line)
    if match and "no such file" in match.group("error").lower():
        return "%s is not installed (not found on PATH%s)" % (
            match.group("tool"), " in netns %s" % netns if netns else "")
    match = _SWANCTL_ERROR.match(line)
    if match:
        return _unreachable("charon", match.group("socket"), match.group("error"))
    match = _PLUTO_MISSING.search(line)
    if match:
        return _unreachable("pluto", match.group("socket"), "No such file or directory")
    match = _PLUTO_REFUSED.search(line)
    if match:
        socket = match.group("socket") or _after(argv, "--ctlsocket") or "/run/pluto/pluto.ctl"
        return _unreachable("pluto", socket, match.group("error") or match.group("error52"))
    match = _BIRDC_ERROR.match(line)
    if match:
        return _unreachable("BIRD", match.group("socket"), match.group("error"),
                            " in netns %s" % netns if netns else "")
    return None


def command_result(run, argv, **kwargs):
    """Run argv through run(argv, **kwargs) -> (rc, stdout, stderr) and return the result in the shape of a
    registered command (cmd, rc, stdout, stderr), which command_problem reads; a command that cannot start
    (OSError) is a failed result carrying the error in msg, not an exception."""
    try:
        rc, stdout, stderr = run(argv, **kwargs)
    except OSError as exc:
        return {"cmd": argv, "rc": exc.errno or 2, "stdout": "", "stderr": "", "msg": str(exc)}
    return {"cmd": argv, "rc": rc, "stdout": stdout, "stderr": stderr}


def command_problem(result, what=None):
    """One line a person can act on for a command that failed (rc != 0), or None when it did not.

    result is the command's registered result (rc, stdout, stderr, cmd); what names it where
    the error is not one of the known ones (else the command's own name).  A module's result
    (no rc) fails when it carries a msg.
    """
    if not isinstance(result, Mapping) or result.get("skipped"):
        return None
    argv = _argv(result)
    rc = result.get("rc")
    if rc is None:
        if not result.get("msg") or argv:
            return None
    elif rc == 0:
        return None
    lines = _lines(result.get("stderr")) or _lines(result.get("stdout")) or _lines(result.get("msg"))
    if str(result.get("msg", "")).startswith("MODULE FAILURE"):
        # The module died (a traceback, an interpreter that is not there): its own last words say why.
        name = what or (argv[0] if argv else "a module")
        last = (_lines(result.get("module_stderr")) or _lines(result.get("module_stdout")) or lines)[-1:]
        return "%s crashed: %s" % (name, last[0] if last else result["msg"])
    for line in lines:
        problem = _known_problem(line, argv)
        if problem:
            return problem
    if rc is not None and "No such file or directory" in str(result.get("msg", "")) and argv:
        return "%s is not installed (not found on PATH)" % argv[0]
    name = what or (" ".join(argv[3:5]) if argv[:3] == ["ip", "netns", "exec"] else " ".join(argv[:2])) or "a command"
    if not lines:
        return "%s failed (rc %s) without a message" % (name, rc)
    return "%s failed%s: %s" % (name, " (rc %s)" % rc if rc is not None else "", lines[-1])


def _text_of(value, what):
    """(stdout or None, the result's problem or None) of a text or a registered command result."""
    if value is None or isinstance(value, str):
        return value, None
    if isinstance(value, Mapping):
        if value.get("skipped"):
            return None, None
        problem = command_problem(value, what)
        if problem:
            return None, problem
        stdout = value.get("stdout")
        if stdout is None or isinstance(stdout, str):
            return stdout or "", None
    raise HealthInputError("%s must be the text of the command's output or its registered result" % what)


def _route_tables(routes):
    """The `ip -j route` tables of a list of lists, of registered results, or of a registered loop."""
    if isinstance(routes, Mapping):
        routes = routes.get("results") or []
    tables = []
    for table in routes or []:
        if isinstance(table, Mapping):
            text, problem = _text_of(table, "ip route")
            if problem or not (text or "").strip():
                continue
            try:
                table = json.loads(text)
            except ValueError:
                raise HealthInputError("ip -j route: not JSON: %r" % text[:60])
        if not isinstance(table, (list, tuple)):
            raise HealthInputError("routes must be `ip -j route` outputs (lists), or their registered results")
        tables.append(table)
    return tables


# -- swanctl --list-sas (vici messages, --raw or --pretty) -------------------------
_RAW_TOKEN = re.compile(
    r"\s*(?:(?P<close>\})"
    r"|(?P<open>[^\s{}=\[\]]+(?: [^\s{}=\[\]]+)*) ?\{"
    r"|(?P<key>[^\s{}=]+)=(?:\[(?P<list>[^\]]*)\]|(?P<value>[^\s}]*)))"
)


def _raw_tokens(text):
    position = 0
    text = text.strip()
    while position < len(text):
        match = _RAW_TOKEN.match(text, position)
        if not match or match.end() == position:
            raise HealthInputError("swanctl output: cannot read %r" % text[position:position + 40])
        position = match.end()
        if match.group("close"):
            yield ("close",)
        elif match.group("open") is not None:
            yield ("open", match.group("open"))
        elif match.group("list") is not None:
            yield ("kv", match.group("key"), match.group("list").split())
        else:
            yield ("kv", match.group("key"), match.group("value"))


def _pretty_tokens(text):
    # One element per line, so values may hold spaces (DN identities do).
    items, key = None, None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if items is not None:
            if line == "]":
                yield ("kv", key, items)
                items = None
            else:
                items.append(line)
            continue
        if line == "}":
            yield ("close",)
        elif line.endswith("{") and " = " not in line:
            yield ("open", line[:-1].strip())
        elif " = " in line:
            key, value = line.split(" = ", 1)
            if value == "[":
                items = []
            elif value.startswith("[") and value.endswith("]"):
                yield ("kv", key, value[1:-1].split())
            else:
                yield ("kv", key, value)
        else:
            raise HealthInputError("swanctl output: cannot read line %r" % line)


def parse_vici_dump(text):
    """The messages of a swanctl command (``--raw`` or ``--pretty``) as [(name, section dict)]."""
    pretty = any(line.startswith((" ", "\t")) for line in text.splitlines())
    tokens = _pretty_tokens(text) if pretty else _raw_tokens(text)
    messages, stack = [], []
    for token in tokens:
        if token[0] == "open":
            section = {}
            if stack:
                stack[-1][token[1]] = section
            else:
                messages.append((token[1], section))
            stack.append(section)
        elif token[0] == "close":
            if not stack:
                raise HealthInputError("swanctl output: unbalanced '}'")
            stack.pop()
        else:
            if not stack:
                raise HealthInputError("swanctl output: %s outside of a message" % token[1])
            stack[-1][token[1]] = token[2]
    if stack:
        raise HealthInputError("swanctl output: truncated (a section is not closed)")
    return messages


def ike_sas(text):
    """IKE_SAs by connection name (a list each: rekeying can hold two at once)."""
    found = {}
    for name, message in parse_vici_dump(text or ""):
        if name != "list-sa event":
            continue
        for connection, sa in message.items():
            found.setdefault(connection, []).append(sa)
    return found


# -- ipsec whack --showstates (libreswan 4: "000 " before each line, states STATE_V2_...) --
_PLUTO_STATE = re.compile(r'^(?:\d{3} )?#(?P<serial>\d+): "(?P<conn>[^"]+)"\S*\s+'
                          r'(?:STATE_V2_)?(?P<state>[A-Z][A-Z0-9_]+)\b')
PLUTO_IKE_UP = "ESTABLISHED_IKE_SA"
PLUTO_CHILD_UP = "ESTABLISHED_CHILD_SA"


def pluto_states(text):
    """libreswan's states by connection name: a list of (serial, state) each."""
    found = {}
    for line in (text or "").splitlines():
        match = _PLUTO_STATE.match(line.strip())
        if match:
            found.setdefault(match.group("conn"), []).append((int(match.group("serial")), match.group("state")))
    return found


_PLUTO_SPIS = re.compile(r'^(?:\d{3} )?#(?P<serial>\d+): "(?P<conn>[^"]+)"\S*\s+'
                         r'(?P<sas>(?:(?:esp|ah|comp|tun)\.[0-9a-f]+@\S+\s*)+)')
_PLUTO_SA = re.compile(r"(?:esp|ah)\.(?P<spi>[0-9a-f]+)@(?P<address>\S+)")


def pluto_spis(text):
    """The SPIs pluto lists for its CHILD_SAs, by connection name: a list of (serial, spi, destination) each.

    ``esp.SPI@ADDRESS``: the SA that carries packets to ADDRESS (so an end's own address marks its
    inbound SA, the peer's its outbound one).
    """
    found = {}
    for line in (text or "").splitlines():
        match = _PLUTO_SPIS.match(line.strip())
        if match:
            for sa in _PLUTO_SA.finditer(match.group("sas")):
                found.setdefault(match.group("conn"), []).append(
                    (int(match.group("serial")), _spi(sa.group("spi")), sa.group("address")))
    return found


# -- birdc show protocols all -------------------------------------------------------
_ROUTES = re.compile(r"Routes:\s+(\d+) imported, (?:(\d+) filtered, )?(\d+) exported(?:, (\d+) preferred)?")


def bird_protocols(text):
    """Protocols of ``birdc show protocols all``: name, proto, state, info, and for BGP the neighbour and routes."""
    protocols = []
    current, channel = None, None
    for line in (text or "").splitlines():
        if not line.strip() or line.startswith(("BIRD ", "Name ")):
            continue
        if not line[0].isspace():
            fields = line.split(None, 5)
            if len(fields) < 4:
                raise HealthInputError("birdc output: cannot read protocol line %r" % line)
            current = {"name": fields[0], "proto": fields[1], "table": fields[2], "state": fields[3],
                       "info": fields[5].strip() if len(fields) > 5 else "", "bgp_state": None,
                       "neighbor_address": None, "neighbor_as": None, "last_error": None, "channels": {}}
            channel = None
            protocols.append(current)
            continue
        if current is None:
            continue
        key, _sep, value = line.strip().partition(":")
        value = value.strip()
        if key.startswith("Channel "):
            channel = current["channels"].setdefault(key.split()[1], {"imported": 0, "exported": 0})
        elif key == "BGP state":
            current["bgp_state"] = value
        elif key == "Neighbor address":
            current["neighbor_address"] = value.split("%")[0].strip()
        elif key == "Neighbor AS":
            current["neighbor_as"] = int(value)
        elif key == "Last error":
            current["last_error"] = value
        elif key == "Routes" and channel is not None:
            match = _ROUTES.match(line.strip())
            if match:
                channel["imported"], channel["exported"] = int(match.group(1)), int(match.group(3))
    return protocols


# -- ip -j route ----------------------------------------------------------------------
def kernel_routes(*tables):
    """Routes of ``ip -j route`` lists as {dst, protocol, devices} (every next hop's device)."""
    routes = []
    for table in tables:
        for route in table or []:
            devices = [hop.get("dev") for hop in route.get("nexthops", [])] or [route.get("dev")]
            routes.append({"dst": route.get("dst"), "protocol": route.get("protocol"),
                           "devices": [device for device in devices if device]})
    return routes


def _network(text):
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        return text  # "default", "multicast ..." and the like stay as they are


# -- the judgement of one end -----------------------------------------------------------
def _hex_id(value):
    try:
        return int(str(value).split("/", 1)[0], 16)
    except ValueError:
        return None


def _spi(value):
    """An SPI as swanctl prints it, eight hex digits (the kernel's facts say 0x...)."""
    text = str(value).strip().lower()
    text = text[2:] if text.startswith("0x") else text
    try:
        return "%08x" % int(text, 16)
    except ValueError:
        return text


def _address(text):
    try:
        return str(ipaddress.ip_address(str(text).split("%", 1)[0]))
    except ValueError:
        return text


def _head(problem):
    """"charon is not running" of "charon is not running: /run/charon.vici refused the connection"."""
    return problem.split(": ", 1)[0]


def _binding(end):
    """(SA attribute, planned value, words) of the end's tunnel: if_id for XFRM interfaces, mark for VTI."""
    if end["tunnel_type"] == "xfrm":
        return "if_id", end["if_id"], "if_id %d" % end["if_id"]
    return "mark", end["mark"], "mark %d" % end["mark"]


def _ike(end, sas, ike_checked, down=None):
    """IKE, CHILD, child bound, problems and the SPIs of a strongSwan end."""
    connection = end["connection"]
    if not ike_checked:
        return "n/a", "n/a", None, [], {"ike_spis": None, "child_spis": None}
    if down:
        return "none", "none", None, ["no IKE_SA %s (%s)" % (connection, _head(down))], {
            "ike_spis": None, "child_spis": None}
    candidates = sas.get(connection, [])
    established = [sa for sa in candidates if sa.get("state") == IKE_UP]
    children = [child for sa in candidates for child in (sa.get("child-sas") or {}).values()]
    spis = {
        "ike_spis": sorted([_spi(sa.get("initiator-spi", "")), _spi(sa.get("responder-spi", ""))]
                           for sa in established),
        "child_spis": [{"name": child.get("name", "?"), "state": child.get("state"),
                        "in": _spi(child.get("spi-in", "")), "out": _spi(child.get("spi-out", ""))}
                       for child in children],
    }
    if not candidates:
        return "none", "none", False, ["no IKE_SA %s" % connection], spis
    best = sorted(candidates, key=lambda sa: sa.get("state") != IKE_UP)[0]
    problems = [] if established else ["IKE_SA %s is %s" % (connection, best.get("state"))]
    if len(established) > 1:
        problems.append("%d IKE_SAs established for %s (duplicate)" % (len(established), connection))
    installed = [child for child in children if child.get("state") == CHILD_UP]
    if not installed:
        states = sorted(set(child.get("state", "?") for child in children))
        problems.append("no CHILD_SA installed (%s)" % (", ".join(states) or "none"))
        return best.get("state"), "/".join(states) or "none", None, problems, spis
    # Rekeys overlap: the old CHILD_SA is REKEYED or DELETING by then, never INSTALLED beside the new one.
    names = [child.get("name", "?") for child in installed]
    for name in sorted(set(names)):
        if names.count(name) > 1:
            problems.append("%d CHILD_SAs installed for %s (duplicate)" % (names.count(name), name))
    keys = ("if-id-in", "if-id-out") if end["tunnel_type"] == "xfrm" else ("mark-in", "mark-out")
    _attribute, want, _words = _binding(end)
    unbound = [child for child in installed if not all(_hex_id(child.get(key, "0")) == want for key in keys)]
    for child in unbound:
        seen = ", ".join("%s=%s" % (key, child.get(key)) for key in keys)
        problems.append("CHILD_SA %s not bound to %d (%s)" % (child.get("name", "?"), want, seen))
    return best.get("state"), CHILD_UP, not unbound, problems, spis


def _ike_pluto(end, states, spis, down=None):
    """An end held by libreswan: one conn per inner family, both on the link's one IKE SA."""
    conns = ["%s-%s" % (end["connection"], family) for family in ("v4", "v6")]
    if down:
        return "none", "none", None, ["no IKE_SA %s (%s)" % (end["connection"], _head(down))], {
            "ike_spis": None, "child_spis": None}
    local = _address(end.get("local_ike_address"))
    children = {}
    for conn in conns:
        for serial, spi, address in spis.get(conn, []):
            child = children.setdefault(serial, {"name": conn, "state": PLUTO_CHILD_UP, "in": None, "out": None})
            child["in" if _address(address) == local else "out"] = spi
    seen = dict((conn, [state for _serial, state in states.get(conn, [])]) for conn in conns)
    established = any(PLUTO_CHILD_UP in found_states for found_states in seen.values())
    # A pluto that lists established CHILD_SAs but none of their SPIs prints a format not read here:
    # then it says nothing about which kernel SAs are its own.
    found = {"ike_spis": None,
             "child_spis": [children[serial] for serial in sorted(children)] if children or not established else None}
    if not any(seen.values()):
        return "none", "none", None, ["no IKE_SA %s" % " or ".join(conns)], found
    problems = []
    ike_serials = sorted(set(serial for conn in conns for serial, state in states.get(conn, [])
                             if state == PLUTO_IKE_UP))
    if not ike_serials:
        problems.append("no IKE_SA established for %s (pluto: %s)" % (
            end["connection"],
            ", ".join(sorted(set(state for found_states in seen.values() for state in found_states)))))
    elif len(ike_serials) > 1:
        problems.append("%d IKE_SAs established for %s (duplicate: %s)" % (
            len(ike_serials), end["connection"], ", ".join("#%d" % serial for serial in ike_serials)))
    for conn in conns:
        serials = [serial for serial, state in states.get(conn, []) if state == PLUTO_CHILD_UP]
        if len(serials) > 1:
            problems.append("%d CHILD_SAs established for %s (duplicate: %s)" % (
                len(serials), conn, ", ".join("#%d" % serial for serial in serials)))
    down_conns = [conn for conn in conns if PLUTO_CHILD_UP not in seen[conn]]
    if down_conns:
        problems.append("no CHILD_SA established for %s" % ", ".join(down_conns))
    child = "none" if len(down_conns) == len(conns) else "partial" if down_conns else CHILD_UP
    # pluto does not report if_id or mark: the kernel's policies (_policies) and SAs (_kernel) say whether
    # they are bound.
    return IKE_UP if ike_serials else "down", child, None, problems, found


def _kernel_spis(end, states):
    """SPIs of the end's kernel SAs, by direction; None when not read.

    An XFRM interface's SAs carry its if_id.  A VTI device's SAs carry no mark (the policies do), so they
    are the SAs between the link's two IKE addresses: there is one link between two gateways.
    """
    if states is None:
        return None
    attribute, want, _words = _binding(end)
    local, remote = _address(end.get("local_ike_address")), _address(end.get("remote_ike_address"))
    found = {"in": [], "out": []}
    for state in states:
        if state.get("proto", "esp") not in ("esp", "ah"):
            continue
        if attribute == "mark":
            # VTI: charon (mark_in_sa=no) and pluto install the SAs without a mark; the policies carry it.
            # Between two gateways there is one link, so its IKE addresses name its SAs.
            if state.get("mark") not in (None, 0, want):
                continue
            pair = (_address(state.get("src")), _address(state.get("dst")))
            if pair not in ((local, remote), (remote, local)):
                continue
        elif state.get(attribute) != want:
            continue
        if "algorithms" in state and not state["algorithms"]:
            continue  # a larval SA (an SPI allocated for a negotiation): no keys, carries nothing
        spi = _spi(state.get("spi", ""))
        if spi.strip("0") == "":
            continue
        src, dst = _address(state.get("src")), _address(state.get("dst"))
        if src == local or dst == remote:
            found["out"].append(spi)
        elif dst == local or src == remote:
            found["in"].append(spi)
    return {"in": sorted(set(found["in"])), "out": sorted(set(found["out"]))}


def _kernel_words(end):
    if end["tunnel_type"] == "xfrm":
        return "with " + _binding(end)[2]
    return "between %s and %s" % (_address(end.get("local_ike_address")), _address(end.get("remote_ike_address")))


def _kernel(end, kernel, spis, daemon):
    """(bound, problems) of the kernel's SAs against what the IKE daemon lists for the end.

    bound: the kernel holds the end's SAs (_kernel_spis) in both directions, among them those of
    every CHILD_SA the daemon lists as up (None when the kernel was not read).  An SA that no CHILD_SA
    lists, in any state, is stale (the daemon that made it died, or lost it); spis["child_spis"] None:
    the daemon did not say, nothing is stale.
    """
    if kernel is None:
        return None, []
    words = _kernel_words(end)
    missing = ["no %s ESP SA in the kernel %s" % ("inbound" if direction == "in" else "outbound", words)
               for direction in ("in", "out") if not kernel[direction]]
    children = spis.get("child_spis")
    if children is None:
        return not missing, missing
    absent = []
    for child in children:
        if child.get("state") not in (CHILD_UP, PLUTO_CHILD_UP):
            continue
        for direction in ("in", "out"):
            if child.get(direction) and kernel[direction] and child[direction] not in kernel[direction]:
                absent.append("CHILD_SA %s SPI %s (%s) is not in the kernel %s" % (
                    child.get("name", "?"), child[direction], direction, words))
    stale = []
    for direction in ("in", "out"):
        listed = set(child.get(direction) for child in children)
        for spi in kernel[direction]:
            if spi not in listed:
                stale.append("kernel SA %s (%s) %s belongs to no CHILD_SA of %s (stale)" % (
                    spi, direction, words, daemon))
    return not (missing or absent), missing + absent + stale


def _policies(end, policies):
    attribute, want, _words = _binding(end)
    directions = set(policy.get("direction") for policy in policies or [] if policy.get(attribute) == want)
    missing = [direction for direction in ("in", "out") if direction not in directions]
    if missing:
        return False, ["no XFRM policy with %s %d for %s" % (attribute, want, " and ".join(missing))]
    return True, []


def _bgp(end, protocols, down=None):
    neighbours = set(str(ipaddress.ip_address(end[key])) for key in ("peer_address_v6", "peer_address_v4")
                     if end.get(key))
    sessions = [p for p in protocols if p["proto"] == "BGP" and p["neighbor_address"]
                and str(ipaddress.ip_address(p["neighbor_address"])) in neighbours]
    if not sessions:
        why = " (%s)" % _head(down) if down else ""
        return "none", 0, ["no BGP session with %s%s" % (" or ".join(sorted(neighbours)), why)]
    problems = ["BGP %s is %s%s" % (s["name"], s["bgp_state"] or s["state"],
                                    " (%s)" % s["last_error"] if s["last_error"] else "")
                for s in sessions if s["bgp_state"] != BGP_UP]
    states = sorted(set(s["bgp_state"] or s["state"] for s in sessions))
    imported = sum(channel["imported"] for s in sessions for channel in s["channels"].values())
    return "/".join(states), imported, problems


def _prefixes(end, routes, site_prefixes, require_prefixes):
    via = sorted(set(_network(route["dst"]) for route in routes
                     if route["protocol"] == "bird" and end["interface"] in route["devices"]))
    missing = [prefix for prefix in site_prefixes if _network(prefix) not in via]
    problems = []
    if missing:
        problems.append("%s not routed via %s" % (", ".join(missing), end["interface"]))
    elif require_prefixes and not via:
        problems.append("no route learned via %s" % end["interface"])
    return via, missing, problems


def link_health(ends, sites=None, swanctl=None, policies=None, birdc=None, routes=None, require_prefixes=True,
                pluto=None, states=None):
    """One row per link end of one gateway, judged alone (cross_check then judges it against its peer).

    ends: the gateway's ends (plan ``hosts[gateway]``); sites: the plan's
    ``sites`` (static prefixes expected from each peer site); swanctl:
    ``swanctl --list-sas``, pluto: libreswan's ``ipsec whack --showstates``
    (None where that daemon does not run: the IKE columns read n/a);
    policies: ``routevpn_xfrm_policies``; states: ``routevpn_xfrm_states``
    (None: not read, the kernel's SAs are not judged); birdc: ``birdc show
    protocols all``; routes: ``ip -j route`` lists of the private namespace
    (both families).  swanctl, pluto and birdc are each the command's text or
    its registered result; routes are lists or the registered loop.

    Each row carries ``evidence`` for cross_check: whether the end's IKE
    daemon answered, the SPIs of its IKE_SAs (strongSwan) and CHILD_SAs, and
    the kernel's SAs bound to the end by direction.
    """
    swanctl, swanctl_down = _text_of(swanctl, "swanctl --list-sas")
    pluto, pluto_down = _text_of(pluto, "ipsec whack --showstates")
    birdc, bird_down = _text_of(birdc, "birdc show protocols all")
    sas = ike_sas(swanctl) if swanctl is not None else {}
    pluto_found, pluto_sas = (pluto_states(pluto), pluto_spis(pluto)) if pluto is not None else ({}, {})
    protocols = bird_protocols(birdc)
    table = kernel_routes(*_route_tables(routes))
    rows = []
    for end in ends:
        daemon = end.get("ike_daemon", "strongswan")
        if daemon == "libreswan" and (pluto is not None or pluto_down):
            ike, child, child_bound, problems, spis = _ike_pluto(end, pluto_found, pluto_sas, pluto_down)
            answered, down, name = not pluto_down, pluto_down, "pluto"
        else:
            ike_checked = (swanctl is not None or bool(swanctl_down)) and daemon == "strongswan"
            ike, child, child_bound, problems, spis = _ike(end, sas, ike_checked, swanctl_down)
            answered, down, name = (not swanctl_down) if ike_checked else None, swanctl_down, "charon"
        kernel = _kernel_spis(end, states)
        kernel_bound, kernel_problems = _kernel(end, kernel, spis if answered else {}, name)
        policy_ok, policy_problems = _policies(end, policies)
        bgp, imported, bgp_problems = _bgp(end, protocols, bird_down)
        expected = ((sites or {}).get(end["peer_site"]) or {}).get("prefixes") or []
        via, missing, prefix_problems = _prefixes(end, table, expected, require_prefixes)
        problems += kernel_problems + policy_problems + bgp_problems + prefix_problems
        rows.append({
            "gateway": end["gateway"], "peer": end["peer"], "link": end["link"], "interface": end["interface"],
            "ike": ike, "child": child, "if_id": end["if_id"] if end["tunnel_type"] == "xfrm" else end["mark"],
            "if_id_ok": policy_ok and child_bound is not False and kernel_bound is not False,
            "bgp": bgp, "imported": imported, "prefixes": via, "missing_prefixes": missing, "ok": not problems,
            "problems": problems,
            "evidence": {"ike_daemon": daemon, "daemon": name, "daemon_answered": answered, "daemon_problem": down,
                         "ike_spis": spis["ike_spis"], "child_spis": spis["child_spis"], "kernel": kernel},
        })
    return rows


# -- the judgement of a link: both ends ---------------------------------------------------
def _on(problem, gateway):
    """"charon is not running on v1-1: /run/charon.vici refused the connection"."""
    head, _sep, detail = problem.partition(": ")
    return "%s on %s%s" % (head, gateway, ": " + detail if detail else "")


def _agreement(row, other):
    """What the two ends of one link disagree on, each naming the link and the gateway concerned."""
    link, me, peer = row["link"], row["gateway"], row["peer"]
    mine, theirs = row.get("evidence") or {}, other.get("evidence") or {}
    problems = []
    if theirs.get("daemon_answered") is False:
        problems.append("link %s: peer %s has no IKE_SA for it (%s)" % (
            link, peer, _on(theirs.get("daemon_problem") or "%s is not answering" % theirs.get("daemon"), peer)))
    elif other.get("ike") not in (IKE_UP, "n/a"):
        problems.append("link %s: peer %s has no IKE_SA for it%s" % (
            link, peer, "" if other.get("ike") in ("none", None) else " (it is %s there)" % other["ike"]))
    elif row.get("ike") == IKE_UP and mine.get("ike_spis") and theirs.get("ike_spis"):
        for holder, other_end, held, seen in ((me, peer, mine["ike_spis"], theirs["ike_spis"]),
                                              (peer, me, theirs["ike_spis"], mine["ike_spis"])):
            problems += ["link %s: IKE_SA %s_i %s_r of %s is not on %s (stale)"
                         % (link, spi_i, spi_r, holder, other_end)
                         for spi_i, spi_r in held if [spi_i, spi_r] not in [list(pair) for pair in seen]]
    mk, tk = mine.get("kernel"), theirs.get("kernel")
    if mk is not None and tk is not None:
        for sender, receiver, sent, received in ((me, peer, mk, tk), (peer, me, tk, mk)):
            for spi in sent["out"]:
                if spi not in received["in"]:
                    problems.append("link %s: SPI %s out of %s is not an inbound SA on %s (stale)" % (
                        link, spi, sender, receiver))
    return problems


def cross_check(rows, verified=None, external=()):
    """Every gateway's rows, each end judged against its peer's end as well.

    rows: link_health's rows of every gateway that reported; verified: the
    gateways this run verifies (None: those in rows).  An end is healthy when
    it is healthy alone and its peer's end reported and agrees: the peer's
    IKE daemon answers and holds an IKE_SA for the link, every outbound SA of
    one end's kernel is an inbound SA of the other's, and (strongSwan on both
    ends) both list the same IKE_SA SPIs.  An end whose peer is not verified
    by this run (``--limit``) is ``not verified``: neither healthy nor down.
    An end whose peer is ``external`` (routevpn_external_peers: nobody reads
    that side) is judged alone, and says so (``external``).
    Returns new rows with ``status`` (``ok``, ``DOWN``, ``not verified``),
    ``ok``, ``problems`` and ``unverified`` (why not, or None).
    """
    ends = dict(((row["gateway"], row["link"]), row) for row in rows)
    reported = set(row["gateway"] for row in rows)
    verified = reported if verified is None else set(verified)
    checked = []
    for row in rows:
        row = dict(row)
        problems, unverified = list(row["problems"]), None
        link, peer = row["link"], row["peer"]
        row["external"] = peer in external
        if row["external"]:
            pass  # the peer's side is its operator's: this end's own checks are all there is
        elif peer not in verified:
            unverified = "peer %s is not verified by this run (outside --limit)" % peer
        elif peer not in reported:
            problems.append("link %s: peer %s did not report" % (link, peer))
        elif (peer, link) not in ends:
            problems.append("link %s: peer %s reported no end of it" % (link, peer))
        else:
            problems += _agreement(row, ends[(peer, link)])
        row.update(problems=problems, unverified=unverified, ok=not problems and unverified is None,
                   status="DOWN" if problems else "not verified" if unverified else "ok")
        checked.append(row)
    return checked


# -- what is wrong with a gateway, not with one of its links ---------------------------
_RESULT_NAMES = {"health": "gateway_health", "swanctl": "swanctl --list-sas", "pluto": "ipsec whack --showstates",
                 "xfrm": "xfrm_policy_facts", "kernel": "reading the kernel's XFRM state",
                 "birdc": "birdc show protocols all", "routes": "ip route"}
_RESULT_ORDER = ("health", "netns", "swanctl", "pluto", "xfrm", "kernel", "birdc", "routes")


def _side(netns):
    return "netns %s" % netns if netns else "the public namespace"


def _netns_problems(result):
    """The private_netns module's check: its failure, the devices that leak, what drifted."""
    if not isinstance(result, Mapping) or result.get("skipped"):
        return []
    problems = [command_problem(result, "private_netns")]
    for leak in result.get("leaks") or []:
        problems.append("leak: %s (%s) joins %s to %s directly; only tunnel devices may cross" % (
            leak.get("interface"), leak.get("kind") or "device", _side(leak.get("netns")),
            _side(leak.get("peer_netns"))))
    problems += ["drift: %s" % change for change in result.get("changes") or []]
    return problems


def gateway_problems(results):
    """What is wrong with a gateway rather than one link, one line each, from verify's registered results.

    results: by name - ``health`` (the gateway_health module, when it could
    not run), ``netns`` (routevpn.mesh.private_netns in check
    mode: failure, leaks, drift), and the commands and modules ``swanctl``,
    ``pluto``, ``xfrm`` (xfrm_policy_facts), ``birdc`` and ``routes`` (a
    loop).  Known errors become a sentence ("charon is not running:
    /run/charon.vici refused the connection"); others their last meaningful
    line, without strongSwan's plugin noise or a usage text.  Skipped tasks
    say nothing; a line that several commands share is given once.
    """
    problems = []
    for name in sorted(results, key=lambda name: (_RESULT_ORDER + (name,)).index(name)):
        result = results[name]
        if name == "netns":
            problems += _netns_problems(result)
        elif isinstance(result, Mapping) and isinstance(result.get("results"), list):
            problems += [command_problem(item, _RESULT_NAMES.get(name, name)) for item in result["results"]]
        else:
            problems.append(command_problem(result, _RESULT_NAMES.get(name, name)))
    unique = []
    for problem in problems:
        if problem and problem not in unique:
            unique.append(problem)
    return unique


# -- the table -----------------------------------------------------------------------------
COLUMNS = (("gateway", "gateway"), ("peer", "peer"), ("link", "link"), ("IKE", "ike"), ("CHILD", "child"),
           ("if_id", "if_id"), ("BGP", "bgp"), ("prefixes", "prefixes"), ("status", "status"))


def _status(row):
    return row.get("status") or ("ok" if row["ok"] else "DOWN")


def _cell(row, key):
    if key == "status":
        return _status(row)
    value = row[key]
    if key == "if_id":
        return "%d %s" % (value, "ok" if row["if_id_ok"] else "BAD")
    if key == "prefixes":
        return "%d%s" % (len(value), " (missing %d)" % len(row["missing_prefixes"]) if row["missing_prefixes"] else "")
    return str(value)


def health_table(rows):
    """The rows as aligned text lines: a header, one line per link end, then each problem, then a count."""
    cells = [[title for title, _key in COLUMNS]] + [[_cell(row, key) for _title, key in COLUMNS] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells]
    for row in rows:
        for problem in row["problems"]:
            lines.append("%s -> %s: %s" % (row["gateway"], row["peer"], problem))
        if row.get("unverified") and not row["problems"]:
            lines.append("%s -> %s: not verified: %s" % (row["gateway"], row["peer"], row["unverified"]))
    healthy = sum(1 for row in rows if _status(row) == "ok")
    unverified = sum(1 for row in rows if _status(row) == "not verified")
    external = sum(1 for row in rows if row.get("external"))
    lines.append("%d of %d link ends healthy%s%s" % (
        healthy, len(rows), ", %d not verified (peer outside this run)" % unverified if unverified else "",
        ", %d to external peers (judged by their Linux end alone)" % external if external else ""))
    return lines


def health_summary(rows):
    """Counts of the rows by status: {"ok": n, "DOWN": n, "not verified": n}."""
    summary = {"ok": 0, "DOWN": 0, "not verified": 0}
    for row in rows:
        summary[_status(row)] = summary.get(_status(row), 0) + 1
    return summary
