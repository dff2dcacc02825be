# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The configuration modules' one way from a transaction to Ansible's result (swanctl_config, libreswan_config,
bird_config).

This is a private module of the routevpn.mesh collection; its interface may
change without notice.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .tree import FilesError, ManagedFile


def files_options():
    """The argument spec of the ``files`` and ``secrets`` options: lists of {name, content, mode}."""
    return dict(
        files=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            content=dict(type="str", required=True),
            mode=dict(type="str", default="0644"),
        )),
        # The list is not secret (its names are shown); each content is.
        secrets=dict(type="list", elements="dict", default=[], no_log=False, options=dict(
            name=dict(type="str", required=True),
            content=dict(type="str", required=True, no_log=True),
            mode=dict(type="str", default="0600"),
        )),
    )


def managed_files(params):
    """The ManagedFile list of the ``files`` and ``secrets`` options (FilesError for a mode that is not one)."""
    return ([ManagedFile(**item) for item in params["files"]]
            + [ManagedFile(secret=True, **item) for item in params["secrets"]])


def exit_with_transaction(module, build):
    """Run ``build(run).run_transaction()`` and exit with its result, or fail with its one line.

    run(argv, env=None) is the module's run_command; a refusal (FilesError and
    its daemons' subclasses) or an OSError fails the module naming it.  The
    transaction's diff reaches the result only in diff mode.
    """

    def run(argv, env=None):
        return module.run_command(argv, environ_update=env or {}, handle_exceptions=False)

    try:
        result = build(run).run_transaction()
    except (FilesError, OSError) as exc:
        module.fail_json(msg=str(exc))
    diff = result.pop("diff")
    if module._diff:  # pylint: disable=protected-access
        result["diff"] = diff
    module.exit_json(**result)
