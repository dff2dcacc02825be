"""The docs check of ./tests/run fast: what a newcomer trips over in the Markdown.

    python tests/docs_check.py [--root DIR] [FILE...]

Reads README.md, docs/**/*.md, roles/*/README.md and any Markdown changelog
(CHANGELOG.md, changelogs/**/*.md; the fragments are YAML and are not read).
bench/results/*.md are left out: bench/run writes them, and they record the
tree of the commit they measured.  Prints one "file:line: problem" a line and
exits 1 when there is any:

- a placeholder left in the prose (outside code): one of PLACEHOLDERS as an
  ALL-CAPS word, the same word in angle brackets (<placeholder>), or Jinja
  ({{ ... }}, {% ... %}) that was never rendered.  Only that list is
  flagged: BGP, IKE, ESP, CHILD_SA, README and the like are words, not
  placeholders;
- a relative link [text](path) whose file is not in the repository, or whose
  #anchor is no heading of the Markdown file it names (GitHub's heading ids);
- an inline-code path under one of the repository's top-level folders
  (`docs/plan.md`, `lab/exec r1 ...`: each word of the span is looked at) that
  does not exist.  Paths that only exist at run time (lab/build/,
  tests/output/, build/) and paths with a glob or a placeholder in them
  (*, <...>, {...}, $VAR, an ALL-CAPS part such as NAME or vS-G) are skipped;
- a ping in code (inline or a code block) with no count or deadline
  (-c, -w), which never ends when pasted: `lab/exec r1 ping -c 3 ...`;
- a piece the README's "What is inside" does not name in code: every module
  of plugins/modules, every filter that a FilterModule.filters() of
  plugins/filter returns (read with ast, not imported), every role and every
  playbook of playbooks/.

Fenced and indented code blocks are examples and output: only the ping rule
looks inside them.  Plain Python, no Ansible: it runs on the checkout and
on ansible-test's copy alike.
"""

import argparse
import ast
import os
import re
import sys
import unicodedata

PLACEHOLDERS = ("TODO", "TBD", "FIXME", "XXX", "MEASUREMENTS", "PLACEHOLDER", "TKTK")

# Top-level folders whose paths a doc names in inline code.
PATH_ROOTS = ("docs", "roles", "plugins", "scripts", "molecule", "tests", "bench", "playbooks", "lab",
              "changelogs", "meta", ".ci")
# Made at run time, never in a checkout.
RUNTIME_PATHS = ("lab/build/", "tests/output/", "build/")
# ALL-CAPS file names that are real names, not placeholders.
CAPS_NAMES = ("README", "LICENSE", "CHANGELOG")

_PLACEHOLDER = re.compile(r"(?<![A-Za-z0-9_])(%s)(?![A-Za-z0-9_])" % "|".join(PLACEHOLDERS))
_ANGLE_PLACEHOLDER = re.compile(r"<\s*(%s)\s*>" % "|".join(PLACEHOLDERS), re.IGNORECASE)
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A code span may wrap onto the next line of its paragraph, never across a blank line.
_CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)((?:(?!\n[ \t]*\n).)+?)(?<!`)\1(?!`)", re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_PATH = re.compile(r"^(?:\./)?((?:%s)/[^\s]*)$" % "|".join(re.escape(r) for r in PATH_ROOTS))
_MARKDOWN_NAME = re.compile(r"^(?:\./)?([\w.-][\w./-]*\.md(?:#[\w-]*)?)$")
_MARKDOWN_IN_PROSE = re.compile(r"(?<![\w/.-])([\w.-][\w./-]*\.md(?:#[\w-]+)?)(?![\w/-])")
_PATH_SKIP = re.compile(r"[*?<>{}$\[\]\\|]")
_CAPS_PART = re.compile(r"(?<![A-Za-z])[A-Z]+(?![a-z])")
_PING = re.compile(r"(?:^|[\s;&|(])(ping6?)(?=\s+\S)")
_PING_BOUNDED = re.compile(r"\s(?:-[a-zA-Z]*[cw]\s*\d*|--count|--deadline)")


def doc_files(root):
    """The Markdown files the check reads, relative to ``root``, sorted."""
    found = [name for name in ("README.md", "CHANGELOG.md") if os.path.isfile(os.path.join(root, name))]
    for folder in ("docs", "changelogs"):
        for directory, dirs, files in os.walk(os.path.join(root, folder)):
            dirs.sort()
            found.extend(os.path.relpath(os.path.join(directory, name), root)
                         for name in files if name.endswith(".md"))
    roles = os.path.join(root, "roles")
    if os.path.isdir(roles):
        for role in os.listdir(roles):
            if os.path.isfile(os.path.join(roles, role, "README.md")):
                found.append("roles/%s/README.md" % role)
    return sorted(found)


def split_code_blocks(text):
    """``(prose, blocks)``: the text with fenced and indented code blocks blanked (lines kept, so that
    offsets still give line numbers), and the blocks' lines as ``(line number, text)``."""
    lines = text.split("\n")
    prose, blocks = [], []
    fence = None
    previous_blank = True
    in_indented = False
    for number, line in enumerate(lines, 1):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * len(match.group(1))
            prose.append("")
        elif fence is not None:
            if line.strip().startswith(fence) and not line.strip().strip(fence[0]):
                fence = None
            else:
                blocks.append((number, line))
            prose.append("")
        elif line.startswith("    ") and line.strip() and (previous_blank or in_indented) \
                and not re.match(r"\s*([-*+]|\d+[.)])\s", line):
            in_indented = True
            blocks.append((number, line))
            prose.append("")
        else:
            in_indented = in_indented and not line.strip()
            prose.append(line)
        previous_blank = not line.strip()
    return "\n".join(prose), blocks


def code_spans(prose):
    """``[(offset, content)]`` of the inline code spans of ``prose``."""
    return [(match.start(2), match.group(2)) for match in _CODE_SPAN.finditer(prose)]


def without_code_spans(prose):
    """``prose`` with every code span blanked, newlines kept."""
    return _CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), prose)


def heading_ids(text):
    """The ids GitHub gives the headings of a Markdown text."""
    prose, _blocks = split_code_blocks(text)
    ids, seen = set(), {}
    for line in prose.split("\n"):
        match = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(1))
        slug = "".join(c for c in title.lower().replace(" ", "-")
                       if c in "-_" or unicodedata.category(c)[0] in "LN")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        ids.add(slug if count == 0 else "%s-%d" % (slug, count))
    return ids


class Checker:
    """Checks the files of one repository; ``found`` collects (file, line, problem)."""

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.found = []
        self._ids = {}

    def _say(self, name, text, offset, message):
        self.found.append((name, text.count("\n", 0, offset) + 1, message))

    def _anchors(self, path):
        if path not in self._ids:
            with open(path, encoding="utf-8") as handle:
                self._ids[path] = heading_ids(handle.read())
        return self._ids[path]

    def _missing(self, base, target):
        """Why ``target`` (a path, maybe with an #anchor, relative to the folder ``base``) is dead, or None."""
        path, _hash, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(self.root, base, path)) if path else None
        if full is not None:
            if os.path.relpath(full, self.root).startswith(".."):
                return "%s leaves the repository" % path
            if not os.path.exists(full):
                return "%s does not exist" % os.path.relpath(full, self.root)
        if anchor and (full is None or full.endswith(".md")):
            doc = full or os.path.join(self.root, base)
            if os.path.isfile(doc) and anchor not in self._anchors(doc):
                return "%s has no heading #%s" % (os.path.relpath(doc, self.root), anchor)
        return None

    def check_file(self, name):
        path = os.path.join(self.root, name)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        prose, blocks = split_code_blocks(text)
        plain = without_code_spans(prose)
        self._placeholders(name, plain)
        plain = self._links(name, plain, prose)
        self._prose_paths(name, plain)
        for offset, content in code_spans(prose):
            self._code_paths(name, prose, offset, content)
            self._ping(name, prose, offset, content)
        for number, line in blocks:
            self._ping(name, None, number, line)

    def _placeholders(self, name, plain):
        for pattern, what in ((_PLACEHOLDER, "placeholder %s"), (_ANGLE_PLACEHOLDER, "placeholder %s"),
                              (_JINJA, "unrendered Jinja %s")):
            for match in pattern.finditer(plain):
                self._say(name, plain, match.start(), (what % match.group(0)) + " left in the text")

    def _links(self, name, plain, prose):
        # Links are found where no code span hides them; the target is read from the text itself.
        for match in _LINK.finditer(plain):
            target = prose[match.start(1):match.end(1)]
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("/"):
                continue  # http:, mailto:, an absolute path: not a file of the repository
            if target.startswith("#"):
                target = os.path.basename(name) + target
            why = self._missing(os.path.dirname(name), target)
            if why:
                self._say(name, prose, match.start(1), "dead link (%s): %s" % (why, target))
        # Each link once: its target is not a file named in the prose again.
        return _LINK.sub(lambda m: m.group(0)[:m.start(1) - m.start(0)] + " " * (m.end(1) - m.start(1))
                         + m.group(0)[m.end(1) - m.start(0):], plain)

    def _code_paths(self, name, prose, offset, content):
        for word in content.split():
            word = word.strip(",;:()'\"").rstrip(".")
            match = _PATH.match(word) or _MARKDOWN_NAME.match(word)
            if match:
                self._path(name, prose, offset, match.group(1), "path in code")

    def _prose_paths(self, name, plain):
        for match in _MARKDOWN_IN_PROSE.finditer(plain):
            self._path(name, plain, match.start(1), match.group(1), "file named")

    def _path(self, name, text, offset, path, what):
        if path.startswith(RUNTIME_PATHS) or _PATH_SKIP.search(path):
            return
        # From the top, or from the doc's own folder (a role's README names its meta/argument_specs.yml).
        why = self._missing("", path)
        if why is None or self._missing(os.path.dirname(name), path) is None:
            return
        file_path = path.partition("#")[0]
        # DESIGN.md is a file's name; roles/NAME/README.md, lab/exec HOST and vS-G are patterns.
        parts = re.split(r"[/.]", os.path.dirname(file_path) if file_path.endswith(".md") else file_path)
        if any(_CAPS_PART.search(part) and part not in CAPS_NAMES for part in parts):
            return
        self._say(name, text, offset, "%s (%s): %s" % (what, why, path))

    def _ping(self, name, prose, where, code):
        for match in _PING.finditer(code):
            before = code[:match.start(1)].split()
            if before and before[-1] in ("-m", "--module-name"):
                continue  # Ansible's ping module
            rest = re.split(r"[;&|]", code[match.end(1):])[0]
            if _PING_BOUNDED.search(rest) or "timeout" in before:
                continue  # a count, a deadline, or timeout(1) ends it
            message = "ping without -c or -w never ends: %s" % " ".join(code.split())
            if prose is None:
                self.found.append((name, where, message))
            else:
                self._say(name, prose, where, message)


def collection_pieces(root):
    """``[(kind, name)]``: the modules, filters, roles and playbooks of the collection under ``root``."""
    pieces = []
    for kind, folder, suffix in (("module", "plugins/modules", ".py"), ("playbook", "playbooks", ".yml")):
        for entry in sorted(os.listdir(os.path.join(root, folder))):
            if entry.endswith(suffix) and not entry.startswith("_"):
                pieces.append((kind, entry if kind == "playbook" else entry[:-len(suffix)]))
    for entry in sorted(os.listdir(os.path.join(root, "plugins", "filter"))):
        if entry.endswith(".py"):
            with open(os.path.join(root, "plugins", "filter", entry), encoding="utf-8") as handle:
                tree = ast.parse(handle.read(), entry)
            pieces.extend(("filter", name) for name in _filter_names(tree))
    roles = os.path.join(root, "roles")
    pieces.extend(("role", entry) for entry in sorted(os.listdir(roles)) if os.path.isdir(os.path.join(roles, entry)))
    return pieces


def _filter_names(tree):
    """The keys of the dict that ``FilterModule.filters()`` returns."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == "FilterModule":
            for method in node.body:
                if isinstance(method, ast.FunctionDef) and method.name == "filters":
                    for returned in ast.walk(method):
                        if isinstance(returned, ast.Return) and isinstance(returned.value, ast.Dict):
                            return [key.value for key in returned.value.keys if isinstance(key, ast.Constant)]
    return []


def inside_problems(root, name="README.md", heading="## What is inside"):
    """``[(file, line, problem)]``: each piece of the collection the README's table does not name in code."""
    with open(os.path.join(root, name), encoding="utf-8") as handle:
        text = handle.read()
    start = text.find("\n" + heading + "\n")
    if start < 0:
        return [(name, 1, "no section %r listing the collection's pieces" % heading)]
    end = text.find("\n## ", start + 1)
    section = text[start:end if end >= 0 else len(text)]
    # A row names pieces of the kind its first cell starts with ("module", "filters", "roles"): the module
    # private_netns is not named by the role of the same name.
    named = set()
    for row in section.split("\n"):
        cells = row.split("|")
        if len(cells) > 2 and cells[1].split():
            kind = cells[1].split()[0].rstrip("s")
            named.update((kind, word.strip(",;:()")) for _offset, content in code_spans(row)
                         for word in content.split())
    line = text.count("\n", 0, start) + 2
    return [(name, line, "%r does not name %s %s" % (heading.lstrip("# "), kind, piece))
            for kind, piece in collection_pieces(root) if (kind, piece) not in named]


def check(root, names=None):
    """The problems of the docs under ``root`` (or of ``names``, relative to it), sorted by file and line."""
    checker = Checker(root)
    for name in names or doc_files(root):
        checker.check_file(name)
    if names is None and os.path.isfile(os.path.join(root, "README.md")) \
            and os.path.isdir(os.path.join(root, "plugins", "modules")):
        checker.found.extend(inside_problems(root))
    return ["%s:%d: %s" % problem for problem in sorted(checker.found, key=lambda p: (p[0], p[1]))]


def main(argv=None):
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--root", default=here, help="the repository (default: this checkout)")
    parser.add_argument("files", nargs="*", help="Markdown files relative to the root (default: the docs)")
    args = parser.parse_args(argv)
    names = args.files or doc_files(args.root)
    problems = check(args.root, args.files or None)
    for problem in problems:
        print(problem)
    print("docs check: %d file%s, %d problem%s" % (len(names), "" if len(names) == 1 else "s",
                                                   len(problems), "" if len(problems) == 1 else "s"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
