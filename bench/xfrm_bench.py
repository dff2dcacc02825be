"""xfrm_interface through Ansible: one call with a list of N interfaces against N single calls.

Runs inside the VM (the host's kernel has no XFRM interfaces); bench/run
starts it there:

    tests/vm/run python bench/xfrm_bench.py --count 200 --out DIR

For each form, in a namespace of its own: create N interfaces (each with an
if_id and a /127), then run the same playbook again (the re-check: nothing may
change).  The list form is one task with `config:` (N items); the single form
is one task looped N times, which is N module runs.  Every step is a real
ansible-playbook run against localhost; a step whose `changed` or resulting
kernel state is not the expected one fails the benchmark, so a fast figure
cannot come from a module that did nothing.

Figures per step: playbook_s (ansible-playbook's wall time, start-up
included) and task_s (the task alone, from bench/callback_plugins/bench_timer).
Baselines: an empty play, and one play with a single `ping` module call.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import results  # noqa: E402  (bench/ is not a package)

NETNS = {"list": "bench-list", "single": "bench-single"}


def interfaces(count, form):
    """The N interfaces of a form: names, if_ids and /127s shaped like a gateway's tunnels in the plan.

    Each form has its own if_ids: the kernel keeps an if_id unique among the
    XFRM interfaces created from one namespace, moved elsewhere or not (the
    single form's first run stopped on 'File exists' with the list form's).
    """
    first_if_id = 4096 if form == "list" else 4096 + count
    return [{"name": "rv-%d" % (1000 + i), "if_id": first_if_id + i, "addresses": ["2001:db8:ff::%x/127" % (2 * i)]}
            for i in range(count)]


PLAYBOOKS = {
    "empty": """
- hosts: localhost
  gather_facts: false
  tasks: []
""",
    "one_call": """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: One module call
      ansible.builtin.ping:
""",
    "list": """
- hosts: localhost
  gather_facts: false
  vars_files: [interfaces-list.yml]
  tasks:
    - name: All interfaces in one call
      routevpn.mesh.xfrm_interface:
        netns: %(netns)s
        state: merged
        config: "{{ bench_interfaces }}"
      register: bench_result
    - name: Changed exactly when expected
      ansible.builtin.assert:
        that: bench_result.changed == (bench_expect_changed | bool)
""" % {"netns": NETNS["list"]},
    "single": """
- hosts: localhost
  gather_facts: false
  vars_files: [interfaces-single.yml]
  tasks:
    - name: One call per interface
      routevpn.mesh.xfrm_interface:
        name: "{{ item.name }}"
        if_id: "{{ item.if_id }}"
        addresses: "{{ item.addresses }}"
        netns: %(netns)s
      loop: "{{ bench_interfaces }}"
      loop_control:
        label: "{{ item.name }}"
      register: bench_result
    - name: Changed exactly when expected
      ansible.builtin.assert:
        that: bench_result.changed == (bench_expect_changed | bool)
""" % {"netns": NETNS["single"]},
}


class BenchError(Exception):
    pass


def kernel_state(netns):
    """{name: if_id} of the XFRM interfaces in ``netns``, read with iproute2 (not with the module's code)."""
    # All links, filtered by the kind the kernel reports (a run that listed
    # with `ip link show type xfrm` found none of the interfaces).
    out = subprocess.run(["ip", "-n", netns, "-d", "-j", "link", "show"], capture_output=True,
                         text=True, check=True).stdout
    state = {}
    for link in json.loads(out or "[]"):
        if link.get("linkinfo", {}).get("info_kind") != "xfrm":
            continue
        if_id = link["linkinfo"]["info_data"].get("if_id")
        # iproute2 prints if_id in hex ("0x1000").
        state[link["ifname"]] = int(if_id, 0) if isinstance(if_id, str) else if_id
    return state


def run_playbook(work, name, expect_changed=None):
    timer = os.path.join(work, "timer-%s-%s.json" % (name, time.monotonic_ns()))
    env = dict(os.environ, ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="bench_timer", BENCH_TIMER_OUT=timer,
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
    command = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "inventory.ini",
               name + ".yml"]
    if expect_changed is not None:
        command += ["-e", "bench_expect_changed=%s" % expect_changed]
    log_path = os.path.join(work, "%s.log" % name)
    with open(log_path, "a") as log:
        # Straight to the log (in the results folder the host can read) so a slow step can be watched.
        log.write("$ %s\n" % " ".join(command))
        log.flush()
        start = time.perf_counter()
        done = subprocess.run(command, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                              check=False)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        with open(log_path) as log:
            raise BenchError("%s.yml failed (exit %d):\n%s" % (name, done.returncode, log.read()[-3000:]))
    with open(timer) as handle:
        tasks = json.load(handle)
    return {"playbook_s": round(wall, 2), "task_s": tasks[0]["seconds"] if tasks else None}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--out", required=True, help="where xfrm_interface.json and .md go (writable)")
    parser.add_argument("--keep", action="store_true", help="keep the namespaces and their interfaces")
    args = parser.parse_args(argv)

    with open("/sys/devices/system/clocksource/clocksource0/available_clocksource") as sources:
        accel = "KVM" if "kvm-clock" in sources.read() else "TCG (emulated CPU)"
    try:
        from importlib.metadata import version
        pyroute2_version = version("pyroute2")
    except Exception:  # pylint: disable=broad-except
        pyroute2_version = None
    env = results.environment(accel=accel, pyroute2=pyroute2_version, interfaces=args.count)

    # In the results folder: the host can follow the playbooks' logs while the VM runs.
    work = tempfile.mkdtemp(prefix="xfrm-bench-", dir=args.out)
    with open(os.path.join(work, "inventory.ini"), "w") as handle:
        handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    for form in NETNS:
        with open(os.path.join(work, "interfaces-%s.yml" % form), "w") as handle:
            json.dump({"bench_interfaces": interfaces(args.count, form)}, handle)  # JSON is YAML
    for name, text in PLAYBOOKS.items():
        with open(os.path.join(work, name + ".yml"), "w") as handle:
            handle.write(text.lstrip())
    for netns in NETNS.values():
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "add", netns], check=True)

    expected = {form: {item["name"]: item["if_id"] for item in interfaces(args.count, form)} for form in NETNS}
    rows, error = [], None
    steps = [("baseline", "empty", None, None), ("baseline", "one_call", None, None),
             ("list", "list", "create", True), ("list", "list", "re-check", False),
             ("single", "single", "create", True), ("single", "single", "re-check", False)]
    try:
        for form, playbook, step, changed in steps:
            print("xfrm_bench: %s %s ..." % (playbook, step or ""), file=sys.stderr, flush=True)
            row = {"form": form, "step": step or playbook.replace("_", " ")}
            row.update(run_playbook(work, playbook, changed))
            if form in NETNS:
                state = kernel_state(NETNS[form])
                if state != expected[form]:
                    right = set(expected[form].items()) & set(state.items())
                    wrong = sorted(set(expected[form].items()) ^ set(state.items()))[:5]
                    raise BenchError("%s %s: the kernel holds %d of %d interfaces as expected; differences "
                                     "(name, if_id) include %s" % (form, step, len(right), len(expected[form]), wrong))
                row["interfaces_in_kernel"] = len(state)
            rows.append(row)
            print("xfrm_bench: %s" % json.dumps(row), file=sys.stderr, flush=True)
    except BenchError as exc:
        error = str(exc)
        print("xfrm_bench: %s" % error, file=sys.stderr)
    finally:
        if not args.keep:
            for netns in NETNS.values():
                subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)

    by_key = {(r["form"], r["step"]): r for r in rows}
    per_call = {}
    for form in ("list", "single"):
        for step in ("create", "re-check"):
            row = by_key.get((form, step))
            if row and row["task_s"] is not None:
                per_call["%s %s ms per interface" % (form, step)] = round(1000.0 * row["task_s"] / args.count, 1)
    figures = {"steps": rows, "per_interface": per_call, "error": error}
    table = results.markdown_table(
        [("form", "form"), ("step", "step"), ("task_s", "task s"), ("playbook_s", "ansible-playbook s"),
         ("interfaces_in_kernel", "interfaces in the kernel after")], rows)
    summary = ("routevpn.mesh.xfrm_interface creating %d XFRM interfaces (each with an if_id and a /127, moved "
               "into a namespace), then checking them again, run by ansible-playbook against localhost inside "
               "the VM: the list form (one task, `config:` with %d items) against the single form (one task "
               "looped %d times)." % (args.count, args.count, args.count))
    notes = ["%s: %s" % (k, v) for k, v in per_call.items()]
    notes.append("task s = the task alone (bench_timer callback); ansible-playbook s = the whole command, "
                 "interpreter start-up included. The baselines show the fixed cost of a playbook and of one "
                 "module call.")
    if accel.startswith("TCG"):
        notes.append("Under TCG, Python runs about 10x slower than natively (docs/testing.md); compare the "
                     "forms with each other, not with a real machine.")
    if error:
        notes.append("FAILED: " + error)
    results.write("xfrm_interface", "xfrm_interface: %d interfaces, list form against single calls" % args.count,
                  figures, env, summary, table, notes, directory=args.out)
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
