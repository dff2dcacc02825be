# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether the planner was given the whole mesh: routevpn_expected_gateways, and AWX's job slices.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  Pure Python (no Ansible imports, no I/O).

The plan is made from the gateways of the run's group ``routevpn_gateways``,
and the roles make each gateway hold exactly its planned links: the tunnels
role (``state: overridden``), the IKE roles and BIRD remove what the plan does
not name.  A run whose inventory holds part of the fleet (an AWX job slice, an
inventory source that returned part of it) therefore removes every link to
the gateways it lacks.  ``--limit`` does not: it leaves the groups whole.
docs/awx.md says why the check is a list of names.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.inputs import shown

VARIABLE = "routevpn_expected_gateways"

# What AWX (and Ansible Tower before it) adds to the extra vars of a job that a
# workflow job launched.  No variable names a slice: AWX's job variables
# (awx_meta_vars, and the list in its job template documentation) have no
# slice number, which stays a field of the job (read in AWX 24.6.1, its newest
# tag, and its development branch of October 2024).  Every slice of a sliced
# job template is a job its workflow job launched, so every job a workflow
# launched is taken for a possible slice.
WORKFLOW_JOB_VARIABLES = ("awx_workflow_job_id", "tower_workflow_job_id")


def launched_by_workflow(job):
    """``"AWX workflow job 16 (awx_workflow_job_id)"`` when this run's job was launched by one, else None.

    ``job`` maps AWX's job variables to their values (None or absent: unset).
    """
    if not hasattr(job, "get"):
        return None
    for variable in WORKFLOW_JOB_VARIABLES:
        value = job.get(variable)
        if value is not None and value != "":
            return "AWX workflow job %s (%s)" % (value if isinstance(value, int) else shown(value), variable)
    return None


def _words(names):
    """The names and the words that agree with how many they are."""
    one = len(names) == 1
    return {"names": ", ".join(names), "are": "is" if one else "are", "them": "it" if one else "them",
            "they": "it" if one else "they", "s": "s" if one else ""}


def whole_problems(expected, names, job=None):
    """Why the gateways ``names`` may not be the whole mesh: [(variable, message)], empty when they are.

    ``expected`` is routevpn_expected_gateways as the rule table checked it
    (a list of names), or None when unset; ``job``: launched_by_workflow's.
    """
    if expected is None:
        workflow = launched_by_workflow(job)
        if workflow is None:
            return []  # not asked for: the default stays as it was (docs/awx.md says the risk)
        return [(VARIABLE, "not set, and this run is a job launched by %s, as every slice of a sliced job template "
                 "is: a slice holds part of the inventory, and planned from it the roles would remove every link to "
                 "the gateways it lacks; set %s to the names of every gateway (docs/awx.md), or launch the job "
                 "template without slicing" % (workflow, VARIABLE))]
    planned, listed = set(names), set(expected)
    problems = []
    missing = sorted(listed - planned)
    if missing:
        words = dict(_words(missing), count=len(missing), listed=len(listed), variable=VARIABLE)
        problems.append((VARIABLE, "{names} {are} not in this run's group routevpn_gateways ({count} of the {listed} "
                         "expected gateways): planned without {them}, the roles would remove every link to {them}; "
                         "run with the whole inventory (no AWX job slicing, an inventory source that returns every "
                         "gateway), or take {them} out of {variable} when {they} leave{s} the mesh".format(**words)))
    unlisted = sorted(planned - listed)
    if unlisted:
        problems.append((VARIABLE, "{names} {are} in the group routevpn_gateways but not listed; add {them} when "
                         "{they} join{s} the mesh".format(**_words(unlisted))))
    return problems
