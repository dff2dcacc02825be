# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The swanctl_config module's transaction: a gateway's swanctl files, and charon's loaded state, as one change.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  Read the files and what charon has loaded; compute
the difference; then write, parse the whole tree with strongSwan's own
parser, load it (``swanctl --load-all``, which also unloads what the files
no longer have), and close the IKE_SAs of connections that went away.  When
the tree does not parse or charon refuses it, the previous files are put
back (and loaded again), so a gateway keeps the configuration that worked.
Commands go through the ``run(argv, env)`` callable the module gives (its
run_command), so that nothing here imports Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from .._files.tree import FilesError, FileTree
from .._mesh.health import command_problem, command_result

# strongSwan's plugins that Debian's packages leave out say so on every
# swanctl call; they are noise in an error message.
_NOISE = re.compile(r"^plugin '[^']+': failed to load|^opening directory|^loaded plugins")
_LIST_CONN = re.compile(r"^list-conn event \{(\S+) \{", re.MULTILINE)
_REFUSAL = re.compile(r"fail|invalid|error|unable|unknown", re.IGNORECASE)


class SwanctlError(FilesError):
    """The files were not applied; the message says why, and what was put back."""


def _lines(*texts):
    lines = []
    for text in texts:
        lines += [line.strip() for line in (text or "").splitlines() if line.strip() and not _NOISE.match(line)]
    return lines


class SwanctlConfig:
    """A gateway's swanctl files and charon's loaded connections, brought to the wanted ones together.

    files: ManagedFile list; purge: regexes of names (relative to
    swanctl_dir) of files this module owns, removed when not in files;
    conf_file: what ``swanctl --load-all --file`` reads; uri: charon's VICI
    socket URI; connections: the names of the connections the files define
    (None: not compared), so that a charon that lost them is loaded again;
    run(argv, env=None) -> (rc, stdout, stderr).
    """

    def __init__(self, swanctl_dir, files, run, conf_file=None, purge=(), uri="unix:///run/charon.vici",
                 connections=None, load=True, check_mode=False, terminate_timeout=5):
        self.tree = FileTree(swanctl_dir, files, purge, nested=True, what="the swanctl directory")
        self.conf_file = conf_file or self.tree.path("swanctl.conf")
        self.run = run
        self.uri = uri
        self.connections = connections
        self.load = load
        self.check_mode = check_mode
        self.terminate_timeout = terminate_timeout

    # -- reading ----------------------------------------------------------------------
    def _swanctl(self, *args, **kwargs):
        return command_result(self.run, ["swanctl"] + list(args), **kwargs)

    def loaded(self):
        """Names of the connections charon has loaded; SwanctlError (one line) when it does not answer."""
        result = self._swanctl("--list-conns", "--raw", "--uri", self.uri)
        problem = command_problem(result)
        if problem:
            raise SwanctlError(problem)
        # One message a line, the connection's name first; its values may hold spaces ("pre-shared key"),
        # which the raw form does not quote, so only the name is read.
        return sorted(match.group(1) for match in _LIST_CONN.finditer(result["stdout"] or ""))

    # -- applying ---------------------------------------------------------------------
    def _parse_problem(self):
        """strongSwan's parser over the whole tree (an include that does not parse makes --load-all unload all)."""
        result = self._swanctl("--help", env={"STRONGSWAN_CONF": self.conf_file})
        if result["rc"] == 0:
            return None
        lines = _lines(result["stderr"], result["stdout"])
        return "%s or a file it includes does not parse (%s)" % (
            self.conf_file, " / ".join(line for line in lines if not line.startswith(("swanctl", "usage")))
            or "rc %s" % result["rc"])

    def _load(self):
        """None when charon took the files, else the refusal in one line."""
        result = self._swanctl("--load-all", "--noprompt", "--file", self.conf_file, "--uri", self.uri)
        if result["rc"] == 0:
            return None
        problem = command_problem(result, "swanctl --load-all")
        refusal = [line for line in _lines(result["stdout"], result["stderr"]) if _REFUSAL.search(line)]
        return "charon refused the new swanctl configuration (swanctl --load-all exit %s: %s)" % (
            result["rc"], " / ".join(refusal) or problem)

    def _terminate(self, connection):
        """Close a connection's IKE_SAs; a few tries (a dead peer's SA may be re-initiating). True when closed."""
        for _attempt in range(3):
            result = self._swanctl("--terminate", "--ike", connection, "--force", "--timeout",
                                   str(self.terminate_timeout), "--uri", self.uri)
            said = (result["stdout"] or "") + (result["stderr"] or "")
            if "no matching SAs" in said:
                return False
            if result["rc"] == 0:
                return True
        raise SwanctlError("could not close the IKE_SAs of %s, a connection no longer configured: %s" % (
            connection, command_problem(result, "swanctl --terminate") or "rc %s" % result["rc"]))

    def run_transaction(self):
        """Apply; returns the module's result (changed, what changed, diff of the files that are not secret)."""
        changes = self.tree.changes()
        loaded_before = None
        if self.load:
            try:
                loaded_before = self.loaded()
            except SwanctlError:
                # In check mode charon may not run yet (a fresh gateway: the run would start it first).
                if not self.check_mode:
                    raise
        result = dict(self.tree.result(changes), changed=bool(changes["write"] or changes["remove"]),
                      loaded=loaded_before, loaded_before=loaded_before, unloaded=[], terminated=[])
        # The files may be as wanted while charon holds something else (it restarted and nothing loaded them,
        # or an earlier load failed half-way): then loading them again is the change.
        reload_only = (self.load and not result["changed"] and self.connections is not None
                       and sorted(self.connections) != (loaded_before or []))
        if reload_only:
            result["changed"] = True
        if self.check_mode or not result["changed"]:
            return result
        removed = self.tree.apply(changes)
        problem = self._parse_problem()
        if problem is None and self.load:
            problem = self._load()
        if problem:
            self.tree.restore(changes, removed)
            if self.load and self._parse_problem() is None:
                self._load()
            raise SwanctlError("%s. The previous files were put back%s." % (
                problem, " and loaded again" if self.load else ""))
        if self.load:
            result["loaded"] = self.loaded()
            result["unloaded"] = sorted(set(loaded_before) - set(result["loaded"]))
            result["terminated"] = [name for name in result["unloaded"] if self._terminate(name)]
        return result
