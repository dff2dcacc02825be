# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health of the whole mesh as one JSON document (verify's report; docs/health.md).

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  Pure Python, no I/O: ``health_report`` takes what
playbooks/verify.yml already holds on the controller - the rows of
health.cross_check, the plan, which gateways the run verified and which
said nothing, each gateway's own problems and when it was read - and
returns the report, whose shape docs/health-report.schema.json fixes.

Every planned link end is one record, so the report covers the whole mesh
whatever happened in the run: the ends of a gateway that did not report are
down (nothing proves them healthy, as for its peers' ends), those of a
gateway left out by ``--limit`` are not verified.  Only what the rows and the
plan say is copied, field by field, and never the rows' SPIs or any key:
SCHEMA_VERSION changes when a field is renamed or removed, not when one is
added.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from collections.abc import Mapping
from datetime import datetime, timezone

from .health import CHILD_UP, PLUTO_CHILD_UP

SCHEMA = "routevpn.mesh/health-report"
SCHEMA_VERSION = 1

STATUSES = ("ok", "DOWN", "not verified")


class HealthReportError(ValueError):
    """The inputs do not make one report (rows not cross-checked, rows of another plan); the message says which."""


def timestamp(moment=None):
    """``moment`` (default: now) in UTC, ISO 8601 to the second: ``2026-12-07T21:50:24Z``."""
    moment = moment or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        raise HealthReportError("%s has no time zone; give an aware datetime (UTC)" % moment.isoformat())
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _count(items, keep=None):
    """How many items (those ``keep`` accepts); None when the list itself is unknown (not read, not said)."""
    if items is None:
        return None
    return sum(1 for item in items if keep is None or keep(item))


def _sa_counts(row):
    """Established IKE_SAs, installed CHILD_SAs and the kernel's SAs of the end, from the cross-check's evidence.

    None where the source did not say: a daemon that did not answer, libreswan's IKE SA (whack lists no IKE
    SPIs), the kernel's SAs when they were not read.
    """
    evidence = (row or {}).get("evidence") or {}
    kernel = evidence.get("kernel")
    return {
        "ike": _count(evidence.get("ike_spis")),
        "child": _count(evidence.get("child_spis"), lambda child: child.get("state") in (CHILD_UP, PLUTO_CHILD_UP)),
        "kernel_in": None if kernel is None else len(kernel.get("in") or []),
        "kernel_out": None if kernel is None else len(kernel.get("out") or []),
    }


def _reasons(row):
    """Why the end is not ok: its problems (DOWN), or why it was not verified; empty when it is ok."""
    if row["problems"]:
        return [str(problem) for problem in row["problems"]]
    return [str(row["unverified"])] if row.get("unverified") else []


def _link_end(end, row, read_at, unread=None):
    """One record: the planned end, what its row says, or (no row) ``unread`` = (status, reason)."""
    xfrm = end["tunnel_type"] == "xfrm"
    record = {
        "gateway": end["gateway"], "peer": end["peer"], "link": end["link"],
        "site": end.get("site"), "peer_site": end.get("peer_site"),
        "peer_external": bool(end.get("peer_external") or (row or {}).get("external")),
        "peer_platform": end.get("peer_platform"),
        "interface": end["interface"], "tunnel_type": end["tunnel_type"],
        "if_id": end["if_id"] if xfrm else None, "mark": None if xfrm else end["mark"],
        "ike_daemon": end.get("ike_daemon", "strongswan"),
        "read_at": read_at,
    }
    if row is None:
        status, reason = unread
        record.update(status=status, ok=False, reasons=[reason], ike=None, child=None, binding_ok=None,
                      sa_counts=_sa_counts(None), bgp=None, bgp_imported_routes=None, prefixes=None,
                      missing_prefixes=None)
        return record
    record.update(
        status=row["status"], ok=bool(row["ok"]), reasons=_reasons(row),
        ike=row.get("ike"), child=row.get("child"), binding_ok=row.get("if_id_ok"), sa_counts=_sa_counts(row),
        bgp=row.get("bgp"), bgp_imported_routes=row.get("imported"),
        prefixes=list(row.get("prefixes") or []), missing_prefixes=list(row.get("missing_prefixes") or []))
    return record


def _check_rows(rows, planned):
    for row in rows:
        if not isinstance(row, Mapping) or "status" not in row:
            raise HealthReportError("rows must be those of mesh_health_cross_check (a row has no status)")
        if row["status"] not in STATUSES:
            raise HealthReportError("row %s %s has status %r, not one of %s" % (
                row.get("gateway"), row.get("link"), row["status"], ", ".join(STATUSES)))
        if (row.get("gateway"), row.get("link")) not in planned:
            raise HealthReportError("row %s %s is no link end of the plan; give the plan of the same run" % (
                row.get("gateway"), row.get("link")))


def health_report(rows, plan, verified=None, silent=(), problems=None, read_at=None, generated_at=None):
    """The report of one verify run (a dict; docs/health-report.schema.json).

    rows: health.cross_check's rows of every gateway that reported; plan: the
    mesh plan (``hosts``, ``gateways``); verified: the gateways this run
    verifies (None: those with rows); silent: those of them that did not
    report; problems: {gateway: its own problems}; read_at: {gateway: when
    it was read (timestamp)}; generated_at: a datetime or a timestamp
    (None: now).
    """
    problems, read_at = problems or {}, read_at or {}
    planned = dict(((end["gateway"], end["link"]), end) for ends in plan["hosts"].values() for end in ends)
    _check_rows(rows, planned)
    by_end = dict(((row["gateway"], row["link"]), row) for row in rows)
    verified = set(row["gateway"] for row in rows) if verified is None else set(verified)
    silent = set(silent)
    link_ends = []
    for key in sorted(planned):
        gateway, link = key
        if gateway not in verified:
            unread = ("not verified", "gateway %s is not verified by this run (outside --limit)" % gateway)
        elif gateway in silent:
            unread = ("DOWN", "gateway %s did not report" % gateway)
        else:
            unread = ("DOWN", "gateway %s reported no end of link %s" % (gateway, link))
        link_ends.append(_link_end(planned[key], by_end.get(key), read_at.get(gateway), unread))

    gateways = []
    for name in sorted(plan["gateways"]):
        settings = plan["gateways"][name]
        own = [str(problem) for problem in problems.get(name) or []]
        reported = name in verified and name not in silent
        gateways.append({
            "gateway": name, "site": settings.get("site"), "ike_daemon": settings.get("ike_daemon"),
            "tunnel_type": settings.get("tunnel_type"), "verified": name in verified, "reported": reported,
            "ok": reported and not own, "problems": own, "read_at": read_at.get(name) if reported else None,
        })

    def ends_with(status):
        return sum(1 for record in link_ends if record["status"] == status)

    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "generated_at": generated_at if isinstance(generated_at, str) else timestamp(generated_at),
        "mesh": {
            # Proved healthy, the whole mesh: an end or a gateway this run did not verify is not ok.
            "ok": all(record["ok"] for record in link_ends) and all(gateway["ok"] for gateway in gateways),
            "link_ends": {"total": len(link_ends), "ok": ends_with("ok"), "down": ends_with("DOWN"),
                          "not_verified": ends_with("not verified"),
                          "external": sum(1 for record in link_ends if record["peer_external"])},
            "gateways": {"total": len(gateways), "verified": sum(1 for gateway in gateways if gateway["verified"]),
                         "reported": sum(1 for gateway in gateways if gateway["reported"]),
                         "with_problems": sum(1 for gateway in gateways if gateway["problems"])},
        },
        "gateways": gateways,
        "link_ends": link_ends,
    }
