"""The three-site lab, measured: build, converge, re-converge, Ansible's floor,
tunnels up after converge, throughput through a tunnel, failover with and
without BFD.

Runs here (the controller); the lab runs in its VM (lab/up).  bench/run starts
it:

    bench/run lab           (builds the lab anew; it stays up: lab/down)

Each step is the real thing the README and the Molecule scenario run: lab/up,
lab/playbook with routevpn.mesh.mesh, the scenario's failover.yml and
removal.yml.  A step that fails (a non-zero exit, a re-converge that changes
something, a tunnel that does not come up) fails the benchmark, so no figure
comes from a run that did not work.

The first failover runs with the roles' defaults, BFD on.  The figure without
BFD needs a second converge with routevpn_bfd: false; it runs after the
removal check (the gateway of site 3 that the first failover powered off is
gone by then), with the inventory that removal.yml writes, and its failover
powers off the gateway of site 2 that carries a ping r1 -> r2.
"""

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LAB = os.path.join(REPO, "lab")
BUILD = os.path.join(LAB, "build")
SCENARIO = os.path.join(REPO, "molecule", "default")
sys.path.insert(0, HERE)

import results  # noqa: E402  (bench/ is not a package)

GATEWAYS = ["v1-1", "v1-2", "v2-1", "v2-2", "v3-1", "v3-2"]
# Each gateway has one link to each gateway of the two other sites.
LINKS_PER_GATEWAY = 4


class BenchFailed(Exception):
    pass


def run(argv, log, env=None, check=True):
    """Run argv, its output appended to log; returns (seconds, output)."""
    start = time.monotonic()
    process = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env=dict(os.environ, **(env or {})), cwd=REPO, check=False)
    seconds = time.monotonic() - start
    with open(log, "a") as handle:
        handle.write("### %s (%.1f s, exit %d)\n%s\n" % (" ".join(argv), seconds, process.returncode, process.stdout))
    if check and process.returncode != 0:
        raise BenchFailed("%s exited %d (see %s)" % (" ".join(argv), process.returncode, log))
    return seconds, process.stdout


def changed_total(output):
    """The sum of changed= over ansible-playbook's recap."""
    return sum(int(n) for n in re.findall(r"^\S+\s*: ok=\d+\s+changed=(\d+)", output, re.MULTILINE))


def gateway_state(gateway, log):
    """(IKE SAs established, BGP sessions established) on one gateway."""
    # One argument: ssh hands it to the remote shell whole, pipes included.
    output = run([os.path.join(LAB, "exec"), gateway,
                  "swanctl --list-sas --noblock 2>/dev/null | grep -c ESTABLISHED;"
                  " ip netns exec private birdc -s /run/routevpn-bird/private.ctl show protocols"
                  " | grep -c Established"], log, check=False)[1]
    numbers = [int(n) for n in re.findall(r"^(\d+)$", output, re.MULTILINE)]
    return tuple(numbers) if len(numbers) == 2 else (0, 0)


def wait_until_up(gateways, log, limit_s=300):
    """Seconds until every gateway has all its IKE SAs and BGP sessions up."""
    start = time.monotonic()
    while True:
        # All gateways at once: a round of six sequential SSH calls took 9 s under TCG.
        with concurrent.futures.ThreadPoolExecutor(len(gateways)) as pool:
            states = dict(zip(gateways, pool.map(lambda gateway: gateway_state(gateway, log), gateways)))
        if all(ike >= LINKS_PER_GATEWAY and bgp >= LINKS_PER_GATEWAY for ike, bgp in states.values()):
            return time.monotonic() - start
        if time.monotonic() - start > limit_s:
            raise BenchFailed("not all tunnels up after %d s: %s" % (limit_s, states))
        time.sleep(1)


def iperf(client, server_address, server, log, seconds=5):
    """Throughput in Mbit/s from client to server_address (an iperf3 server on server, for one test)."""
    run([os.path.join(LAB, "exec"), server, "iperf3", "-s", "-1", "-D", "-B", server_address], log)
    time.sleep(1)
    output = run([os.path.join(LAB, "exec"), client, "iperf3", "-J", "-t", str(seconds), "-c", server_address],
                 log)[1]
    report = json.loads(output[output.index("{"):])
    return round(report["end"]["sum_received"]["bits_per_second"] / 1e6, 1)


def failover(site, record, log, extra=()):
    """(victim, loss window in seconds, record): failover.yml powers off the gateway of site that carries a ping."""
    run([os.path.join(LAB, "playbook"), os.path.join(SCENARIO, "failover.yml"), "-e", "lab_victim_site=" + site,
         "-e", "lab_failover_record=" + record] + list(extra), log)
    with open(record) as handle:
        text = handle.read()
    return (re.search(r"^victim: (\S+)", text, re.MULTILINE).group(1),
            float(re.search(r"loss window: ([\d.]+) s", text).group(1)), text.strip())


def write(figures, env):
    """bench/results/lab.json and lab.md."""
    rows = [{"step": key, "value": value} for key, value in figures.items()
            if key not in ("failover_no_bfd", "failover_bfd", "failover_bfd_run", "status")]
    results.write(
        "lab", "The three-site lab: build, converge, failover, throughput", figures, env,
        "Status: %s.  One VM (TCG, no KVM), nine hosts; controller on this machine, Mitogen strategy "
        "(lab/build/ansible.cfg).  Log: lab/build/bench-lab.log." % figures["status"],
        results.markdown_table([("step", "figure"), ("value", "value")], rows),
        notes=[
            "*_s: wall seconds of the step; up_after_converge_s: from the end of the first converge until "
            "every gateway has its 4 IKE SAs and 4 BGP sessions established.",
            "reconverge_over_floor: the idempotent re-converge against `ansible all -m ping` on the same hosts "
            "(best of 3).",
            "failover: ping every 0.2 s from r1 to a site's router; the gateway of that site that carries it "
            "loses power; loss window = lost replies x 0.2 s. With BFD (the default): site 3 (r1 -> r3). Without "
            "(routevpn_bfd: false): site 2 (r1 -> r2), after the first victim's removal; the BGP hold time decides.",
            "iperf3: 5 s TCP, r1 -> r3 through the mesh against v1-1 -> v3-1 on the public segment; "
            "under TCG both are bound by the emulated CPU, so the ratio, not the figure, is what carries over.",
        ] + [figures[key] for key in ("failover_no_bfd", "failover_bfd", "failover_bfd_run") if key in figures])


def add_bfd_failover(record, how):
    """Put the BFD failover of a separate failover.yml run (its record file) into bench/results/lab.json."""
    with open(os.path.join(results.RESULTS, "lab.json")) as handle:
        document = json.load(handle)
    figures = document["figures"]
    with open(record) as handle:
        text = handle.read().strip()
    figures["failover_loss_bfd_s"] = float(re.search(r"loss window: ([\d.]+) s", text).group(1))
    figures["failover_bfd"] = text
    figures["failover_bfd_run"] = how
    figures["status"] = "ok, the BFD failover from a separate run (see below)"
    write(figures, document["environment"])
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--log", default=os.path.join(BUILD, "bench-lab.log"))
    parser.add_argument("--add-bfd-failover", nargs=2, metavar=("RECORD", "HOW"),
                        help="only put the record of a separate failover.yml run with BFD into the results")
    args = parser.parse_args()
    if args.add_bfd_failover:
        return add_bfd_failover(*args.add_bfd_failover)
    figures = {}
    env = results.environment()
    env["lab_init"] = os.environ.get("LAB_INIT", "direct")
    # failover.yml and removal.yml find the lab's scripts and build directory by it.
    os.environ["ROUTEVPN_LAB"] = LAB

    def step(name, seconds):
        figures[name] = round(seconds, 1)
        print("bench/lab: %s %.1f" % (name, seconds), flush=True)

    try:
        subprocess.run([os.path.join(LAB, "down")], check=False, capture_output=True)
        os.makedirs(BUILD, exist_ok=True)
        open(args.log, "w").close()
        step("build_s", run([os.path.join(LAB, "up")], args.log)[0])
        step("routers_s", run([os.path.join(LAB, "playbook"), os.path.join(LAB, "routers.yml")], args.log)[0])
        seconds, output = run([os.path.join(LAB, "playbook"), "routevpn.mesh.mesh"], args.log)
        step("converge_s", seconds)
        figures["converge_changed"] = changed_total(output)
        step("up_after_converge_s", wait_until_up(GATEWAYS, args.log))
        seconds, output = run([os.path.join(LAB, "playbook"), "routevpn.mesh.mesh"], args.log)
        step("reconverge_s", seconds)
        figures["reconverge_changed"] = changed_total(output)
        if figures["reconverge_changed"]:
            raise BenchFailed("the second converge changed %d things" % figures["reconverge_changed"])
        ansible = os.path.join(os.environ.get("VENV", os.path.join(REPO, ".venv")), "bin", "ansible")
        floor = [run([ansible, "all", "-m", "ping", "-o"], args.log,
                     env={"ANSIBLE_CONFIG": os.path.join(BUILD, "ansible.cfg")})[0] for attempt in range(3)]
        step("floor_ansible_ping_s", min(floor))
        figures["reconverge_over_floor"] = round(figures["reconverge_s"] / figures["floor_ansible_ping_s"], 1)
        step("verify_s", run([os.path.join(LAB, "playbook"), "routevpn.mesh.verify"], args.log)[0])
        # Through the mesh: r1 -> r3's private address (one tunnel, v1-x -> v3-x);
        # plain: v1-1 -> v3-1 over the public segment, the same bridge, no IPsec.
        figures["iperf3_tunnel_mbit_s"] = iperf("r1", "2001:db8:a3::1", "r3", args.log)
        figures["iperf3_plain_mbit_s"] = iperf("v1-1", "2001:db8:3::1", "v3-1", args.log)
        print("bench/lab: iperf3 %s Mbit/s through the mesh, %s plain" % (
            figures["iperf3_tunnel_mbit_s"], figures["iperf3_plain_mbit_s"]), flush=True)
        victim, window, text = failover("site3", os.path.join(BUILD, "failover-bfd.txt"), args.log)
        step("failover_loss_bfd_s", window)
        figures["failover_bfd"] = text
        step("removal_s", run([os.path.join(LAB, "playbook"), os.path.join(SCENARIO, "removal.yml"),
                               "-e", "lab_failover_victim=" + victim], args.log)[0])
        inventory = os.path.join(BUILD, "inventory-without-%s.yml" % victim)
        step("converge_no_bfd_s", run([os.path.join(LAB, "playbook"), "-i", inventory, "routevpn.mesh.mesh",
                                       "-e", "routevpn_bfd=false"], args.log)[0])
        victim, window, text = failover("site2", os.path.join(BUILD, "failover-no-bfd.txt"), args.log,
                                        extra=["-i", inventory])
        step("failover_loss_no_bfd_s", window)
        figures["failover_no_bfd"] = text
        status = "ok"
    except BenchFailed as failure:
        status = "FAILED: %s" % failure
        print("bench/lab: %s" % status, file=sys.stderr)
    figures["status"] = status
    write(figures, env)
    return 0 if status == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
