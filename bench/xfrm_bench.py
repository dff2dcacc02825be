"""xfrm_interface through Ansible: one call with a list of N interfaces against N single calls.

Runs inside the VM (the host's kernel has no XFRM interfaces); bench/run
starts it there:

    tests/vm/run python bench/xfrm_bench.py --count 200 --out DIR

For each strategy (Ansible's linear, Mitogen's mitogen_linear) and each form,
in a namespace of its own: create N interfaces (each with an if_id and a
/127), then run the same playbook again (the re-check: nothing may change).
The list form is one task with `config:` (N items); the single form is one
task looped N times, which is N module runs (under linear, N fresh Pythons:
that one runs --linear-single-count interfaces).  Every step is a real
ansible-playbook run against localhost; a step whose `changed` or resulting
kernel state is not the expected one fails the benchmark, so a fast figure
cannot come from a module that did nothing.

Figures per step: playbook_s (ansible-playbook's wall time, start-up
included) and task_s (the task alone, from bench/callback_plugins/bench_timer).
Baselines per strategy: an empty play, and one play with a single `ping` call.
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

STRATEGIES = ("linear", "mitogen_linear")
FORMS = ("list", "single")


def netns_of(strategy, form):
    return "bench-%s-%s" % (strategy.replace("_", "-"), form)


def interfaces(count, strategy, form, block_size):
    """The interfaces of one (strategy, form): names, if_ids and /127s shaped like a gateway's tunnels.

    Each pair has its own block of if_ids: the kernel keeps an if_id unique
    among the XFRM interfaces created from one namespace, moved elsewhere or
    not (the single form's first run stopped on 'File exists' with the list
    form's).
    """
    block = STRATEGIES.index(strategy) * len(FORMS) + FORMS.index(form)
    first_if_id = 4096 + block * block_size
    return [{"name": "rv-%d" % (1000 + i), "if_id": first_if_id + i, "addresses": ["2001:db8:ff::%x/127" % (2 * i)]}
            for i in range(count)]


BASELINES = {
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
}

FORM_PLAYBOOKS = {
    "list": """
- hosts: localhost
  gather_facts: false
  vars_files: [%(vars)s]
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
""",
    "single": """
- hosts: localhost
  gather_facts: false
  vars_files: [%(vars)s]
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
""",
}


def strategy_env(strategy):
    """Ansible's own strategy, or Mitogen's from where the lab's ansible.cfg takes it.

    scripts/bootstrap links build/ansible_mitogen to the installed Mitogen
    (lab/lib/common.sh and molecule/default/molecule.yml use the same path).
    """
    if strategy == "linear":
        return {"ANSIBLE_STRATEGY": "linear"}
    plugins = os.path.join(os.path.dirname(HERE), "build", "ansible_mitogen", "plugins", "strategy")
    if not os.path.isdir(plugins):
        raise BenchError("the %s strategy needs %s (run scripts/bootstrap)" % (strategy, plugins))
    return {"ANSIBLE_STRATEGY_PLUGINS": plugins, "ANSIBLE_STRATEGY": strategy}


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


def run_playbook(work, name, strategy, expect_changed=None):
    timer = os.path.join(work, "timer-%s-%s.json" % (name, time.monotonic_ns()))
    env = dict(os.environ, ANSIBLE_CALLBACK_PLUGINS=os.path.join(HERE, "callback_plugins"),
               ANSIBLE_CALLBACKS_ENABLED="bench_timer", BENCH_TIMER_OUT=timer,
               ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", **strategy_env(strategy))
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


def plan_steps(count, linear_single_count, strategies=STRATEGIES):
    """(strategy, form, playbook, step, interface count, expected changed) in the order they run."""
    steps = [(strategy, "baseline", name, name.replace("_", " "), None, None)
             for strategy in strategies for name in BASELINES]
    for strategy in strategies:
        for form in FORMS:
            n = linear_single_count if (strategy, form) == ("linear", "single") else count
            for step, changed in (("create", True), ("re-check", False)):
                steps.append((strategy, form, "%s-%s" % (strategy, form), step, n, changed))
    return steps


def per_interface(rows):
    """ms per interface of each step that made or checked interfaces; also set on its row."""
    figures = {}
    for row in rows:
        if row.get("count") and row["task_s"] is not None:
            row["ms_per_interface"] = round(1000.0 * row["task_s"] / row["count"], 1)
            figures["%(strategy)s %(form)s %(step)s ms per interface" % row] = row["ms_per_interface"]
    return figures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--linear-single-count", type=int, default=10,
                        help="interfaces of the single form under Ansible's linear strategy: each call "
                             "starts a Python and imports pyroute2, about 50 s under TCG, so 200 would take "
                             "hours; the figure per interface is what the comparison uses")
    parser.add_argument("--strategies", default=",".join(STRATEGIES),
                        help="comma-separated, of %s" % ", ".join(STRATEGIES))
    parser.add_argument("--out", required=True, help="where xfrm_interface.json and .md go (writable)")
    parser.add_argument("--keep", action="store_true", help="keep the namespaces and their interfaces")
    args = parser.parse_args(argv)
    strategies = [name for name in args.strategies.split(",") if name]
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        parser.error("unknown strategies %s (%s)" % (", ".join(unknown), ", ".join(STRATEGIES)))

    with open("/sys/devices/system/clocksource/clocksource0/available_clocksource") as sources:
        accel = "KVM" if "kvm-clock" in sources.read() else "TCG (emulated CPU)"
    try:
        from importlib.metadata import version
        pyroute2_version = version("pyroute2")
    except Exception:  # pylint: disable=broad-except
        pyroute2_version = None
    env = results.environment(accel=accel, pyroute2=pyroute2_version, interfaces=args.count,
                              linear_single_interfaces=args.linear_single_count, strategies=args.strategies)

    # In the results folder: the host can follow the playbooks' logs while the VM runs.
    work = tempfile.mkdtemp(prefix="xfrm-bench-", dir=args.out)
    with open(os.path.join(work, "inventory.ini"), "w") as handle:
        handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    for name, text in BASELINES.items():
        with open(os.path.join(work, name + ".yml"), "w") as handle:
            handle.write(text.lstrip())
    steps = plan_steps(args.count, args.linear_single_count, strategies)
    expected = {}
    block_size = max(args.count, args.linear_single_count)
    for strategy, form, playbook, _step, count, _changed in steps:
        if form not in FORMS or playbook in expected:
            continue
        wanted = interfaces(count, strategy, form, block_size)
        expected[playbook] = {item["name"]: item["if_id"] for item in wanted}
        with open(os.path.join(work, playbook + "-vars.yml"), "w") as handle:
            json.dump({"bench_interfaces": wanted}, handle)  # JSON is YAML
        with open(os.path.join(work, playbook + ".yml"), "w") as handle:
            handle.write(FORM_PLAYBOOKS[form].lstrip() % {"vars": playbook + "-vars.yml",
                                                          "netns": netns_of(strategy, form)})
        subprocess.run(["ip", "netns", "del", netns_of(strategy, form)], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "add", netns_of(strategy, form)], check=True)

    rows, error = [], None
    try:
        for strategy, form, playbook, step, count, changed in steps:
            print("xfrm_bench: %s %s %s ..." % (strategy, form, step), file=sys.stderr, flush=True)
            row = {"strategy": strategy, "form": form, "step": step, "count": count}
            row.update(run_playbook(work, playbook, strategy, changed))
            if form in FORMS:
                state = kernel_state(netns_of(strategy, form))
                if state != expected[playbook]:
                    right = set(expected[playbook].items()) & set(state.items())
                    wrong = sorted(set(expected[playbook].items()) ^ set(state.items()))[:5]
                    raise BenchError("%s %s %s: the kernel holds %d of %d interfaces as expected; differences "
                                     "(name, if_id) include %s" % (strategy, form, step, len(right),
                                                                   len(expected[playbook]), wrong))
                row["interfaces_in_kernel"] = len(state)
            rows.append(row)
            print("xfrm_bench: %s" % json.dumps(row), file=sys.stderr, flush=True)
    except BenchError as exc:
        error = str(exc)
        print("xfrm_bench: %s" % error, file=sys.stderr)
    finally:
        if not args.keep:
            for strategy in strategies:
                for form in FORMS:
                    subprocess.run(["ip", "netns", "del", netns_of(strategy, form)], capture_output=True,
                                   check=False)

    per_call = per_interface(rows)
    figures = {"steps": rows, "per_interface": per_call, "error": error}
    table = results.markdown_table(
        [("strategy", "strategy"), ("form", "form"), ("step", "step"), ("count", "interfaces"),
         ("task_s", "task s"), ("ms_per_interface", "ms per interface"), ("playbook_s", "ansible-playbook s"),
         ("interfaces_in_kernel", "interfaces in the kernel after")], rows)
    summary = ("routevpn.mesh.xfrm_interface creating XFRM interfaces (each with an if_id and a /127, moved into "
               "a namespace), then checking them again, run by ansible-playbook against localhost inside the "
               "VM: the list form (one task, `config:` with %d items) against the single form (one task "
               "looped once per interface), under Ansible's linear strategy and under Mitogen's (which the "
               "lab uses). The single form under linear ran %d interfaces: each call starts a new Python."
               % (args.count, args.linear_single_count))
    notes = ["%s: %s" % (k, v) for k, v in per_call.items()]
    notes.append("task s = the task alone (bench_timer callback); ansible-playbook s = the whole command, "
                 "interpreter start-up included. The baselines show the fixed cost of a playbook and of one "
                 "module call under each strategy.")
    if accel.startswith("TCG"):
        notes.append("Under TCG, Python in this VM runs far slower than natively: `import pyroute2` takes 26 s "
                     "against 0.4 s, `import ansible` 5.5 s against 0.07 s (docs/testing.md); compare the forms "
                     "with each other, not with a real machine.")
    if error:
        notes.append("FAILED: " + error)
    results.write("xfrm_interface", "xfrm_interface: %d interfaces, list form against single calls" % args.count,
                  figures, env, summary, table, notes, directory=args.out)
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
