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

import re

from .._files.tree import FilesError, FileTree
from .._mesh.health import command_problem, command_result
from .._netlink._pyroute2_dep import HAS_PYROUTE2
from .._netlink._xfrm_dump import XfrmError, delete_policies

# A conn's first line in `ipsec whack --status`: 000 "name": left...right
_STATUS_CONN = re.compile(r'^(?:[0-9]+ +)?"([^"]+)": [^ ]+[.][.][.]', re.MULTILINE)
# The line of an XFRM conn that has its if_id (libreswan 5.2, ipsec-interface-managed=no):
# "name":   conn_prio: 0,0,0; interface: ipsec[4296]@lo; ...
_STATUS_IF_ID = re.compile(r'^(?:[0-9]+ +)?"([^"]+)": .*[ ;]interface: [a-z]+\[([0-9]+)\]', re.MULTILINE)
_CONN = re.compile(r"^conn[ \t]+(\S+)[ \t]*$", re.MULTILINE)
# An --asynchronous whack has handed its request over once sent, but 4.10's whack stayed attached for
# 17 min in the mixed lab (a CREATE_CHILD_SA its 5.2 peer never answered): it gets this long.
INITIATE_TIMEOUT = 30
# The outbound policies of a route-based XFRM conn: everything, per family.
_EVERYTHING = ("0.0.0.0/0", "::/0")


class LibreswanError(FilesError):
    """A refusal or failure, in one line that names what to fix."""


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


class LibreswanConfig:
    """The files of one libreswan gateway, and the running pluto that loads them."""

    def __init__(self, conf_dir, files, run, conf_file="/etc/ipsec.conf", ipsec="ipsec",
                 ctl_socket="/run/pluto/pluto.ctl", purge=(), conn_pattern=None, initiate=(), replace_all=False,
                 restart=(), remove_out_policies=None, check_mode=False):
        self.tree = FileTree(conf_dir, files, purge, nested=False, what="the connection directory")
        self.run = run
        self.conf_file = conf_file
        self.ipsec = ipsec
        self.ctl_socket = ctl_socket
        self.conn_pattern = re.compile(conn_pattern) if conn_pattern else None
        self.initiate = list(initiate)
        self.replace_all = replace_all
        self.restart = list(restart)
        self.remove_out_policies = remove_out_policies or self._remove_out_policies
        self.check_mode = check_mode

    # -- reading ------------------------------------------------------------------------
    def _whack(self, *args):
        return command_result(self.run, [self.ipsec, "whack", "--ctlsocket", self.ctl_socket] + list(args))

    def loaded(self):
        """(conns, {conn: if_id}) of the running pluto; LibreswanError when it does not answer."""
        result = self._whack("--status")
        if result["rc"] != 0:
            raise LibreswanError("pluto does not answer on %s (%s)" % (
                self.ctl_socket, command_problem(result, "ipsec whack --status") or "rc %s" % result["rc"]))
        return loaded_conns(result["stdout"])

    # -- applying -----------------------------------------------------------------------
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
        changes = self.tree.changes()
        loaded, loaded_if_ids = None, {}
        try:
            loaded, loaded_if_ids = self.loaded()
        except LibreswanError:
            # In check mode pluto may not run yet (a fresh gateway: the run would start it first).
            if not self.check_mode:
                raise
        planned = [conn for item in self.tree.files if not item.secret for conn in conns_of(item.content)]
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
        result = dict(self.tree.result(changes),
                      changed=bool(changes["write"] or changes["remove"] or replace or stale),
                      loaded_before=loaded, deleted=delete, added=replace,
                      initiated=[conn for conn in replace if conn in self.initiate], policies_removed=[])
        if self.check_mode or not result["changed"]:
            return result
        removed = self.tree.apply(changes)
        problem = self._parse_problem()
        if problem:
            self.tree.restore(changes, removed)
            raise LibreswanError("%s. The previous files were put back; nothing was loaded." % problem)
        self._each(delete, "--delete")
        if_ids = sorted(set(loaded_if_ids[conn] for conn in delete if conn in loaded_if_ids))
        result["policies_removed"] = self.remove_out_policies(if_ids) if if_ids else []
        self._whack("--rereadsecrets")
        said = self._add(replace)
        now, _if_ids = self.loaded()
        refused = [conn for conn in replace if conn not in now]
        if refused:
            self.tree.restore(changes, removed)
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
