# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory text on its way into the files the collection writes.

This is a private module of the routevpn.mesh collection; its interface may
change without notice.  It is pure Python (no Ansible imports, no I/O); the
filters in plugins/filter/conf_text.py put it in front of the templates.

The planner refuses hostile inventory text, but the templates do not rely on
it: no value from the inventory can add a line, a brace or a path component
to any file the collection writes.  Each function either returns the value in
a form that the file's own lexer reads back as exactly one value, or raises
``ConfTextError`` naming the value (the caller's ``what``) and the reason:

``quoted``
    A double-quoted string: swanctl.conf and strongswan.conf values,
    libreswan's ipsec.conf values, BIRD strings.  None of the three lexers
    takes an escape the others share (BIRD and libreswan have none at all),
    so the rule is uniform: printable ASCII without ``"`` and ``\\``.
    libreswan matters most here: its lexer reads an unquoted word up to the
    next blank, quotes included, and picks the longer of the two matches, so
    a ``"`` inside a value would turn the quoted form into that word.
``name``
    A bare identifier: swanctl section names (connections, children,
    secrets; a dot would be a key separator there, and strongSwan reads a
    section named ``include`` as an include statement), libreswan conn
    names, BIRD symbols (also in ``'...'``, where BIRD 2 takes at most 64
    characters and no ``/``), systemd instance names (no ``%`` specifier, no
    ``\\`` escape) and file names.
``token``
    A bare word for addresses, prefixes, numbers, durations, paths in unit
    files and state files, and the ids of libreswan's ipsec.secrets: no
    blank, quote, ``#``, ``;``, brace, ``%``, ``$``, ``\\`` or shell pattern
    character.  It never starts with ``-``, so that no command reads it as an
    option and BIRD never reads an interface name as a negated pattern, and
    it ends with ``:`` only when it is an IPv6 address (``2001:db8::``):
    libreswan's ipsec.secrets lexer splits a trailing ``:`` off a word as the
    separator of ids and key.
``line``
    Text inside a ``#`` comment: printable ASCII, so no line break.
``path_inside``
    A path that stays inside a directory once normalised.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import posixpath
import re

NAME_MAX = 64
TEXT_MAX = 1024
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.:/@+][A-Za-z0-9_.:/@+-]*$")
_NAME_CHARS = re.compile(r"[A-Za-z0-9_-]")
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_.:/@+-]")
_SHOWN_MAX = 60


class ConfTextError(ValueError):
    """A value cannot be written into a configuration file; the message names it and says why."""

    def __init__(self, what, value, reason):
        self.what = what
        self.reason = reason
        super(ConfTextError, self).__init__("%s %s refused: %s" % (what, _shown(value), reason))


def _shown(value):
    """The value for a message: repr (no raw line break), shortened."""
    text = repr(value)
    if len(text) > _SHOWN_MAX:
        text = "%s... (%d characters)" % (text[:_SHOWN_MAX], len(value) if isinstance(value, str) else len(text))
    return text


def _text(value, what):
    """A str for str and int values (not bool); anything else is refused."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ConfTextError(what, value, "it is a %s, not a string or a number" % type(value).__name__)
    return value if isinstance(value, str) else str(value)


def _character(text, position):
    char = text[position]
    return "character %r (U+%04X) at position %d" % (char, ord(char), position)


def _printable(text, value, what, refused="", limit=TEXT_MAX):
    """Refuse what is not printable ASCII, the characters in ``refused``, and text longer than ``limit``."""
    if len(text) > limit:
        raise ConfTextError(what, value, "it has %d characters, more than %d" % (len(text), limit))
    for position, char in enumerate(text):
        if not " " <= char <= "~":
            raise ConfTextError(what, value, "%s is not printable ASCII (a line break, a control character or "
                                "non-ASCII text could end or corrupt the line)" % _character(text, position))
        if char in refused:
            raise ConfTextError(what, value, "%s cannot be written inside a quoted string (the daemons' lexers "
                                "have no escape for it)" % _character(text, position))
    return text


def quoted(value, what):
    """``value`` in double quotes, for a swanctl, strongswan.conf, ipsec.conf or BIRD string value."""
    text = _printable(_text(value, what), value, what, refused='"\\')
    return '"%s"' % text


def _bare(value, what, pattern, characters, limit, kind, allowed):
    """``value`` when it is one bare word of ``pattern`` (not starting with '-'), else ConfTextError."""
    text = _text(value, what)
    if not text:
        raise ConfTextError(what, value, "it is empty")
    if len(text) > limit:
        raise ConfTextError(what, value, "it has %d characters, more than %d" % (len(text), limit))
    if not pattern.match(text):
        if text[0] == "-":
            raise ConfTextError(what, value, "a %s cannot start with '-' (it would read as an option)" % kind)
        position = next(i for i, char in enumerate(text) if not characters.match(char))
        raise ConfTextError(what, value, "%s is not allowed in a %s (only %s)"
                            % (_character(text, position), kind, allowed))
    return text


def name(value, what):
    """``value`` as a bare identifier: letters, digits, ``_`` and ``-`` (not first), at most NAME_MAX characters."""
    text = _bare(value, what, _NAME_RE, _NAME_CHARS, NAME_MAX, "name", "letters, digits, '_' and '-'")
    if text == "include":
        raise ConfTextError(what, value, "strongSwan reads a section named 'include' as an include statement")
    return text


def token(value, what):
    """``value`` as a bare word: letters, digits and ``_ . : / @ + -`` (``-`` not first)."""
    text = _bare(value, what, _TOKEN_RE, _TOKEN_CHARS, TEXT_MAX, "bare word", "letters, digits and _ . : / @ + -")
    if text.endswith(":") and not _ipv6_address(text):
        raise ConfTextError(what, value, "a bare word ends with ':' only when it is an IPv6 address (libreswan's "
                            "ipsec.secrets reads a trailing ':' as the separator of ids and key)")
    return text


def _ipv6_address(text):
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def line(value, what):
    """``value`` for the inside of a ``#`` comment: printable ASCII, no line break."""
    return _printable(_text(value, what), value, what)


def path_inside(path, directory, what, direct=False):
    """The normalised ``path`` when it is inside ``directory`` (directly in it with ``direct``), else refused.

    A relative ``path`` is taken relative to ``directory``.  The check is
    lexical: ``..`` components are resolved before the comparison, symbolic
    links are not looked at.
    """
    if not isinstance(directory, str) or not directory:
        raise ConfTextError(what, directory, "the directory to keep it in is not a non-empty string")
    text = _text(path, what)
    _printable(directory, directory, what + "'s directory", limit=4096)
    _printable(text, path, what, limit=4096)
    if not text:
        raise ConfTextError(what, path, "it is empty")
    base = posixpath.normpath(directory)
    normalised = posixpath.normpath(posixpath.join(base, text))
    (base_root, base_parts), (root, parts) = _components(base), _components(normalised)
    if root != base_root or ".." in parts or parts[:len(base_parts)] != base_parts or len(parts) == len(base_parts):
        raise ConfTextError(what, path, "%s is not inside %s" % (normalised, base))
    if direct and len(parts) != len(base_parts) + 1:
        raise ConfTextError(what, path, "%s is not directly in %s (a '/' made a path of it)" % (normalised, base))
    return normalised


def _components(normalised):
    """(root, components) of a normalised path: ("/", [...]) when absolute, ("", [...]) when relative."""
    return ("/" if normalised.startswith("/") else "",
            [part for part in normalised.split("/") if part and part != "."])
