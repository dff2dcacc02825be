"""The execution environment of docs/awx.md: the image definition and the collection's own metadata.

execution-environment.yml (the root) is ansible-builder 3's definition of an
image that runs the playbooks; meta/execution-environment.yml is what
ansible-builder reads from the installed collection while it builds one (its
controller-side Python and system packages).  ./tests/run fast runs
ansible-builder on both too (create; introspect on the Galaxy tarball), where
ansible-builder is always installed (tests/requirements.txt).
"""

import fnmatch
import importlib.util
import os
import subprocess

import pytest
import yaml

from .collection_paths import ansible_bin

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The command of this interpreter's environment: under ansible-test units, sys.executable may be a link outside it.
BUILDER = ansible_bin("ansible-builder")

needs_builder = pytest.mark.skipif(
    importlib.util.find_spec("ansible_builder") is None or BUILDER is None,
    reason="ansible-builder is not importable (tests/requirements.txt pins it; scripts/bootstrap installs it)")


def load(path):
    with open(os.path.join(REPO, path)) as stream:
        return yaml.safe_load(stream)


def requirement_lines(path):
    with open(os.path.join(REPO, path)) as stream:
        return [line.strip() for line in stream if line.strip() and not line.startswith("#")]


def builder(*args):
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # ansible-test's, for the tests' own imports
    return subprocess.run([BUILDER] + list(args), capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
                          check=False)


def test_the_definition_installs_this_version_and_the_dependencies_of_galaxy_yml():
    galaxy, definition = load("galaxy.yml"), load("execution-environment.yml")
    assert definition["version"] == 3
    wanted = dict({"%s.%s" % (galaxy["namespace"], galaxy["name"]): galaxy["version"]}, **galaxy["dependencies"])
    listed = dict((item["name"], item["version"]) for item in definition["dependencies"]["galaxy"]["collections"])
    assert listed == wanted
    pins = dict(line.split("==") for line in requirement_lines("tests/requirements.txt") if "==" in line)
    assert definition["dependencies"]["ansible_core"]["package_pip"] == "ansible-core==" + pins["ansible-core"]
    assert definition["options"]["tags"] == ["routevpn-mesh-ee:%s" % galaxy["version"]]


def test_the_collection_metadata_names_the_controller_s_packages_and_the_tarball_carries_them():
    metadata = load("meta/execution-environment.yml")
    # Collection metadata, not a definition: ansible-builder's introspection takes these as paths from the root
    # (and ignores the version, there for ansible-lint's schema check).
    assert set(metadata) == {"version", "dependencies"} and set(metadata["dependencies"]) == {"python", "system"}
    ignored = load("galaxy.yml")["build_ignore"]
    for path in metadata["dependencies"].values():
        assert os.path.isfile(os.path.join(REPO, path)), path
        assert not any(fnmatch.fnmatch(path, pattern) or path.startswith(pattern.rstrip("/") + "/")
                       for pattern in ignored), (path, "is left out of the Galaxy tarball")
    # The gateways' packages (requirements.txt: pyroute2) are not the controller's.
    gateway = set(line.split(">")[0].split("=")[0] for line in requirement_lines("requirements.txt"))
    controller = set(line.split(">")[0].split("=")[0] for line in requirement_lines(metadata["dependencies"]["python"]))
    assert gateway == {"pyroute2"} and controller == {"cryptography"}


@needs_builder
def test_ansible_builder_creates_the_build_context(tmp_path):
    created = builder("create", "--file", "execution-environment.yml", "--context", str(tmp_path / "context"),
                      "--output-filename", "Containerfile")
    assert created.returncode == 0, created.stdout + created.stderr
    containerfile = (tmp_path / "context" / "Containerfile").read_text()
    assert 'ARG ANSIBLE_INSTALL_REFS="ansible-core==2.19.14 ansible-runner==2.4.3"' in containerfile
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    # The build stage that reads each installed collection's meta/execution-environment.yml.
    assert "introspect.py introspect --write-bindep=/tmp/src/bindep.txt" in containerfile
    requirements = yaml.safe_load((tmp_path / "context" / "_build" / "requirements.yml").read_text())
    assert requirements == load("execution-environment.yml")["dependencies"]["galaxy"]


@needs_builder
def test_ansible_builder_reads_the_controller_s_packages_from_the_collection(tmp_path):
    # A collections path holding this checkout (or ansible-test's copy of it) as routevpn.mesh.
    (tmp_path / "ansible_collections" / "routevpn").mkdir(parents=True)
    (tmp_path / "ansible_collections" / "routevpn" / "mesh").symlink_to(REPO)
    introspected = builder("introspect", "--sanitize", str(tmp_path))
    assert introspected.returncode == 0, introspected.stdout + introspected.stderr
    found = yaml.safe_load(introspected.stdout.split("\n", 1)[1])
    assert found == {
        "python": ["cryptography>=3.3  # from collection routevpn.mesh"],
        "system": ["openssh-clients [platform:rpm]  # from collection routevpn.mesh",
                   "openssh-client [platform:dpkg]  # from collection routevpn.mesh"],
    }
