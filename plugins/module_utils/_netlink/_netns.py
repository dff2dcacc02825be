# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to routevpn.mesh: netlink sockets and sysctls in named network namespaces.

Works with pyroute2 0.7.x (Debian 12) and 0.9.x: both create a missing
namespace silently unless told ``flags=0``, and 0.7.x has no
``IPRoute(netns=...)``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._pyroute2_dep import IPRoute

NETNS_RUN_DIR = "/run/netns"


class NetnsError(Exception):
    """A network namespace is missing or cannot be entered."""


def netns_exists(name):
    return os.path.exists(os.path.join(NETNS_RUN_DIR, name))


def require_netns(name):
    if not netns_exists(name):
        raise NetnsError(
            "network namespace %r does not exist (%s/%s); create it first, "
            "e.g. with the routevpn.mesh.private_netns role" % (name, NETNS_RUN_DIR, name)
        )


def is_current_netns(name):
    """Whether /run/netns/NAME is the namespace this process is in (e.g. under ``ip netns exec NAME``)."""
    try:
        mine, theirs = os.stat("/proc/self/ns/net"), os.stat(os.path.join(NETNS_RUN_DIR, name))
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def open_iproute(netns=None):
    """An rtnetlink socket in ``netns`` (None: the module's own namespace); never creates one."""
    if netns is None:
        return IPRoute()
    require_netns(netns)
    try:
        return IPRoute(netns=netns, flags=0)
    except TypeError:
        # pyroute2 0.7.x: IPRoute has no netns argument; NetNS forks a helper in the namespace.
        from pyroute2 import NetNS

        return NetNS(netns, flags=0)


def _in_netns(netns, action):
    """Run ``action()`` in a forked child that joined ``netns``; return its text result.

    /proc/sys/net shows the namespace of the process that opens it, and
    sysctls have no netlink API, so the child enters the namespace first.
    """
    if netns is None:
        return action()
    require_netns(netns)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        status = 0
        try:
            os.close(read_end)
            from pyroute2.netns import setns

            setns(netns, flags=0)
            payload = "ok:" + (action() or "")
        except Exception as exc:  # pylint: disable=broad-except
            payload = "error:%s" % exc
            status = 1
        data = payload.encode("utf-8")
        while data:  # a pipe takes large payloads in pieces
            data = data[os.write(write_end, data):]
        os.close(write_end)
        os._exit(status)  # pylint: disable=protected-access
    os.close(write_end)
    chunks = []
    while True:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    payload = b"".join(chunks).decode("utf-8")
    kind, value = payload.partition(":")[::2]
    if kind != "ok":
        raise NetnsError("in network namespace %s: %s" % (netns, value or "the helper process died"))
    return value


def sysctl_path(*components):
    """/proc/sys path of a sysctl given as components (interface names may hold dots)."""
    return os.path.join("/proc/sys", *components)


def read_sysctls(paths, netns=None):
    """``{path: value}`` of many sysctls in ``netns``, in one visit; None for those that do not exist there."""
    paths = list(paths)
    if not paths:
        return {}

    def read():
        values = {}
        for path in paths:
            try:
                with open(path) as handle:
                    values[path] = handle.read().strip()
            except (IOError, OSError) as exc:
                if exc.errno != errno.ENOENT:
                    raise
                values[path] = None
        return json.dumps(values)

    return json.loads(_in_netns(netns, read))


def write_sysctls(values, netns=None, skip_missing=False):
    """Write ``{path: value}`` in ``netns``, in one visit; ``skip_missing``: ignore sysctls this kernel lacks."""
    if not values:
        return

    def write():
        for path, value in sorted(values.items()):
            if skip_missing and not os.path.exists(path):
                continue
            with open(path, "w") as handle:
                handle.write(str(value))
        return ""

    _in_netns(netns, write)


def read_sysctl(path, netns=None):
    """The value of the sysctl at ``path`` in ``netns``, or None when it does not exist there."""
    return read_sysctls([path], netns)[path]


def write_sysctl(path, value, netns=None):
    write_sysctls({path: value}, netns)
