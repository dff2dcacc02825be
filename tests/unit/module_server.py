"""A warm interpreter that runs collection modules, one forked child per run.

Started by module_runner under the interpreter a test asks for (this
environment's or Debian's /usr/bin/python3), it imports ansible-core's
module_utils and pyroute2 once, then for each request on stdin forks a child
that enters the requested network namespace and runs the module file as
``python -m`` would, with its arguments file.  The child's output goes to
files named in the request; one JSON line with the exit status comes back.

Why: under TCG in the kernel tier a fresh interpreter spends 15 to 20 s
importing pyroute2 and ansible.module_utils.basic over 9p before the module
does anything; a test of ten module runs took five minutes.  The module code
that runs is unchanged.
"""

import ctypes
import importlib
import json
import os
import runpy
import sys
import traceback

CLONE_NEWNET = 0x40000000
PRELOAD = (
    "ansible.module_utils.basic",
    "pyroute2",
    "ansible_collections.routevpn.mesh.plugins.module_utils._netlink._tunnel_module",
    "ansible_collections.routevpn.mesh.plugins.module_utils._netlink._private_netns",
    "ansible_collections.routevpn.mesh.plugins.module_utils._netlink._xfrm_dump",
)


def _enter_netns(name):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, "setns into %s: %s" % (name, os.strerror(error)))
    finally:
        os.close(fd)


def _child(request):
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.stdout = open(1, "w", closefd=False)
    sys.stderr = open(2, "w", closefd=False)
    sys.stdin = open(os.devnull)
    code = 1
    try:
        if request.get("netns"):
            _enter_netns(request["netns"])
        sys.argv = [request["module"], request["args_file"]]
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:  # pylint: disable=broad-except
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main():
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the module will report it in its own words
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request)
        status = os.waitpid(pid, 0)[1]
        print(json.dumps({"rc": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
