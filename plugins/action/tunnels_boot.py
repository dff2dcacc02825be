# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tunnels_boot action: build the archive of the boot code on the controller, then run the module once.

The archive holds ``ansible_collections.routevpn.mesh.plugins.module_utils.
_netlink._tunnels_boot`` and every module of the collection's module_utils
it imports, transitively, found by reading their imports with ``ast`` in the
controller's copy of the collection (not by looking at what this process
happens to have imported), and an empty ``__init__.py`` for each package
level, so that ``python3 -m`` runs it with only the archive on PYTHONPATH.
The entries are sorted, stored, dated 1980-01-01 and of one mode: the same
collection gives the same bytes, so the module writes the archive only when
the collection changed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ast
import base64
import hashlib
import io
import os
import zipfile

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

PACKAGE = "ansible_collections.routevpn.mesh.plugins.module_utils"
ENTRY = PACKAGE + "._netlink._tunnels_boot"
DATE_TIME = (1980, 1, 1, 0, 0, 0)


class ArchiveError(Exception):
    """The boot code cannot be archived as it is; the message names the module and the import."""


def module_utils_dir():
    """The controller's copy of the collection's module_utils (found by the package's own ``__file__``)."""
    from ansible_collections.routevpn.mesh.plugins.module_utils import _netlink

    return os.path.dirname(os.path.dirname(os.path.abspath(_netlink.__file__)))


def _source(root, name):
    """(path, is_package) of module ``name`` of PACKAGE under ``root``, or (None, None) when there is none."""
    parts = name.split(".")[len(PACKAGE.split(".")):]
    base = os.path.join(root, *parts)
    if parts and os.path.isfile(base + ".py"):
        return base + ".py", False
    if os.path.isdir(base):
        return os.path.join(base, "__init__.py"), True
    return None, None


def _imports(tree, name):
    """Yield (imported name, lazy, names it imports from it) for each import; lazy: inside a function."""
    package = name.rpartition(".")[0]

    def visit(node, lazy):
        for child in ast.iter_child_nodes(node):
            inner = lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                for alias in child.names:
                    yield alias.name, inner, ()
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    parent = package.split(".")[:len(package.split(".")) - child.level + 1]
                    base = ".".join(parent + ([child.module] if child.module else []))
                yield base, inner, tuple(alias.name for alias in child.names)
            yield from visit(child, inner)

    return visit(tree, False)


def _parse(path, name):
    with open(path, "rb") as handle:
        source = handle.read()
    try:
        return source, ast.parse(source, filename=path)
    except SyntaxError as exc:
        raise ArchiveError("%s: %s" % (name, exc))


def import_closure(root=None, entry=ENTRY):
    """``{module name: source bytes}`` of ``entry`` and every module of PACKAGE it imports, transitively.

    An import of Ansible at import time, or of another collection's code, is
    refused: the boot unit's Python has neither.  Imports inside functions
    are followed within the collection, and otherwise left to run time.
    """
    root = root or module_utils_dir()
    modules, todo = {}, [entry]
    while todo:
        name = todo.pop()
        if name in modules:
            continue
        path, is_package = _source(root, name)
        if path is None or is_package:
            raise ArchiveError("%s: no such module in %s" % (name, root))
        modules[name], tree = _parse(path, name)
        for imported, lazy, names in _imports(tree, name):
            top = imported.split(".")[0]
            if top == "ansible" and not lazy:
                raise ArchiveError("%s imports %s when it is imported; the boot unit's Python has no Ansible "
                                   "(import it inside the function that needs it)" % (name, imported))
            if top != "ansible_collections":
                continue
            if imported != PACKAGE and not imported.startswith(PACKAGE + "."):
                raise ArchiveError("%s imports %s, which is not in the collection's module_utils" % (name, imported))
            path, is_package = _source(root, imported)
            if path is None:
                raise ArchiveError("%s imports %s, which does not exist in %s" % (name, imported, root))
            if is_package:
                _check_empty_package(path, imported)
                for item in names:
                    if _source(root, imported + "." + item)[0] is not None:
                        todo.append(imported + "." + item)
            else:
                todo.append(imported)
    for name in modules:
        parts = name.split(".")
        for depth in range(len(PACKAGE.split(".")), len(parts)):
            package = ".".join(parts[:depth])
            _check_empty_package(_source(root, package)[0], package)
    return modules


def _check_empty_package(path, name):
    """The archive's ``__init__.py`` files are empty: a package whose own one does something cannot be archived."""
    if path is None or not os.path.exists(path):
        return
    dummy, tree = _parse(path, name)
    body = tree.body[1:] if tree.body and isinstance(tree.body[0], ast.Expr) and isinstance(
        getattr(tree.body[0], "value", None), ast.Constant) else tree.body
    if body:
        raise ArchiveError("%s: its __init__.py has code; the boot archive gives every package an empty one" % name)


def build_archive(root=None, entry=ENTRY):
    """The zip archive of ``entry``'s import closure, as bytes; the same bytes for the same sources."""
    modules = import_closure(root, entry)
    files = {}
    for name, source in modules.items():
        parts = name.split(".")
        files["/".join(parts) + ".py"] = source
        for depth in range(1, len(parts)):
            files.setdefault("/".join(parts[:depth]) + "/__init__.py", b"")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=DATE_TIME)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # Unix, whatever the controller: the mode below is read as Unix bits
            info.external_attr = (0o100644 & 0xFFFF) << 16
            archive.writestr(info, files[path])
    return buffer.getvalue()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("netns", "xfrm", "vti", "mss_file", "config_dir", "libexec_dir"))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        try:
            archive = build_archive()
        except (ArchiveError, OSError) as exc:
            raise AnsibleActionFail("tunnels_boot: the boot code cannot be archived: %s" % exc)
        args = dict(self._task.args)
        args["archive"] = base64.b64encode(archive).decode("ascii")
        result.update(self._execute_module(module_name="routevpn.mesh.tunnels_boot", module_args=args,
                                           task_vars=task_vars))
        # The archive is not worth showing (at -vvv) in the module's arguments: its size and digest are.
        invocation = result.get("invocation", {}).get("module_args")
        if isinstance(invocation, dict) and "archive" in invocation:
            invocation["archive"] = "(%d bytes, sha256 %s)" % (len(archive), hashlib.sha256(archive).hexdigest())
        return result
