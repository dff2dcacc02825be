# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The files a configuration module owns in one directory: what differs, written atomically, put back on refusal.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  swanctl_config and libreswan_config share it: each
gives its files (name, content, mode, secret) and the patterns of the names
it owns; ``changes()`` compares them with the directory, ``apply()`` writes
and removes, ``restore()`` puts back what ``apply()`` replaced when the
daemon refuses the result, and ``result()`` is the part of the module's
result and diff that is about files (no secret content ever in it).  A
file whose content is bytes (an archive) is compared and written as bytes
and shown in a diff by its SHA-256 only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import re
import stat
import tempfile


class FilesError(Exception):
    """Nothing was applied, or what was is put back; the message says which, and why."""


def octal_mode(text):
    """A file mode given as octal text ("0640") as a number; FilesError naming the text otherwise."""
    try:
        value = int(str(text), 8)
    except ValueError:
        value = -1
    if not 0 <= value <= 0o7777:
        raise FilesError("mode %r is not an octal file mode such as 0644" % (text,))
    return value


def shown_content(content, secret=False):
    """A file's content as a diff shows it: text as it is, bytes by their SHA-256, a secret not at all."""
    if secret:
        return "(secret)\n"
    if isinstance(content, bytes):
        return "sha256 %s\n" % hashlib.sha256(content).hexdigest()
    return content


class ManagedFile:
    """One file a module owns: its name relative to the directory, its whole content (text, or bytes), its mode,
    its secrecy."""

    def __init__(self, name, content, mode="0644", secret=False):
        self.name = name
        self.content = content
        self.mode = octal_mode(mode)
        self.secret = bool(secret)

    @property
    def binary(self):
        return isinstance(self.content, bytes)


class FileTree:
    """``files`` (ManagedFile) in ``directory``, and the other files there whose names ``purge`` matches.

    nested: names may be paths into subdirectories (the whole tree is searched
    for purged files); else only plain names in the directory itself.  what:
    the directory as an error message names it ("the swanctl directory").
    """

    def __init__(self, directory, files, purge=(), nested=True, what="the directory"):
        self.directory = directory.rstrip("/") or "/"
        self.nested = nested
        for item in files:
            parts = item.name.split("/")
            if not item.name or item.name.startswith("/") or ".." in parts or (not nested and len(parts) > 1):
                raise FilesError("file name %r must be a %s inside %s" % (
                    item.name, "relative path" if nested else "plain name", what))
        names = [item.name for item in files]
        duplicates = sorted(set(name for name in names if names.count(name) > 1))
        if duplicates:
            raise FilesError("files: %s given more than once" % ", ".join(duplicates))
        self.files = files
        try:
            self.purge = [re.compile(pattern) for pattern in purge]
        except re.error as exc:
            raise FilesError("purge: %s" % exc)

    # -- reading ------------------------------------------------------------------------
    def path(self, name):
        return os.path.join(self.directory, name)

    def read(self, name, binary=False):
        """(content, mode) of a file, or (None, None) when it is not there; ``binary``: the content as bytes."""
        path = self.path(name)
        try:
            with open(path, "rb" if binary else "r") as handle:
                content = handle.read()
            return content, stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            return None, None

    def owned(self):
        """Names of the files (relative to the directory) that purge matches, sorted."""
        if self.nested:
            found = [os.path.relpath(os.path.join(top, name), self.directory)
                     for top, _dirs, names in os.walk(self.directory) for name in names]
        else:
            try:
                found = [name for name in os.listdir(self.directory) if os.path.isfile(self.path(name))]
            except FileNotFoundError:
                found = []
        return sorted(name for name in found if any(pattern.search(name) for pattern in self.purge))

    def changes(self):
        """{"write": [(ManagedFile, before content or None, before mode)], "remove": [names]}."""
        write = []
        for item in self.files:
            content, mode = self.read(item.name, binary=item.binary)
            if content != item.content or mode != item.mode:
                write.append((item, content, mode))
        wanted = set(item.name for item in self.files)
        return {"write": write, "remove": [name for name in self.owned() if name not in wanted]}

    @staticmethod
    def result(changes):
        """The module's result about files (written, replaced, removed) and its diff."""
        return {
            "written": [item.name for item, _content, _mode in changes["write"]],
            # Written over an earlier version (a changed key or certificate, not a new link's first one).
            "replaced": [item.name for item, content, _mode in changes["write"] if content is not None],
            "removed": changes["remove"],
            "diff": [{"before_header": item.name, "after_header": item.name,
                      "before": "" if item.secret or content is None else shown_content(content),
                      "after": shown_content(item.content, item.secret)}
                     for item, content, _mode in changes["write"]]
            + [{"before_header": name, "after_header": name, "before": "(present)\n", "after": ""}
               for name in changes["remove"]],
        }

    # -- applying -----------------------------------------------------------------------
    def write(self, name, content, mode):
        path = self.path(name)
        directory = os.path.dirname(path)
        # A directory made for a file others may not read (a key) is not readable by them either.
        os.makedirs(directory, mode=0o755 if mode & 0o044 else 0o700, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".routevpn-")
        try:
            os.fchmod(handle, mode)
            with os.fdopen(handle, "wb" if isinstance(content, bytes) else "w") as out:
                out.write(content)
            os.rename(temporary, path)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def remove(self, name):
        try:
            os.unlink(self.path(name))
        except FileNotFoundError:
            pass

    def apply(self, changes):
        """Write and remove as ``changes`` says; returns what ``restore`` needs of the removed files."""
        removed = [(name,) + self.read(name, binary=True) for name in changes["remove"]]
        for item, _content, _mode in changes["write"]:
            self.write(item.name, item.content, item.mode)
        for name in changes["remove"]:
            self.remove(name)
        return removed

    def restore(self, changes, removed):
        """Put back the files ``apply(changes)`` wrote over or removed; remove those it added."""
        for item, content, mode in changes["write"]:
            if content is None:
                self.remove(item.name)
            else:
                self.write(item.name, content, mode)
        for name, content, mode in removed:
            self.write(name, content, mode)
