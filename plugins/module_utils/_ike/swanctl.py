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

import os
import re
import stat
import tempfile

from .._mesh.health import command_problem, command_result

# strongSwan's plugins that Debian's packages leave out say so on every
# swanctl call; they are noise in an error message.
_NOISE = re.compile(r"^plugin '[^']+': failed to load|^opening directory|^loaded plugins")
_LIST_CONN = re.compile(r"^list-conn event \{(\S+) \{", re.MULTILINE)
_REFUSAL = re.compile(r"fail|invalid|error|unable|unknown", re.IGNORECASE)


class SwanctlError(Exception):
    """The files were not applied; the message says why, and what was put back."""


def _mode(text):
    try:
        value = int(str(text), 8)
    except ValueError:
        raise SwanctlError("mode %r is not an octal file mode" % (text,))
    if value & ~0o7777:
        raise SwanctlError("mode %r is not a file mode" % (text,))
    return value


def _lines(*texts):
    lines = []
    for text in texts:
        lines += [line.strip() for line in (text or "").splitlines() if line.strip() and not _NOISE.match(line)]
    return lines


class SwanctlFile:
    """One file this module owns: its name under the swanctl directory, content, mode, secrecy."""

    def __init__(self, name, content, mode="0644", secret=False):
        if not name or name.startswith("/") or ".." in name.split("/"):
            raise SwanctlError("file name %r must be a relative path inside the swanctl directory" % (name,))
        self.name = name
        self.content = content
        self.mode = _mode(mode)
        self.secret = bool(secret)


class SwanctlConfig:
    """A gateway's swanctl files and charon's loaded connections, brought to the wanted ones together.

    files: SwanctlFile list; purge: regexes of names (relative to
    swanctl_dir) of files this module owns, removed when not in files;
    conf_file: what ``swanctl --load-all --file`` reads; uri: charon's VICI
    socket URI; connections: the names of the connections the files define
    (None: not compared), so that a charon that lost them is loaded again;
    run(argv, env=None) -> (rc, stdout, stderr).
    """

    def __init__(self, swanctl_dir, files, run, conf_file=None, purge=(), uri="unix:///run/charon.vici",
                 connections=None, load=True, check_mode=False, terminate_timeout=5):
        self.swanctl_dir = swanctl_dir.rstrip("/") or "/"
        self.conf_file = conf_file or os.path.join(self.swanctl_dir, "swanctl.conf")
        names = [item.name for item in files]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise SwanctlError("files: %s given more than once" % ", ".join(duplicates))
        self.files = files
        try:
            self.purge = [re.compile(pattern) for pattern in purge]
        except re.error as exc:
            raise SwanctlError("purge: %s" % exc)
        self.run = run
        self.uri = uri
        self.connections = connections
        self.load = load
        self.check_mode = check_mode
        self.terminate_timeout = terminate_timeout

    # -- reading ----------------------------------------------------------------------
    def _path(self, name):
        return os.path.join(self.swanctl_dir, name)

    def _read(self, name):
        """(content, mode) of a file, or (None, None) when it is not there."""
        path = self._path(name)
        try:
            with open(path) as handle:
                content = handle.read()
            return content, stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            return None, None

    def _owned(self):
        """Names of the files under swanctl_dir that purge matches."""
        found = []
        for top, _dirs, names in os.walk(self.swanctl_dir):
            for name in names:
                relative = os.path.relpath(os.path.join(top, name), self.swanctl_dir)
                if any(pattern.search(relative) for pattern in self.purge):
                    found.append(relative)
        return sorted(found)

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

    # -- the plan of the change ---------------------------------------------------------------
    def changes(self):
        """{"write": [(SwanctlFile, before content or None, before mode)], "remove": [names]}."""
        write = []
        for item in self.files:
            content, mode = self._read(item.name)
            if content != item.content or mode != item.mode:
                write.append((item, content, mode))
        wanted = {item.name for item in self.files}
        remove = [name for name in self._owned() if name not in wanted]
        return {"write": write, "remove": remove}

    # -- applying ---------------------------------------------------------------------
    def _write(self, name, content, mode):
        path = self._path(name)
        directory = os.path.dirname(path)
        # A directory made for a file others may not read (a key) is not readable by them either.
        os.makedirs(directory, mode=0o755 if mode & 0o044 else 0o700, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".routevpn-")
        try:
            os.fchmod(handle, mode)
            with os.fdopen(handle, "w") as out:
                out.write(content)
            os.rename(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def _remove(self, name):
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            pass

    def _restore(self, written, removed):
        for item, content, mode in written:
            if content is None:
                self._remove(item.name)
            else:
                self._write(item.name, content, mode)
        for name, content, mode in removed:
            self._write(name, content, mode)

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
        changes = self.changes()
        loaded_before = None
        if self.load:
            try:
                loaded_before = self.loaded()
            except SwanctlError:
                # In check mode charon may not run yet (a fresh gateway: the run would start it first).
                if not self.check_mode:
                    raise
        result = {
            "changed": bool(changes["write"] or changes["remove"]),
            "written": [item.name for item, _content, _mode in changes["write"]],
            # Written over an earlier version (a changed key or certificate, not a new link's first one).
            "replaced": [item.name for item, content, _mode in changes["write"] if content is not None],
            "removed": changes["remove"],
            "loaded": loaded_before,
            "loaded_before": loaded_before,
            "unloaded": [],
            "terminated": [],
            "diff": [{"before_header": item.name, "after_header": item.name,
                      "before": "" if item.secret else content or "",
                      "after": "(secret)\n" if item.secret else item.content}
                     for item, content, _mode in changes["write"]]
            + [{"before_header": name, "after_header": name, "before": "(present)\n", "after": ""}
               for name in changes["remove"]],
        }
        # The files may be as wanted while charon holds something else (it restarted and nothing loaded them,
        # or an earlier load failed half-way): then loading them again is the change.
        reload_only = (self.load and not result["changed"] and self.connections is not None
                       and sorted(self.connections) != (loaded_before or []))
        if reload_only:
            result["changed"] = True
        if self.check_mode or not result["changed"]:
            return result
        removed = [(name,) + self._read(name) for name in changes["remove"]]
        for item, _content, _mode in changes["write"]:
            self._write(item.name, item.content, item.mode)
        for name in changes["remove"]:
            self._remove(name)
        problem = self._parse_problem()
        if problem is None and self.load:
            problem = self._load()
        if problem:
            self._restore(changes["write"], removed)
            if self.load and self._parse_problem() is None:
                self._load()
            raise SwanctlError("%s. The previous files were put back%s." % (
                problem, " and loaded again" if self.load else ""))
        if self.load:
            result["loaded"] = self.loaded()
            result["unloaded"] = sorted(set(loaded_before) - set(result["loaded"]))
            result["terminated"] = [name for name in result["unloaded"] if self._terminate(name)]
        return result
