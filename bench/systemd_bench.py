"""The systemd scenario, step by step, timed: bench/results/systemd.{json,md}.

Runs `molecule <step> -s systemd` for destroy, create, prepare, converge,
idempotence, verify and destroy (what `molecule test -s systemd` runs), each
timed, after the native builds (scripts/build-gateway-root and
scripts/build-apt-repo, cached: --cold removes their caches first); then
adds what verify measured (lab/build/systemd-figures.json: the reboot and
the kill of charon and BIRD under a ping) and lab/up's own timings.  A step
that fails stops the run; what was measured is still written, marked FAILED.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import results

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
STEPS = ["destroy", "create", "prepare", "converge", "idempotence", "verify", "destroy"]


def cache_dir():
    base = os.environ.get("ROUTEVPN_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "routevpn-mesh")
    return base


def timed(argv, log):
    start = time.monotonic()
    with open(log, "a") as out:
        out.write("\n=== %s\n" % " ".join(argv))
        out.flush()
        status = subprocess.run(argv, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    return round(time.monotonic() - start, 1), status


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold", action="store_true", help="remove the cached root and repository first")
    parser.add_argument("--log", default=os.path.join(REPO, "lab", "build", "bench-systemd.log"))
    args = parser.parse_args()
    os.makedirs(os.path.dirname(args.log), exist_ok=True)
    open(args.log, "w").close()
    env = results.environment(cold=args.cold)
    figures, failed = {}, None
    if args.cold:
        for name in ("gateway-root-bookworm", "apt-repo-bookworm"):
            shutil.rmtree(os.path.join(cache_dir(), name), ignore_errors=True)
    for script in ("build-gateway-root", "build-apt-repo"):
        seconds, status = timed([os.path.join(REPO, "scripts", script)], args.log)
        figures[script.replace("-", "_") + "_s"] = seconds
        if status:
            failed = script
            break
    figures["steps_s"] = {}
    if not failed:
        for index, step in enumerate(STEPS):
            seconds, status = timed(["molecule", step, "-s", "systemd"], args.log)
            key = step if step != "destroy" else ("destroy_before" if index == 0 else "destroy")
            figures["steps_s"][key] = seconds
            if status:
                failed = step
                subprocess.run(["molecule", "destroy", "-s", "systemd"], cwd=REPO, stdout=subprocess.DEVNULL,
                               stderr=subprocess.STDOUT, check=False)
                break
    figures["total_s"] = round(sum(figures["steps_s"].values()), 1)
    try:
        with open(os.path.join(REPO, "lab", "build", "systemd-figures.json")) as handle:
            figures["disruptions"] = json.load(handle)
    except OSError:
        figures["disruptions"] = None
    try:
        with open(os.path.join(REPO, "lab", "build", "timings.txt")) as handle:
            figures["lab_up_timings"] = handle.read().splitlines()
    except OSError:
        figures["lab_up_timings"] = []
    figures["status"] = "FAILED at %s" % failed if failed else "ok"

    rows = [{"step": key, "seconds": value} for key, value in figures["steps_s"].items()]
    rows[:0] = [{"step": "scripts/build-gateway-root", "seconds": figures.get("build_gateway_root_s")},
                {"step": "scripts/build-apt-repo", "seconds": figures.get("build_apt_repo_s")}]
    notes = []
    for name, figure in (figures["disruptions"] or {}).items():
        notes.append("%s of %s: %s s to do it, healthy again %s s after it began (no Ansible run); ping r2 -> r1 "
                     "every 0.2 s: sent %s, lost %s (%s s)" % (
                         name, figure.get("victim"), figure.get("disrupt_s"), figure.get("healthy_s"),
                         figure.get("sent"), figure.get("lost"), figure.get("loss_s")))
    notes += ["lab/up: " + line for line in figures["lab_up_timings"]]
    results.write(
        "systemd", "The systemd scenario: pristine gateways, apt from a local repository, reboot and kill",
        figures, env,
        "Status: %s%s.  `molecule <step> -s systemd`, one VM (TCG), two sites (v1-1, v1-2; v2-1) and two routers; "
        "log: lab/build/bench-systemd.log." % (figures["status"], ", caches removed first (cold)" if args.cold else
                                               ", root and repository cached (warm)"),
        results.markdown_table([("step", "step"), ("seconds", "seconds")], rows), notes)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
