# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bird_config module's transaction: BIRD's configuration file, and what the running BIRD has loaded.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  Read the file; compare; parse the new text with
BIRD's own parser (``bird -p``) before it goes anywhere near the working
file; replace the file; then ``birdc configure`` the running BIRD.  When
BIRD refuses what its parser accepted (it reads the file again as its own
user: an include it may not read), the previous file is put back and loaded
again, so that a gateway keeps the configuration that worked.  Commands go
through the ``run(argv)`` callable the module gives (its run_command), so
that nothing here imports Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import grp
import os
import pwd
import re
import stat
import tempfile

from .._files.tree import FilesError, octal_mode
from .._mesh.health import command_problem, command_result

# birdc configure: "Reconfigured", or, while protocols restart, "Reconfiguration in progress"
# ("... already in progress, queueing new config").
_ACCEPTED = re.compile(r"^Reconfigured|^Reconfiguration (already )?in progress", re.MULTILINE)
# birdc's greeting and BIRD's echo of what it reads are not the refusal.
_CHATTER = re.compile(r"^BIRD [0-9.]+ ready\.|^Reading configuration from ")


class BirdError(FilesError):
    """A refusal or failure, in one line that names what to fix."""


def _said(result):
    """What BIRD said, without birdc's greeting, in one line."""
    lines = [line.strip() for line in ((result.get("stdout") or "") + "\n" + (result.get("stderr") or "")).splitlines()]
    return " / ".join(line for line in lines if line and not _CHATTER.match(line))


class BirdConfig:
    """One BIRD configuration file and the BIRD that reads it (over its control socket)."""

    def __init__(self, path, content, run, owner=None, group=None, mode="0640",
                 control_socket="/run/bird/bird.ctl", reload=True, check_mode=False):
        self.path = path
        self.content = content
        self.run = run
        self.uid = self._id(owner, pwd.getpwnam, "owner", "user")
        self.gid = self._id(group, grp.getgrnam, "group", "group")
        self.mode = octal_mode(mode)
        self.control_socket = control_socket
        self.reload = reload
        self.check_mode = check_mode

    @staticmethod
    def _id(name, lookup, option, kind):
        if name is None:
            return None
        try:
            return lookup(name)[2]
        except KeyError:
            if str(name).isdigit():
                return int(name)
            raise BirdError("%s: there is no %s %r on this host" % (option, kind, name))

    # -- reading ------------------------------------------------------------------------
    def current(self):
        """(content, mode, uid, gid) of the file, content None when it is not there."""
        try:
            with open(self.path) as handle:
                content = handle.read()
            info = os.stat(self.path)
        except FileNotFoundError:
            return None, None, None, None
        return content, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid

    def _birdc(self, *args):
        return command_result(self.run, ["birdc", "-s", self.control_socket] + list(args))

    def running(self):
        """True when a BIRD answers on the control socket."""
        return self._birdc("show", "status")["rc"] == 0

    # -- applying -----------------------------------------------------------------------
    def _temporary(self, content, mode, uid, gid):
        """A new file beside the configuration (includes resolve as they will there), with its final attributes."""
        directory = os.path.dirname(self.path) or "."
        if not os.path.isdir(directory):
            if not self.check_mode:
                raise BirdError("%s: its directory %s does not exist" % (self.path, directory))
            # A fresh host in check mode: the run would make the directory first.
            directory = None
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".routevpn-bird-")
        try:
            with os.fdopen(handle, "w") as out:
                out.write(content)
            os.chmod(temporary, mode)
            if uid is not None or gid is not None:
                os.chown(temporary, -1 if uid is None else uid, -1 if gid is None else gid)
        except BaseException:
            os.unlink(temporary)
            raise
        return temporary

    def _parse_problem(self, path):
        result = command_result(self.run, ["bird", "-p", "-c", path])
        if result["rc"] == 0:
            return None
        return _said(result).replace(path, self.path) or command_problem(result, "bird -p") or "rc %s" % result["rc"]

    def _configure_problem(self):
        """None when BIRD took the file, else its refusal in one line."""
        result = self._birdc("configure")
        if result["rc"] == 0 and _ACCEPTED.search(result["stdout"] or ""):
            return None
        return _said(result) or command_problem(result, "birdc configure") or "rc %s" % result["rc"]

    def _put(self, content, mode, uid, gid):
        temporary = self._temporary(content, mode, uid, gid)
        os.rename(temporary, self.path)

    def run_transaction(self):
        """Apply; returns the module's result (changed, written, reloaded, running, diff)."""
        before, mode, uid, gid = self.current()
        wanted = (self.content, self.mode,
                  uid if self.uid is None else self.uid, gid if self.gid is None else self.gid)
        written = before != self.content
        changed = (before, mode, uid, gid) != wanted
        result = {
            "changed": changed,
            "written": written,
            "reloaded": False,
            "running": None,
            "diff": {"before_header": self.path, "after_header": self.path,
                     "before": before or "", "after": self.content},
        }
        if not changed:
            return result
        # BIRD's parser sees the new text before anything else does, in check mode too.
        temporary = self._temporary(*wanted)
        try:
            problem = self._parse_problem(temporary)
            if problem:
                raise BirdError("BIRD's parser refused the new configuration of %s, which was left as it was: %s"
                                % (self.path, problem))
            if self.check_mode:
                return result
            os.rename(temporary, self.path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
        if not (self.reload and written):
            return result
        result["running"] = self.running()
        if not result["running"]:
            # Nothing to reload: the BIRD that starts next reads the new file.
            return result
        problem = self._configure_problem()
        if problem is None:
            result["reloaded"] = True
            return result
        if before is None:
            os.unlink(self.path)
            raise BirdError("BIRD refused the new configuration of %s (birdc configure: %s); the file was removed"
                            % (self.path, problem))
        self._put(before, mode, uid, gid)
        again = self._configure_problem()
        raise BirdError("BIRD refused the new configuration of %s (birdc configure: %s). The previous file was put "
                        "back%s." % (self.path, problem, " and loaded again" if again is None
                                     else ", but BIRD refused it too (%s)" % again))
