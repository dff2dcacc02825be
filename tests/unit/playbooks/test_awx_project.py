"""docs/awx.md's project, run as AWX runs a job: the planning play with each way of giving the PSK master.

A job runs ansible-playbook in a checkout of the project, with the inventory
AWX wrote elsewhere, the vault password of the job's Vault credential and the
extra vars (AWX's job variables, and what a custom credential injects) in a
file.  --tags never: the planning play (tagged always) runs, nothing after it.
"""

import json
import subprocess

import yaml

from ..collection_paths import ansible_bin, ansible_env
from ..plugins.module_utils.mesh_inventory import MASTER, inventory

GATEWAYS = ["v1-1", "v2-1"]
WORKFLOW_JOB = {"awx_job_id": 17, "awx_workflow_job_id": 16, "tower_job_id": 17, "tower_workflow_job_id": 16}


# docs/awx.md's wrapper playbook: group_vars beside it would not be read (an imported playbook's own directory
# is the one Ansible reads them from), so it reads the vaulted file itself.
WRAPPER = """---
- name: The mesh's secrets, from the project's vault-encrypted file (the job's Vault credential opens it)
  hosts: routevpn_gateways
  gather_facts: false
  tags: [always]
  tasks:
    - name: Read secrets/routevpn.yml, on the controller
      ansible.builtin.include_vars:
        file: secrets/routevpn.yml

- name: The collection's playbook
  ansible.builtin.import_playbook: routevpn.mesh.%s
"""


def project(tmp_path, vaulted_master=False):
    """The project of docs/awx.md (two wrapper playbooks, the vaulted secrets beside them) and the inventory."""
    root = tmp_path / "project"
    (root / "secrets").mkdir(parents=True)
    for name in ("mesh", "verify"):
        (root / ("%s.yml" % name)).write_text(
            WRAPPER % name if vaulted_master else
            "---\n- name: routevpn.mesh's %s playbook\n  ansible.builtin.import_playbook: routevpn.mesh.%s\n"
            % (name, name))
    password = tmp_path / "vault-password"
    password.write_text("correct horse battery staple\n")
    if vaulted_master:
        secret = root / "secrets" / "routevpn.yml"
        secret.write_text(yaml.safe_dump({"vault_routevpn_psk_master": MASTER}))
        subprocess.run([ansible_bin("ansible-vault"), "encrypt", "--vault-password-file", str(password), str(secret)],
                       capture_output=True, text=True, env=ansible_env(tmp_path), check=True)
    hostvars = inventory({1: 1, 2: 1})
    group_vars = {"routevpn_expected_gateways": GATEWAYS}
    for key in ("routevpn_sites", "routevpn_transfer_prefix_v6"):
        group_vars[key] = hostvars["v1-1"][key]
    if vaulted_master:
        group_vars["routevpn_psk_master"] = "{{ vault_routevpn_psk_master }}"
    hosts = dict((name, dict((key, value) for key, value in hostvars[name].items()
                             if key in ("routevpn_site", "routevpn_gateway_id", "routevpn_public_address")))
                 for name in GATEWAYS)
    path = tmp_path / "awx-inventory.yml"
    path.write_text(yaml.safe_dump({"routevpn_gateways": {"hosts": hosts, "vars": group_vars}}))
    return root, path, password


def run(tmp_path, root, inventory_path, extra_vars, *args):
    extra = tmp_path / "extravars"
    extra.write_text(json.dumps(extra_vars))
    result = subprocess.run(
        [ansible_bin("ansible-playbook"), "-i", str(inventory_path), "mesh.yml", "--tags", "never",
         "-e", "@%s" % extra] + list(args),
        cwd=str(root), capture_output=True, text=True, env=ansible_env(tmp_path, strategy="linear"), timeout=300,
        check=False)
    return result.returncode, result.stdout + result.stderr


def test_the_master_from_a_vaulted_file_beside_the_playbooks(tmp_path):
    root, path, password = project(tmp_path, vaulted_master=True)
    rc, output = run(tmp_path, root, path, WORKFLOW_JOB, "--vault-password-file", str(password))
    assert rc == 0 and '"2 gateways in 2 sites, 1 link"' in output, output
    # Without the job's Vault credential the file cannot be read, and the run stops there, on the controller.
    rc, output = run(tmp_path, root, path, WORKFLOW_JOB)
    assert rc != 0, output
    assert "Attempting to decrypt but no vault secrets found" in output, output
    assert "UNREACHABLE" not in output and "PLAY [Plan and validate" not in output, output


def test_the_master_injected_as_an_extra_var_by_a_custom_credential(tmp_path):
    root, path = project(tmp_path)[:2]
    rc, output = run(tmp_path, root, path, dict(WORKFLOW_JOB, routevpn_psk_master=MASTER))
    assert rc == 0 and '"2 gateways in 2 sites, 1 link"' in output, output
    assert MASTER not in output


def test_group_vars_beside_the_wrappers_are_not_read(tmp_path):
    # Why docs/awx.md's wrapper reads the secrets itself: an imported playbook reads the group_vars of its own
    # directory (the collection's playbooks/), not those of the playbook that imports it.
    root, path = project(tmp_path)[:2]
    (root / "group_vars" / "routevpn_gateways").mkdir(parents=True)
    (root / "group_vars" / "routevpn_gateways" / "main.yml").write_text(
        yaml.safe_dump({"routevpn_psk_master": MASTER}))
    rc, output = run(tmp_path, root, path, {})
    assert rc != 0, output
    assert "all: routevpn_psk_master: missing; per-link PSKs derive from it" in output, output
