"""How long the mesh planner takes, and how much memory it needs, as the mesh grows.

    python bench/plan_bench.py [--sites 10,100,1000] [--max-memory-gib 12]

Each size runs in a fresh interpreter (so that its peak memory is its own),
under an address-space limit (so that a size that does not fit ends as a
figure, "needs more than N GiB", instead of taking the machine down).  Every
site has two gateways; every gateway gets a tunnel to every gateway of every
other site, so links = gateways * (gateways - 2) / 2.

Figures: plan_s (the plan() call alone), rss_growth_mib (peak resident memory
of the process minus its size before the call, i.e. the plan plus whatever
the planner allocated on the way), json_mib (the plan serialised compactly,
as Ansible would have to move it around) and host_view_kib (one gateway's
slice of it).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "build", "collections"))
sys.path.insert(0, HERE)

GATEWAYS_PER_SITE = 2
EXACT_JSON_LINKS = 20000


def hostvars_for(sites):
    """hostvars of a mesh of ``sites`` sites, shaped as Ansible hands them to the mesh_plan filter."""
    common = {
        "routevpn_sites": {
            "site%d" % s: {"asn": 4200000000 + s, "prefixes": ["10.%d.%d.0/24" % (s // 256, s % 256)]}
            for s in range(1, sites + 1)
        },
        "routevpn_transfer_prefix_v6": "2001:db8:ffff::/64",
        # A /10 holds 2M /31 links: enough for 2,000 densely numbered gateways.
        "routevpn_transfer_prefix_v4": "100.64.0.0/10",
        "routevpn_psk_master": "benchmark-only-master-0123456789",
    }
    hostvars = {}
    for s in range(1, sites + 1):
        for g in range(1, GATEWAYS_PER_SITE + 1):
            hostvars["v%d-%d" % (s, g)] = dict(
                common,
                routevpn_site="site%d" % s,
                # Dense ids keep link indices (and so the transfer pools) as small as they can be.
                routevpn_gateway_id=(s - 1) * GATEWAYS_PER_SITE + g,
                routevpn_public_address="2001:db8:%x::%x" % (s, g),
            )
    return hostvars


def _rss_kib():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def _encoded_size(value):
    """Bytes of compact JSON, counted chunk by chunk so the text itself is never held."""
    return sum(len(chunk) for chunk in json.JSONEncoder(separators=(",", ":")).iterencode(value))


def measure_one(sites, max_memory_gib):
    """Runs in the child: plan one mesh and report, as one JSON line on stdout."""
    limit = int(max_memory_gib * 2 ** 30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan

    hostvars = hostvars_for(sites)
    names = sorted(hostvars)
    gateways = len(names)
    figures = {"sites": sites, "gateways": gateways, "links_expected": gateways * (gateways - GATEWAYS_PER_SITE) // 2}
    rss_before = _rss_kib()
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        mesh = plan(hostvars, names)
        figures["plan_s"] = round(time.perf_counter() - start, 4)
        figures["plan_cpu_s"] = round(time.process_time() - cpu_start, 4)
    except MemoryError:
        figures["error"] = "MemoryError: the plan needs more than the %s GiB address-space limit" % max_memory_gib
        figures["plan_s"] = round(time.perf_counter() - start, 4)
        figures["rss_growth_mib"] = round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024, 1)
        return figures
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures["links"] = len(mesh["links"])
    figures["tunnels_per_gateway"] = len(mesh["hosts"][names[0]])
    figures["rss_before_mib"] = round(rss_before / 1024, 1)
    # ru_maxrss also holds the imports' peak, which a small plan does not exceed.
    growth = max(0, peak - rss_before)
    figures["rss_growth_mib"] = round(growth / 1024, 1)
    figures["bytes_per_link"] = round(growth * 1024 / max(1, len(mesh["links"])))
    start = time.perf_counter()
    if len(mesh["links"]) <= EXACT_JSON_LINKS:
        figures["json_mib"] = round(_encoded_size(mesh) / 2 ** 20, 2)
    else:
        # Encoding gigabytes takes longer than planning them: estimate from every k-th link
        # (each link appears once under links and its two ends once more under hosts).
        step = len(mesh["links"]) // EXACT_JSON_LINKS
        sample = mesh["links"][::step]
        per_link = sum(_encoded_size(link) + _encoded_size(link["ends"]) for link in sample) / len(sample)
        rest = _encoded_size({key: mesh[key] for key in ("sites", "gateways")})
        figures["json_mib"] = round((per_link * len(mesh["links"]) + rest) / 2 ** 20, 1)
        figures["json_estimated_from_links"] = len(sample)
    figures["json_s"] = round(time.perf_counter() - start, 3)
    figures["host_view_kib"] = round(_encoded_size(mesh["hosts"][names[0]]) / 1024, 1)
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", default="10,100,1000", help="comma-separated mesh sizes, in sites")
    parser.add_argument("--max-memory-gib", type=float, default=12.0,
                        help="address-space limit of each measurement (default 12)")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds allowed per size")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--results", default=None, help="results folder (default bench/results)")
    args = parser.parse_args(argv)

    if args.one is not None:
        print(json.dumps(measure_one(args.one, args.max_memory_gib)))
        return 0

    import results

    env = results.environment(gateways_per_site=GATEWAYS_PER_SITE, max_memory_gib=args.max_memory_gib)
    rows = []
    for sites in [int(s) for s in args.sites.split(",")]:
        print("plan_bench: %d sites ..." % sites, file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            child = subprocess.run([sys.executable, __file__, "--one", str(sites),
                                    "--max-memory-gib", str(args.max_memory_gib)],
                                   capture_output=True, text=True, timeout=args.timeout, check=False)
        except subprocess.TimeoutExpired:
            rows.append({"sites": sites, "error": "did not finish within %d s" % args.timeout})
            continue
        if child.returncode != 0:
            tail = child.stderr.strip().splitlines()[-3:]
            rows.append({"sites": sites, "error": "exit %d: %s" % (child.returncode, " / ".join(tail))})
        else:
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
        rows[-1]["wall_s"] = round(time.perf_counter() - started, 2)
        print("plan_bench: %s" % json.dumps(rows[-1]), file=sys.stderr, flush=True)

    table = results.markdown_table(
        [("sites", "sites"), ("gateways", "gateways"), ("links", "links"),
         ("tunnels_per_gateway", "tunnels per gateway"), ("plan_s", "plan() s"), ("plan_cpu_s", "CPU s"),
         ("rss_growth_mib", "peak memory MiB"), ("bytes_per_link", "bytes per link"),
         ("json_mib", "plan as JSON MiB"), ("host_view_kib", "one host's view KiB"), ("error", "error")],
        rows)
    summary = ("`plan(hostvars, gateway_names)` from plugins/module_utils/_mesh/plan.py, for meshes of two "
               "gateways per site (a full mesh between sites: every gateway has a tunnel to every gateway of "
               "every other site), each size in a fresh interpreter.")
    notes = [
        "peak memory = the process's peak resident set minus its size before the call (the plan and the "
        "planner's temporaries); hostvars themselves are not counted.",
        "plan() s is wall time, CPU s the process's CPU time over the same call: other work on the machine "
        "(see the load average below) stretches the first, not the second.",
        "plan as JSON = the whole plan serialised compactly (above %d links, estimated from %d evenly spaced "
        "links); one host's view = hosts[<first gateway>]." % (EXACT_JSON_LINKS, EXACT_JSON_LINKS),
    ]
    paths = results.write("plan", "Mesh plan: time and memory by mesh size", rows, env, summary, table, notes,
                          **({"directory": args.results} if args.results else {}))
    print("\n".join(paths))
    return 0 if all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
