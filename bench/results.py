"""Writes a benchmark's figures as bench/results/<name>.json and a readable <name>.md.

Every result carries the conditions it was measured under (machine, load,
versions, commit), because a figure without them cannot be compared with the
next one.  Standard library only: it also runs inside the VM.
"""

import datetime
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit():
    try:
        return subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def environment(**extra):
    """The conditions of a measurement; call it before measuring (the load average matters)."""
    env = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": _git_commit(),
        "kernel": platform.release(),
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "python_executable": sys.executable,
    }
    env.update(extra)
    return env


def markdown_table(columns, rows):
    """columns: [(key, heading)]; rows: dicts.  None shows as a dash."""
    def cell(value):
        if value is None:
            return "–"
        if isinstance(value, float):
            return "%.3g" % value if value < 100 else "%.0f" % value
        return str(value)

    keys = [key for key, heading in columns]
    lines = ["| " + " | ".join(heading for key, heading in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(cell(row.get(key)) for key in keys) + " |")
    return "\n".join(lines)


def write(name, title, figures, env, summary, table, notes=(), directory=RESULTS):
    """Write <directory>/<name>.json (everything) and <name>.md (summary, table, conditions)."""
    os.makedirs(directory, exist_ok=True)
    document = {"name": name, "title": title, "environment": env, "figures": figures}
    json_path = os.path.join(directory, name + ".json")
    with open(json_path + ".tmp", "w") as handle:
        json.dump(document, handle, indent=1, sort_keys=True)
        handle.write("\n")
    os.replace(json_path + ".tmp", json_path)

    conditions = ", ".join("%s %s" % (key.replace("_", " "), value) for key, value in env.items()
                           if value is not None)
    body = ["# " + title, "", summary.strip(), "", table, ""]
    body += ["- " + note for note in notes]
    body += ["", "Measured under: " + conditions + ".", "",
             "Figures: [%s.json](%s.json); produced by `bench/run`." % (name, name), ""]
    md_path = os.path.join(directory, name + ".md")
    with open(md_path + ".tmp", "w") as handle:
        handle.write("\n".join(body))
    os.replace(md_path + ".tmp", md_path)
    return json_path, md_path
