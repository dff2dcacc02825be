"""Where the collection under test lives, for tests that run ansible commands."""

import importlib.util
import os
import pathlib
import shutil
import sys

import ansible_collections.routevpn.mesh as _collection

COLLECTION_ROOT = pathlib.Path(list(_collection.__path__)[0])
# .../ansible_collections/routevpn/mesh -> the directory holding ansible_collections
COLLECTIONS_PATH = COLLECTION_ROOT.parents[2]


def ansible_bin(name):
    """An ansible command of the running interpreter's environment."""
    candidate = pathlib.Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else shutil.which(name)


def ansible_env(tmp_path, strategy=None, **extra):
    """Environment for an ansible command run by a test.

    Under ``ansible-test units`` the modules context puts a restricted copy
    of ansible (no ``ansible.cli``) on PYTHONPATH; the commands must import
    their own installation and find the collection by ANSIBLE_COLLECTIONS_PATH.
    """
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS_PATH),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
        ANSIBLE_REMOTE_TEMP=str(tmp_path / "ansible-remote"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    env.update(_strategy(strategy))
    env.update(extra)
    return env


def _strategy(strategy):
    """Mitogen's strategy (when installed, as the lab uses it) unless ``strategy`` names another.

    With Mitogen each task runs in one Python per host instead of a fresh
    interpreter: a role's playbook takes half the time natively and less than
    half in the VM.  Its start costs about 95 s under TCG (a ping task after it:
    3 s, with Ansible's linear strategy: 25 s), so a run of a few module calls
    passes strategy="linear".  ROUTEVPN_TEST_STRATEGY sets the default.
    """
    wanted = strategy or os.environ.get("ROUTEVPN_TEST_STRATEGY", "mitogen_linear")
    if not wanted.startswith("mitogen"):
        return {"ANSIBLE_STRATEGY": wanted}
    spec = importlib.util.find_spec("ansible_mitogen")
    if spec is None:
        return {}
    plugins = pathlib.Path(list(spec.submodule_search_locations)[0]) / "plugins" / "strategy"
    return {"ANSIBLE_STRATEGY_PLUGINS": str(plugins), "ANSIBLE_STRATEGY": wanted}
