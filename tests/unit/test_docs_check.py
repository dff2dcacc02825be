"""tests/docs_check.py, the fast tier's docs check: what it catches, what it leaves alone, and the real docs."""

import importlib.util
import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Loaded by path: tests/ is no package, and the checker is a script of the checkout, not of the collection.
_spec = importlib.util.spec_from_file_location("docs_check", os.path.join(REPO, "tests", "docs_check.py"))
docs_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(docs_check)


@pytest.fixture
def repo(tmp_path):
    """A small repository: README.md, docs/other.md with two headings, and a script."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## The rule table (`plan`)\n\ntext\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "bootstrap").write_text("#!/bin/sh\n")
    return tmp_path


def problems(repo, text):
    (repo / "README.md").write_text(text)
    return docs_check.check(str(repo))


@pytest.mark.parametrize("text, expected", [
    ("# Lab\n\nMEASUREMENTS\n", "README.md:3: placeholder MEASUREMENTS left in the text"),
    ("intro\n\nTODO: the figures\n", "README.md:3: placeholder TODO left in the text"),
    ("a\nb (TBD)\n", "README.md:2: placeholder TBD left in the text"),
    ("see <placeholder> here\n", "README.md:1: placeholder <placeholder> left in the text"),
    ("the {{ routevpn_site }} of each\n", "README.md:1: unrendered Jinja {{ routevpn_site }} left in the text"),
])
def test_a_placeholder_is_caught_with_its_line(repo, text, expected):
    assert problems(repo, text) == [expected]


@pytest.mark.parametrize("text", [
    "BGP over IKE and ESP, one CHILD_SA, a PSK, the MTU, the ASN; see README.md and LICENSE.\n",
    "`TODO` in code, and\n\n```sh\nmktemp -d /tmp/x.XXX  # TODO\necho '{{ x }}'\n```\n",
    "    FIXME in an indented code block\n",
    "a todo, the XXXL size, MEASUREMENTS_DIR, TODOS\n",
])
def test_words_and_code_are_not_placeholders(repo, text):
    assert problems(repo, text) == []


@pytest.mark.parametrize("text, expected", [
    ("See [the plan](docs/plan.md).\n", "README.md:1: dead link (docs/plan.md does not exist): docs/plan.md"),
    ("one\n[x](docs/other.md#nope)\n",
     "README.md:2: dead link (docs/other.md has no heading #nope): docs/other.md#nope"),
    ("[up](#missing)\n", "README.md:1: dead link (README.md has no heading #missing): README.md#missing"),
    ("[out](../elsewhere.md)\n", "README.md:1: dead link (../elsewhere.md leaves the repository): ../elsewhere.md"),
    ("run `scripts/bootstrp`\n", "README.md:1: path in code (scripts/bootstrp does not exist): scripts/bootstrp"),
    ("`lab/exec r1\nls`\n", "README.md:1: path in code (lab/exec does not exist): lab/exec"),
    ("the contract of DESIGN.md\n", "README.md:1: file named (DESIGN.md does not exist): DESIGN.md"),
])
def test_a_dead_link_or_path_is_caught(repo, text, expected):
    assert problems(repo, text) == [expected]


@pytest.mark.parametrize("text", [
    "[other](docs/other.md), [its table](docs/other.md#the-rule-table-plan), [web](https://example.org/x.md)\n",
    "`scripts/bootstrap --check`, `./scripts/bootstrap`, [`docs/other.md`](docs/other.md)\n",
    "`lab/build/inventory.yml`, `tests/output/vm/latest`, `build/collections`, `/tmp/x`\n",
    "`roles/NAME/README.md`, `lab/build/vm/hosts/H.console`, `roles/<role>/meta`, `molecule/*/verify.yml`\n",
    "`docs/other.md#other`, docs/other.md, ```a `` b``` \n",
])
def test_live_links_and_runtime_paths_pass(repo, text):
    assert problems(repo, text) == []


@pytest.mark.parametrize("text, expected", [
    ("then `lab/exec r1 ping 2001:db8:a3::1`\n", "lab/exec r1 ping 2001:db8:a3::1"),
    ("```sh\nip netns exec x ping6 -n 10.0.0.1\n```\n", "ip netns exec x ping6 -n 10.0.0.1"),
])
def test_a_ping_that_never_ends_is_caught(repo, text, expected):
    (repo / "lab").mkdir()
    (repo / "lab" / "exec").write_text("")
    (found,) = problems(repo, text)
    assert found.endswith("ping without -c or -w never ends: " + expected)


@pytest.mark.parametrize("text", [
    "`ping -c 3 r3`, `ping -c3 -i 0.2 x`, `ping -w 5 x`, `timeout -s INT 30 ping x`\n",
    "`ansible all -m ping`, a `ping` task, every `ping`\n",
])
def test_a_bounded_ping_or_the_ping_module_passes(repo, text):
    assert problems(repo, text) == []


def test_role_readmes_name_their_own_files(repo):
    role = repo / "roles" / "bird"
    (role / "meta").mkdir(parents=True)
    (role / "meta" / "argument_specs.yml").write_text("---\n")
    (role / "README.md").write_text("From `meta/argument_specs.yml`; `meta/main.yml` is missing.\n")
    assert docs_check.check(str(repo)) == [
        "roles/bird/README.md:1: path in code (meta/main.yml does not exist): meta/main.yml"]


def test_the_files_read(repo):
    (repo / "roles" / "x").mkdir(parents=True)
    (repo / "roles" / "x" / "README.md").write_text("x\n")
    (repo / "docs" / "deep").mkdir()
    (repo / "docs" / "deep" / "more.md").write_text("x\n")
    (repo / "README.md").write_text("x\n")
    assert docs_check.doc_files(str(repo)) == ["README.md", "docs/deep/more.md", "docs/other.md",
                                               "roles/x/README.md"]


FILTERS = """
class FilterModule:
    def filters(self):
        return {"f_one": len, "f_two": len}
"""


def test_what_is_inside_names_every_module_filter_role_and_playbook(repo):
    for folder in ("plugins/modules", "plugins/filter", "roles/r/tasks", "roles/same", "playbooks/tasks"):
        (repo / folder).mkdir(parents=True)
    (repo / "plugins" / "modules" / "same.py").write_text("")
    (repo / "plugins" / "modules" / "__init__.py").write_text("")
    (repo / "plugins" / "filter" / "f.py").write_text(FILTERS)
    (repo / "playbooks" / "p.yml").write_text("---\n")
    (repo / "playbooks" / "tasks" / "plan.yml").write_text("---\n")
    table = ("# x\n\n## What is inside\n\n| piece | what |\n|---|---|\n| filter `f_one` | one |\n"
             "| roles | `r`, `same` |\n| playbooks | `p.yml` |\n\n## Next\n\n`f_two` is not in the table\n")
    assert problems(repo, table) == [
        "README.md:3: 'What is inside' does not name module same",
        "README.md:3: 'What is inside' does not name filter f_two",
    ]
    assert problems(repo, table.replace("| roles |", "| module `same` | m |\n| roles |").replace(
        "`f_one`", "`f_one`, `f_two`")) == []


def test_main_prints_file_line_messages_and_fails(repo, capsys):
    (repo / "README.md").write_text("TBD\n")
    assert docs_check.main(["--root", str(repo)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "README.md:1: placeholder TBD left in the text", "docs check: 2 files, 1 problem"]


def test_the_repository_docs_pass():
    assert docs_check.check(REPO) == []
