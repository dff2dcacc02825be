# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which links re-authenticate after a credential change, and which of their ends does it.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  Pure Python, no I/O.

Loading a new pre-shared key or certificate into charon or pluto changes no
established IKE_SA, and an IKE_SA rekey does not authenticate again: a link
uses new credentials only once its IKE_SA is made again from scratch.  The
IKE roles record, per gateway, the links whose credentials changed there
(``pending``: link names, kept on the gateway until the link was
re-authenticated, so that a run that stopped in between does it next time).
After every gateway of the run has loaded its new credentials,
``playbooks/reauth.yml`` asks :func:`reauth_steps` what each gateway does:

- a link is re-authenticated when it is pending on either end (the
  responder's certificate may be the one that changed);
- only when both of its ends are in the run (``active``): an end that has not
  loaded the new credentials would refuse them, and the link would go down;
  such a link stays pending (``waiting``) on the end that has it;
- by its initiating end only (the plan's ``initiator``, the lower gateway
  id): the responder only responds, as everywhere else in the mesh.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class RotationInputError(ValueError):
    """The plan or the pending links are not what reauth_steps() takes; the message says which."""


def _ends_by_link(plan):
    if not isinstance(plan, dict) or not isinstance(plan.get("links"), list):
        raise RotationInputError("the mesh plan (routevpn_mesh_plan) has no list of links")
    ends = {}
    for link in plan["links"]:
        try:
            name, pair = link["name"], link["ends"]
        except (KeyError, TypeError):
            raise RotationInputError("a link of the mesh plan has no name or no ends")
        if len(pair) != 2 or sum(1 for end in pair if end.get("initiator")) != 1:
            raise RotationInputError("link %s of the mesh plan does not have exactly one initiating end" % name)
        ends[name] = pair
    return ends


def _names(value, what):
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise RotationInputError("%s must be a list of link names, got %s" % (what, type(value).__name__))
    return [str(item) for item in value]


def reauth_steps(plan, pending, active):
    """What each active gateway does to put changed credentials into use.

    ``pending``: {host: [link names]} whose credentials changed on that host
    and were not re-authenticated yet (hosts without any may be missing).
    ``active``: the gateways of this run that loaded their IKE configuration.

    Returns {host: {"reauth": [connection, ...], "settled": [link, ...],
    "waiting": [link, ...]}} for every active host: the connections this host
    starts again (it initiates them), the links whose pending mark it drops
    once that was done (re-authenticated by either end in this step, or no
    longer in the plan), and its pending links that wait for the other end.
    """
    ends = _ends_by_link(plan)
    if not isinstance(pending, dict):
        raise RotationInputError("pending must map host names to lists of link names")
    active = set(_names(active, "active"))
    pending = dict((str(host), set(_names(links, "pending links of %s" % host))) for host, links in pending.items())

    # A link is due when pending on either end and both ends are in the run.
    due, waiting = set(), set()
    for host, links in pending.items():
        for link in links:
            if link not in ends:
                continue
            gateways = set(end["gateway"] for end in ends[link])
            if host not in gateways:
                raise RotationInputError("%s has link %s pending, but the link joins %s"
                                         % (host, link, " and ".join(sorted(gateways))))
            if gateways <= active:
                due.add(link)
            else:
                waiting.add((host, link))

    steps = dict((host, {"reauth": [], "settled": [], "waiting": []}) for host in sorted(active))
    for link in sorted(due):
        initiator = [end for end in ends[link] if end["initiator"]][0]
        steps[initiator["gateway"]]["reauth"].append(initiator["connection"])
    for host in steps:
        links = pending.get(host, set())
        steps[host]["settled"] = sorted(link for link in links if link in due or link not in ends)
        steps[host]["waiting"] = sorted(link for link in links if (host, link) in waiting)
        steps[host]["reauth"].sort()
    return steps
