# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to routevpn.mesh: the tunnels of a namespace brought back at boot, by the tunnel modules' own code.

``routevpn-tunnels@NETNS.service`` runs::

    python3 -m ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnels_boot up NETNS STATE_FILE

with PYTHONPATH the archive the ``tunnels_boot`` module installs (this
module and what it imports, nothing of Ansible).  STATE_FILE is the JSON
that module writes, ``{"netns": ..., "xfrm": [...], "vti": [...],
"mss_file": ...}``, whose items are the ``config`` items of
``xfrm_interface`` and ``vti_tunnel``.  Each kind goes through
``wanted_state`` and ``LinkSet(state="merged")`` as the modules' list form
does: a missing interface is created in this (public) namespace and moved
into NETNS, one that differs is repaired, one as wanted is left alone; a
VTI device gets its disable_policy sysctls after the move (``VTI.sysctls``).
Then the MSS rules are loaded into NETNS with ``nft -f``.

No import of Ansible at import time, here or in what this imports: the
boot unit's Python need not have it (the tunnels_boot action plugin refuses
to build an archive that would).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._links import LinkError, LinkSet
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._netns import NETNS_RUN_DIR, netns_exists
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._pyroute2_dep import HAS_PYROUTE2
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnel_kinds import VTI, XFRM
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnel_module import wanted_state

PROG = "routevpn-tunnels"
MODULE = "ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnels_boot"
USAGE = "usage: python3 -m %s up NETNS STATE_FILE" % MODULE
# The state's lists, in the order they are applied, and the kind each holds.
KINDS = (("xfrm", XFRM), ("vti", VTI))


class BootError(Exception):
    """The state cannot be applied at all; the message names the file or namespace and the fix."""


def check_netns_name(netns):
    if not netns or "/" in netns or netns in (".", ".."):
        raise BootError("%r is not a network namespace name (a file name in %s)" % (netns, NETNS_RUN_DIR))
    return netns


def check_state(state, where="the state"):
    """``state`` as the tunnels_boot module writes it, or BootError naming what is wrong."""
    if not isinstance(state, dict):
        raise BootError("%s is not a mapping" % where)
    unknown = sorted(set(state) - set(["netns", "mss_file"] + [key for key, _kind in KINDS]))
    if unknown:
        raise BootError("%s: unknown keys %s" % (where, ", ".join(unknown)))
    if not isinstance(state.get("netns"), str):
        raise BootError("%s has no netns" % where)
    check_netns_name(state["netns"])
    for key, _kind in KINDS:
        items = state.get(key) or []
        if not isinstance(items, list) or not all(isinstance(item, dict) and item.get("name") for item in items):
            raise BootError("%s: %s must be a list of interfaces, each a mapping with a name" % (where, key))
    if state.get("mss_file") is not None and not isinstance(state["mss_file"], str):
        raise BootError("%s: mss_file must be a path or null" % where)
    return state


def read_state(path, netns):
    """The state of ``netns`` in ``path``."""
    try:
        with open(path) as handle:
            text = handle.read()
    except FileNotFoundError:
        raise BootError("%s is missing; run the routevpn.mesh playbook (its tunnels role writes it)" % path)
    except OSError as exc:
        raise BootError("%s: %s" % (path, exc.strerror or exc))
    try:
        state = json.loads(text)
    except ValueError as exc:
        raise BootError("%s is not JSON (%s); run the routevpn.mesh playbook to write it again" % (path, exc))
    check_state(state, path)
    if state["netns"] != netns:
        raise BootError("%s is the state of netns %s, not of %s" % (path, state["netns"], netns))
    return state


def _link_set(kind, entries, netns, report):
    """LinkSet on ``entries``; when it fails, each entry again on its own, so that one cannot stop the others."""
    try:
        result = LinkSet(kind, entries, state="merged", scope=[netns]).run()
    except (LinkError, OSError) as exc:
        if len(entries) == 1:
            return [str(exc)]
        errors = []
        for entry in entries:
            errors.extend(_link_set(kind, [entry], netns, report))
        return errors
    for line in result["changes"]:
        report(line)
    return []


def load_mss(path, netns, report):
    """``ip netns exec NETNS nft -f PATH``: the errors (a list of one line or none)."""
    if not path:
        return []
    if not os.path.exists(path):
        report("%s is missing: no MSS rules loaded into netns %s" % (path, netns))
        return []
    command = ["ip", "netns", "exec", netns, "nft", "-f", path]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as exc:
        return ["%s: %s" % (" ".join(command), exc)]
    if proc.returncode != 0:
        output = " / ".join(line.strip() for line in (proc.stderr + proc.stdout).splitlines() if line.strip())
        return ["%s failed (rc %d): %s" % (" ".join(command), proc.returncode, output or "no output")]
    report("MSS rules %s loaded into netns %s" % (path, netns))
    return []


def _stdout(line):
    sys.stdout.write(line + "\n")


def wanted_entries(state):
    """``([(key, kind, entries)], errors)``: the state's interfaces as LinkSet wants them, and a one-line error for
    each that cannot be one (the modules' checks, by ``wanted_state``)."""
    netns = state["netns"]
    kinds, errors = [], []
    for key, kind in KINDS:
        entries = []
        for item in state.get(key) or []:
            item = dict(item)
            if item.get("netns") is None:
                item["netns"] = netns
            if item["netns"] != netns:
                errors.append("%s: in netns %s, not %s" % (item["name"], item["netns"], netns))
                continue
            try:
                entries.append(wanted_state(kind, item))
            except LinkError as exc:
                errors.append(str(exc))
        kinds.append((key, kind, entries))
    return kinds, errors


def apply_state(state, report=_stdout):
    """Bring the tunnels of ``state`` back and load its MSS rules; the one-line errors (none: all done).

    An interface that cannot be made is reported and the others are made
    all the same.  ``report`` receives a line per change.
    """
    netns = state["netns"]
    kinds, errors = wanted_entries(state)
    for key, kind, entries in kinds:
        if not entries:
            continue
        if not HAS_PYROUTE2:
            errors.append("pyroute2 is missing for %s: no %s interface made (on Debian: apt install python3-pyroute2)"
                          % (sys.executable, key))
            continue
        errors.extend(_link_set(kind, entries, netns, report))
    errors.extend(load_mss(state.get("mss_file"), netns, report))
    return errors


def main(argv=None):
    """The boot unit's command line; 0: every interface as wanted, 1: something failed (said on stderr), 2: usage."""
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 3 or args[0] != "up":
        sys.stderr.write(USAGE + "\n")
        return 2
    netns, path = args[1], args[2]

    def error(message):
        sys.stderr.write("%s: %s\n" % (PROG, message))

    def report(line):
        sys.stdout.write("%s: %s\n" % (PROG, line))

    try:
        check_netns_name(netns)
        state = read_state(path, netns)
        if not netns_exists(netns):
            raise BootError("netns %s does not exist (%s/%s); routevpn-netns@%s.service makes it"
                            % (netns, NETNS_RUN_DIR, netns, netns))
    except BootError as exc:
        error(exc)
        return 1
    errors = apply_state(state, report)
    for message in errors:
        error(message)
    if not errors:
        count = sum(len(state.get(key) or []) for key, _kind in KINDS)
        report("netns %s: %d tunnel interface%s as wanted" % (netns, count, "" if count == 1 else "s"))
    sys.stdout.flush()
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
