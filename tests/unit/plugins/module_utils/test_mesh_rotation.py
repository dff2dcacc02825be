"""Which links re-authenticate after a credential change, and which end does it (module_utils/_mesh/rotation.py)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.rotation import RotationInputError, reauth_steps

from .mesh_inventory import inventory

# Two sites of two gateways and one of one: links 11-21 11-22 11-31 12-21 12-22 12-31 21-31 22-31.
HOSTVARS = inventory({1: 2, 2: 2, 3: 1})
PLAN = plan(HOSTVARS, sorted(HOSTVARS))
ALL = sorted(HOSTVARS)


def acting(steps):
    """{(host, connection)} of every re-authentication in ``steps``."""
    return set((host, conn) for host, step in steps.items() for conn in step["reauth"])


@pytest.mark.parametrize("pending, active, reauth, settled, waiting", [
    # Nothing changed: nothing to do.
    ({}, ALL, set(), {}, {}),
    # The initiator's PSK file changed: it starts the link again itself.
    ({"v1-1": ["11-21"]}, ALL, {("v1-1", "rv-21")}, {"v1-1": ["11-21"]}, {}),
    # The responder's certificate changed (all its links): the initiators act, the responder drops its marks.
    ({"v2-1": ["11-21", "12-21", "21-31"]}, ALL, {("v1-1", "rv-21"), ("v1-2", "rv-21"), ("v2-1", "rv-31")},
     {"v2-1": ["11-21", "12-21", "21-31"]}, {}),
    # Both ends changed (a new routevpn_psk_overrides entry): one re-authentication, both marks dropped.
    ({"v1-1": ["11-21"], "v2-1": ["11-21"]}, ALL, {("v1-1", "rv-21")}, {"v1-1": ["11-21"], "v2-1": ["11-21"]}, {}),
    # The other end is not in the run (--limit, or it failed): the link waits, nobody acts on it.
    ({"v1-1": ["11-21", "11-22"]}, ["v1-1", "v2-2"], {("v1-1", "rv-22")}, {"v1-1": ["11-22"]}, {"v1-1": ["11-21"]}),
    # A link no longer in the plan: its mark goes, nothing is started.
    ({"v1-1": ["11-99"]}, ALL, set(), {"v1-1": ["11-99"]}, {}),
])
def test_who_reauthenticates_what(pending, active, reauth, settled, waiting):
    steps = reauth_steps(PLAN, pending, active)
    assert sorted(steps) == sorted(active)
    assert acting(steps) == reauth
    assert dict((h, s["settled"]) for h, s in steps.items() if s["settled"]) == settled
    assert dict((h, s["waiting"]) for h, s in steps.items() if s["waiting"]) == waiting


def test_a_pending_link_of_a_host_outside_the_run_is_not_touched():
    # v2-1 has a mark but is not in the run: its peers do not learn of it and act on nothing.
    steps = reauth_steps(PLAN, {"v2-1": ["11-21"]}, ["v1-1", "v1-2"])
    assert acting(steps) == set() and "v2-1" not in steps


@pytest.mark.parametrize("pending, active, message", [
    ({"v1-1": "11-21"}, ALL, "pending links of v1-1 must be a list"),
    ({"v1-1": ["21-31"]}, ALL, "v1-1 has link 21-31 pending, but the link joins v2-1 and v3-1"),
    ([], ALL, "pending must map host names"),
    ({}, "v1-1", "active must be a list"),
])
def test_bad_input_is_named(pending, active, message):
    with pytest.raises(RotationInputError, match=message):
        reauth_steps(PLAN, pending, active)


def test_a_plan_without_one_initiator_per_link_is_refused():
    broken = {"links": [dict(PLAN["links"][0], ends=[dict(end, initiator=True) for end in PLAN["links"][0]["ends"]])]}
    with pytest.raises(RotationInputError, match="exactly one initiating end"):
        reauth_steps(broken, {}, ALL)
    with pytest.raises(RotationInputError, match="no list of links"):
        reauth_steps(None, {}, ALL)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(ALL),
                       st.lists(st.sampled_from([link["name"] for link in PLAN["links"]]), max_size=4)),
       st.sets(st.sampled_from(ALL)))
def test_properties(pending, active):
    # Only ends' own links may be pending.
    pending = dict((host, [link for link in links if host in link_gateways(link)]) for host, links in pending.items())
    steps = reauth_steps(PLAN, pending, sorted(active))
    ends = dict((link["name"], link["ends"]) for link in PLAN["links"])
    started = []
    for host, step in steps.items():
        for conn in step["reauth"]:
            end = [e for e in PLAN["hosts"][host] if e["connection"] == conn][0]
            # Only the initiating end acts, only with both ends in the run, only on a link pending somewhere.
            assert end["initiator"] and end["peer"] in active
            assert any(end["link"] in pending.get(g, []) for g in (host, end["peer"]))
            started.append(end["link"])
        # Every pending link of an active host is settled or waiting, never both, never lost.
        assert set(step["settled"]) | set(step["waiting"]) == set(pending.get(host, []))
        assert not set(step["settled"]) & set(step["waiting"])
        # A settled link was started in this step (by either end), or is no longer planned.
        for link in step["settled"]:
            assert link not in ends or link_gateways(link) <= active
    # Each link at most once.
    assert len(started) == len(set(started))
    # Every link pending on an end, with both ends active, is started.
    for host, links in pending.items():
        for link in links:
            if host in active and link_gateways(link) <= active:
                assert link in started


def link_gateways(name):
    return set([link for link in PLAN["links"] if link["name"] == name][0]["gateways"])
