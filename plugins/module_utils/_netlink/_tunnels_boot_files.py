# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to routevpn.mesh: the files of the tunnels' boot unit, the tunnels_boot module's backend.

Two files, each written only when its content or mode differs (atomically,
by ``FileTree``): the archive of the collection's boot code
(``LIBEXEC_DIR/routevpn-mesh-boot.zip``, built by the action plugin) and the
state of one namespace (``CONFIG_DIR/NETNS.json``, read at boot by
``_tunnels_boot``).  The state is checked as the boot unit will read it, so
that an interface it could not make fails the task, not the boot.  What
earlier versions installed instead (the shell script ``routevpn-tunnels``
and its ``NETNS.conf``) is removed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re

from ansible_collections.routevpn.mesh.plugins.module_utils._files.tree import FilesError, FileTree, ManagedFile
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnels_boot import (
    BootError,
    check_state,
    wanted_entries,
)

ARCHIVE = "routevpn-mesh-boot.zip"
# Up to 0.3: the boot unit ran this shell script on NETNS.conf, a line format rendered by the tunnels role.
OLD_SCRIPT = "routevpn-tunnels"
OLD_CONF_MARK = "Read at boot by routevpn-tunnels@"


def state_text(state):
    """The state file's content: pretty JSON with sorted keys, so that equal states are equal files."""
    return json.dumps(state, indent=2, sort_keys=True) + "\n"


class TunnelsBoot:
    """The boot unit's archive and the state of ``netns``: compare, write unless in check mode, report."""

    def __init__(self, netns, xfrm, vti, mss_file, archive, config_dir, libexec_dir, check_mode=False):
        self.state = {"netns": netns, "xfrm": list(xfrm or []), "vti": list(vti or []), "mss_file": mss_file}
        try:
            check_state(self.state, "the state of netns %s" % netns)
        except BootError as exc:
            raise FilesError(str(exc))
        dummy, errors = wanted_entries(self.state)
        if errors:
            raise FilesError("the boot unit could not make these interfaces: %s" % "; ".join(errors))
        if not isinstance(archive, bytes) or not archive:
            raise FilesError("no archive of the boot code; the tunnels_boot action plugin builds it")
        self.check_mode = check_mode
        self.archive_path = os.path.join(libexec_dir, ARCHIVE)
        self.state_path = os.path.join(config_dir, netns + ".json")
        self.trees = [
            FileTree(libexec_dir, [ManagedFile(ARCHIVE, archive, "0644")], purge=["^%s$" % re.escape(OLD_SCRIPT)],
                     nested=False, what="the libexec directory"),
            FileTree(config_dir, [ManagedFile(netns + ".json", state_text(self.state), "0644")],
                     purge=self._old_conf(config_dir, netns), nested=False, what="the tunnels' config directory"),
        ]

    @staticmethod
    def _old_conf(config_dir, netns):
        """The old state file's name as a purge pattern, when it is one (not another role's file of that name)."""
        try:
            with open(os.path.join(config_dir, netns + ".conf")) as handle:
                head = handle.read(4096)
        except (OSError, UnicodeDecodeError):
            return []
        return ["^%s$" % re.escape(netns + ".conf")] if OLD_CONF_MARK in head else []

    def run_transaction(self):
        written, removed, diff = [], [], []
        for tree in self.trees:
            changes = tree.changes()
            if not self.check_mode:
                tree.apply(changes)
            result = tree.result(changes)
            written.extend(tree.path(name) for name in result["written"])
            removed.extend(tree.path(name) for name in result["removed"])
            for entry in result["diff"]:
                entry.update(before_header=tree.path(entry["before_header"]),
                             after_header=tree.path(entry["after_header"]))
                diff.append(entry)
        return {
            "changed": bool(written or removed),
            "archive": self.archive_path,
            "state_file": self.state_path,
            "written": written,
            "removed": removed,
            "diff": diff,
        }
