# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The libreswan_config module's transaction: a libreswan gateway's conn and secrets files, and pluto's conns.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  Read the files and what pluto has loaded
(``whack --status``); compute the difference; write; parse the whole
configuration with libreswan's own parser (``addconn --checkconfig``); then
replace in the running pluto only the conns whose file changed (libreswan 4
has no in-place update: delete, then add), delete those no file defines any
more, reread the secrets and start the new conns this end initiates.  pluto
is never restarted, so the SAs of every other link stay up.  When pluto
refuses a conn, the previous files come back and their conns are loaded
again.  Commands go through the ``run(argv)`` callable the module gives (its
run_command), so that nothing here imports Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import stat
import tempfile

from .._mesh.health import command_problem, command_result
from .._netlink._pyroute2_dep import HAS_PYROUTE2
from .._netlink._xfrm_dump import XfrmError, delete_policies

# A conn's first line in `ipsec whack --status`: 000 "name": left...right
_STATUS_CONN = re.compile(r'^(?:[0-9]+ +)?"([^"]+)": [^ ]+[.][.][.]', re.MULTILINE)
# The line of an XFRM conn that has its if_id (libreswan 5.2, ipsec-interface-managed=no):
# "name":   conn_prio: 0,0,0; interface: ipsec[4296]@lo; ...
_STATUS_IF_ID = re.compile(r'^(?:[0-9]+ +)?"([^"]+)": .*[ ;]interface: [a-z]+\[([0-9]+)\]', re.MULTILINE)
_CONN = re.compile(r"^conn[ \t]+(\S+)[ \t]*$", re.MULTILINE)
_VERSION = re.compile(r"^Libreswan (?:U)?([0-9]+[.][0-9]+)", re.MULTILINE)
# An --asynchronous whack has handed its request over once sent, but 4.10's whack stayed attached for
# 17 min in the mixed lab (a CREATE_CHILD_SA its 5.2 peer never answered): it gets this long.
INITIATE_TIMEOUT = 30
# The outbound policies of a route-based XFRM conn: everything, per family.
_EVERYTHING = ("0.0.0.0/0", "::/0")


class LibreswanError(Exception):
    """A refusal or failure, in one line that names what to fix."""


def _mode(text):
    try:
        mode = int(str(text), 8)
    except ValueError:
        raise LibreswanError("mode %r is not an octal file mode such as 0644" % (text,))
    if mode & ~0o7777:
        raise LibreswanError("mode %r is not an octal file mode such as 0644" % (text,))
    return mode


def _lines(*texts):
    return [line.strip() for text in texts for line in (text or "").splitlines() if line.strip()]


def conns_of(content):
    """The conn sections a file defines, in order (``conn %default`` is none)."""
    return [name for name in _CONN.findall(content or "") if not name.startswith("%")]


def loaded_conns(status):
    """(conns, {conn: if_id}) from ``whack --status``: the conns pluto holds, and the if_ids of its XFRM ones."""
    conns = []
    for name in _STATUS_CONN.findall(status or ""):
        if name not in conns:
            conns.append(name)
    return conns, dict((name, int(if_id)) for name, if_id in _STATUS_IF_ID.findall(status or ""))


def version_of(text):
    """"X.Y" from ``ipsec --version``, or None."""
    found = _VERSION.search(text or "")
    return found.group(1) if found else None


class LibreswanFile:
    """One file of the role under the connection directory; a secret one is never shown."""

    def __init__(self, name, content, mode="0644", secret=False):
        if not name or os.path.isabs(name) or ".." in name.split("/") or "/" in name:
            raise LibreswanError("file name %r is not a plain file name in the connection directory" % (name,))
        self.name = name
        self.content = content
        self.mode = _mode(mode)
        self.secret = secret


class LibreswanConfig:
    """The files of one libreswan gateway, and the running pluto that loads them."""

    def __init__(self, conf_dir, files, run, conf_file="/etc/ipsec.conf", ipsec="ipsec",
                 ctl_socket="/run/pluto/pluto.ctl", purge=(), conn_pattern=None, initiate=(), replace_all=False,
                 restart=(), remove_out_policies=None, check_mode=False):
        self.conf_dir = conf_dir
        self.files = files
        self.run = run
        self.conf_file = conf_file
        self.ipsec = ipsec
        self.ctl_socket = ctl_socket
        self.purge = [re.compile(pattern) for pattern in purge]
        self.conn_pattern = re.compile(conn_pattern) if conn_pattern else None
        self.initiate = list(initiate)
        self.replace_all = replace_all
        self.restart = list(restart)
        self.remove_out_policies = remove_out_policies or self._remove_out_policies
        self.check_mode = check_mode
        names = [item.name for item in files]
        duplicates = sorted(set(name for name in names if names.count(name) > 1))
        if duplicates:
            raise LibreswanError("file names given twice: %s" % ", ".join(duplicates))

    # -- reading ------------------------------------------------------------------------
    def _path(self, name):
        return os.path.join(self.conf_dir, name)

    def _read(self, name):
        """(content, mode) of a file, (None, None) when it is not there."""
        path = self._path(name)
        try:
            with open(path) as handle:
                content = handle.read()
            return content, stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            return None, None

    def _owned(self):
        """The files of the directory this module owns (they match a purge pattern)."""
        try:
            names = sorted(os.listdir(self.conf_dir))
        except FileNotFoundError:
            return []
        return [name for name in names if os.path.isfile(self._path(name))
                and any(pattern.search(name) for pattern in self.purge)]

    def _whack(self, *args):
        return command_result(self.run, [self.ipsec, "whack", "--ctlsocket", self.ctl_socket] + list(args))

    def loaded(self):
        """(conns, {conn: if_id}) of the running pluto; LibreswanError when it does not answer."""
        result = self._whack("--status")
        if result["rc"] != 0:
            raise LibreswanError("pluto does not answer on %s (%s)" % (
                self.ctl_socket, command_problem(result, "ipsec whack --status") or "rc %s" % result["rc"]))
        return loaded_conns(result["stdout"])

    def changes(self):
        """{"write": [(file, old content, old mode)], "remove": [name]}."""
        write = []
        for item in self.files:
            content, mode = self._read(item.name)
            if content != item.content or mode != item.mode:
                write.append((item, content, mode))
        wanted = set(item.name for item in self.files)
        return {"write": write, "remove": [name for name in self._owned() if name not in wanted]}

    # -- applying -----------------------------------------------------------------------
    def _write(self, name, content, mode):
        handle, temporary = tempfile.mkstemp(dir=self.conf_dir, prefix=".routevpn-")
        try:
            os.fchmod(handle, mode)
            with os.fdopen(handle, "w") as out:
                out.write(content)
            os.rename(temporary, self._path(name))
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
        """libreswan's parser over the whole configuration: any output is a problem.

        ``addconn --checkconfig`` exits 3 on a syntax error but reports conn-level errors (a duplicate key, a
        missing also=) on stderr with exit 0 (measured with 4.10).
        """
        result = command_result(self.run, [self.ipsec, "addconn", "--config", self.conf_file, "--checkconfig"])
        said = _lines(result["stdout"], result["stderr"], result.get("msg"))
        if result["rc"] == 0 and not said:
            return None
        return "%s or a file it includes does not parse (%s)" % (self.conf_file, " / ".join(said)
                                                                 or "rc %s" % result["rc"])

    def _each(self, conns, *options):
        """whack --name CONN OPTIONS for each conn; the conns it failed for."""
        failed = []
        for conn in conns:
            argv = [self.ipsec, "whack", "--ctlsocket", self.ctl_socket, "--name", conn] + list(options)
            if "--asynchronous" in options:
                argv = ["timeout", str(INITIATE_TIMEOUT)] + argv
            result = command_result(self.run, argv)
            # An asynchronous start that timed out has still been handed to pluto.
            if result["rc"] != 0 and not ("--asynchronous" in options and result["rc"] == 124):
                failed.append(conn)
        return failed

    def _add(self, conns):
        """addconn each conn (it reports only the last of several names' status); what it said."""
        said = []
        for conn in conns:
            result = command_result(self.run, [self.ipsec, "addconn", "--ctlsocket", self.ctl_socket,
                                               "--config", self.conf_file, conn])
            said.extend(_lines(result["stdout"], result["stderr"], result.get("msg")))
        return said

    @staticmethod
    def _remove_out_policies(if_ids):
        """pluto (5.2, and its later sources) tells the kernel policies of conns with equal selectors apart by
        marks, never by if_id: deleting an XFRM conn while another link's is routed, it "restores" the other
        conn's outbound policy and leaves its own in the kernel.  Removed here, over netlink, by the deleted
        conns' if_ids (only XFRM conns have one: the tunnels role, and so pyroute2, is on such a gateway)."""
        if not HAS_PYROUTE2:
            raise LibreswanError("removing the outbound XFRM policies of deleted XFRM conns needs pyroute2 "
                                 "(on Debian: apt install python3-pyroute2)")
        removed = []
        try:
            for if_id in if_ids:
                removed += delete_policies([(everything, everything) for everything in _EVERYTHING], "out", if_id)
        except XfrmError as exc:
            raise LibreswanError(str(exc))
        return removed

    def run_transaction(self):
        """Apply; returns the module's result (changed, what changed in the files and in pluto, diff)."""
        changes = self.changes()
        loaded, loaded_if_ids = None, {}
        try:
            loaded, loaded_if_ids = self.loaded()
        except LibreswanError:
            # In check mode pluto may not run yet (a fresh gateway: the run would start it first).
            if not self.check_mode:
                raise
        planned = [conn for item in self.files if not item.secret for conn in conns_of(item.content)]
        # A changed conn file replaces every conn it defines (both families of a link); a changed secret only needs
        # the secrets reread.  Conns pluto lacks (it restarted, a run stopped half-way) are added too.
        replace = [conn for item, _content, _mode in changes["write"] if not item.secret
                   for conn in conns_of(item.content)]
        if loaded is not None:
            replace += [conn for conn in planned if conn not in loaded]
        if self.replace_all:
            replace += planned
        unknown = [conn for conn in self.restart if conn not in planned]
        if unknown:
            raise LibreswanError("restart names conns no file defines: %s" % ", ".join(unknown))
        replace += self.restart
        replace = [conn for index, conn in enumerate(replace) if conn not in replace[:index]]
        # By name, not by file, so that the conns of a file removed by hand or of a run stopped half-way go too.
        stale = [conn for conn in loaded or [] if conn not in planned
                 and self.conn_pattern is not None and self.conn_pattern.search(conn)]
        delete = stale + [conn for conn in replace if conn in (loaded or [])]
        result = {
            "changed": bool(changes["write"] or changes["remove"] or replace or stale),
            "written": [item.name for item, _content, _mode in changes["write"]],
            # Written over an earlier version (a changed key, not a new link's first one).
            "replaced": [item.name for item, content, _mode in changes["write"] if content is not None],
            "removed": changes["remove"],
            "loaded_before": loaded,
            "deleted": delete,
            "added": replace,
            "initiated": [conn for conn in replace if conn in self.initiate],
            "policies_removed": [],
            "diff": [{"before_header": item.name, "after_header": item.name,
                      "before": "" if item.secret else content or "",
                      "after": "(secret)\n" if item.secret else item.content}
                     for item, content, _mode in changes["write"]]
            + [{"before_header": name, "after_header": name, "before": "(present)\n", "after": ""}
               for name in changes["remove"]],
        }
        if self.check_mode or not result["changed"]:
            return result
        removed = [(name,) + self._read(name) for name in changes["remove"]]
        for item, _content, _mode in changes["write"]:
            self._write(item.name, item.content, item.mode)
        for name in changes["remove"]:
            self._remove(name)
        problem = self._parse_problem()
        if problem:
            self._restore(changes["write"], removed)
            raise LibreswanError("%s. The previous files were put back; nothing was loaded." % problem)
        self._each(delete, "--delete")
        if_ids = sorted(set(loaded_if_ids[conn] for conn in delete if conn in loaded_if_ids))
        result["policies_removed"] = self.remove_out_policies(if_ids) if if_ids else []
        self._whack("--rereadsecrets")
        said = self._add(replace)
        now, _if_ids = self.loaded()
        refused = [conn for conn in replace if conn not in now]
        if refused:
            self._restore(changes["write"], removed)
            # The other family's conn of a refused link may be loaded in its new version.
            self._each([conn for conn in replace if conn in now], "--delete")
            previous = [conn for conn in replace if conn in loaded]
            self._add(previous)
            self._whack("--rereadsecrets")
            self._each([conn for conn in previous if conn in self.initiate], "--initiate", "--asynchronous")
            reason = " / ".join(said) or "not loaded"
            raise LibreswanError(
                "pluto refused %s (%s). The previous files were put back and their conns loaded again; check "
                "routevpn_libreswan_ike and routevpn_libreswan_esp." % (", ".join(refused), reason))
        # Only the conns this end initiates, and only started, never routed (what auto=start does when pluto
        # starts): a trap's acquire would cross the start and leave two CHILD SAs per conn.
        self._each(result["initiated"], "--initiate", "--asynchronous")
        return result
