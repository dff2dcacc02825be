"""conf_text: what each function lets through into a configuration file, and what it refuses."""

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.conf_text import (
    NAME_MAX, TEXT_MAX, ConfTextError, line, name, path_inside, quoted, token)

# Hostile to every function: each would end a line or corrupt it.
LINE_BREAKERS = {
    "newline": "a\nb",
    "carriage return": "a\rb",
    "NUL": "a\x00b",
    "tab": "a\tb",
    "escape": "a\x1bb",
    "DEL": "a\x7fb",
    "line separator": "a\u2028b",
    "non-ASCII letter": "caf\u00e9",
    "emoji": "\U0001f600",
}
SYNTAX = ["}", "{", '"', "#", ";", "../", "\\", "'", " ", "%", "$", "*", "=", ","]


def refusal(function, *args, **kwargs):
    with pytest.raises(ConfTextError) as refused:
        function(*args, **kwargs)
    return str(refused.value)


@pytest.mark.parametrize("function", [quoted, name, token, line])
@pytest.mark.parametrize("value", list(LINE_BREAKERS.values()), ids=list(LINE_BREAKERS))
def test_line_breaks_control_characters_and_non_ascii_are_refused_everywhere(function, value):
    message = refusal(function, value, "end.site")
    assert message.startswith("end.site %r refused: character " % value), message
    assert "\n" not in message and "\r" not in message


@pytest.mark.parametrize("function, limit", [(quoted, TEXT_MAX), (token, TEXT_MAX), (line, TEXT_MAX),
                                             (name, NAME_MAX)])
def test_very_long_values_are_refused_and_shown_shortened(function, limit):
    assert function("a" * limit, "what") in ("a" * limit, '"%s"' % ("a" * limit))
    message = refusal(function, "a" * (limit + 1), "what")
    assert "it has %d characters, more than %d" % (limit + 1, limit) in message
    assert "... (%d characters)" % (limit + 1) in message and len(message) < 200


@pytest.mark.parametrize("function", [quoted, name, token, line])
@pytest.mark.parametrize("value", [None, True, 1.5, ["a"], {"a": 1}, b"a"])
def test_only_strings_and_numbers(function, value):
    assert "it is a %s, not a string or a number" % type(value).__name__ in refusal(function, value, "what")


@pytest.mark.parametrize("value, expected", [
    ("v1-1", '"v1-1"'),
    ("a b {x} # y; 'z' 100% $HOME *", '"a b {x} # y; \'z\' 100% $HOME *"'),
    ("", '""'),
    (4296, '"4296"'),
    ("aes256gcm16-prfsha384-ecp384,aes128-sha256-modp3072", '"aes256gcm16-prfsha384-ecp384,aes128-sha256-modp3072"'),
])
def test_quoted_keeps_printable_text_inside_double_quotes(value, expected):
    assert quoted(value, "end.local_id") == expected


@pytest.mark.parametrize("value", ['x"y', "x\\", '"', "\\n"])
def test_quoted_refuses_the_quote_and_the_backslash(value):
    message = refusal(quoted, value, "end.local_id")
    assert "cannot be written inside a quoted string (the daemons' lexers have no escape for it)" in message


@pytest.mark.parametrize("value", ["rv-21", "rv-21-v4", "routevpn_from_as65002_v4", "_x", "9", "a" * NAME_MAX])
def test_name_takes_letters_digits_underscore_and_dash(value):
    assert name(value, "end.connection") == value


@pytest.mark.parametrize("value", SYNTAX + ["a.b", "a/b", "..", ".", "a:b", "a@b", "a+b"])
def test_name_refuses_everything_else(value):
    message = refusal(name, value, "end.connection")
    assert "is not allowed in a name (only letters, digits, '_' and '-')" in message, message


@pytest.mark.parametrize("value, reason", [
    ("", "it is empty"),
    ("-x", "a name cannot start with '-'"),
    ("include", "strongSwan reads a section named 'include' as an include statement"),
])
def test_name_refuses_the_empty_a_leading_dash_and_include(value, reason):
    assert reason in refusal(name, value, "end.connection")


@pytest.mark.parametrize("value", ["2001:db8:1::1", "10.0.0.0/8", "2001:db8:ff::", "::", "fe80::1", "4296", 0,
                                   "10s", "/usr/local/libexec/routevpn", "@v1-1", "gw.example.org@site:a/b+c",
                                   "lan0.100", "../x", "aes256gcm16-ecp384"])
def test_token_takes_addresses_numbers_durations_paths_and_ids(value):
    assert token(value, "end.local_ike_address") == str(value)


@pytest.mark.parametrize("value", [v for v in SYNTAX if v != "../"])
def test_token_refuses_syntax(value):
    assert "is not allowed in a bare word" in refusal(token, "a%sb" % value, "end.local_ike_address")


@pytest.mark.parametrize("value, reason", [
    ("", "it is empty"),
    ("-batch", "a bare word cannot start with '-' (it would read as an option)"),
    ("@gw:", "a bare word ends with ':' only when it is an IPv6 address"),
    ("@2001:db8::", "a bare word ends with ':' only when it is an IPv6 address"),
    ("10.0.0.1:", "a bare word ends with ':' only when it is an IPv6 address"),
])
def test_token_refuses_the_empty_a_leading_dash_and_a_trailing_colon(value, reason):
    assert reason in refusal(token, value, "end.local_id")


@pytest.mark.parametrize("value", ["Link 11-21: v1-1 (site1) <-> v2-1 (site2)", 'x"y', "x\\", "} { # ; ../ %"])
def test_line_takes_printable_ascii(value):
    assert line(value, "end.site") == value


@pytest.mark.parametrize("path, expected", [
    ("/p/gateways/v1-1.key", "/p/gateways/v1-1.key"),
    ("v1-1.key", "/p/gateways/v1-1.key"),
    ("/p/gateways/./v1-1.key", "/p/gateways/v1-1.key"),
    ("/p/gateways//x/../v1-1.key", "/p/gateways/v1-1.key"),
    ("/p/gateways/...key", "/p/gateways/...key"),
    ("sub/v1-1.key", "/p/gateways/sub/v1-1.key"),
])
def test_path_inside_returns_the_normalised_path(path, expected):
    assert path_inside(path, "/p/gateways", "inventory_hostname") == expected
    assert path_inside(path, "/p/gateways/", "inventory_hostname") == expected


@pytest.mark.parametrize("path", [
    "/p/gateways/../../evil.key",
    "../evil.key",
    "/etc/passwd",
    "/p/gateways",
    "/p/gateways/..",
    "/p/gateways-evil/x.key",
    "/p/gateways/x/../../gateways-evil/x.key",
])
def test_path_inside_refuses_a_way_out(path):
    assert "is not inside /p/gateways" in refusal(path_inside, path, "/p/gateways", "inventory_hostname")


@pytest.mark.parametrize("path", ["/p/gateways/a\nb.key", "/p/gateways/a\x00b.key", "/p/gateways/\u00e9.key"])
def test_path_inside_refuses_control_characters(path):
    assert "is not printable ASCII" in refusal(path_inside, path, "/p/gateways", "inventory_hostname")


def test_path_inside_direct_refuses_a_subdirectory():
    assert path_inside("/p/gateways/v1-1.key", "/p/gateways", "h", direct=True) == "/p/gateways/v1-1.key"
    message = refusal(path_inside, "/p/gateways/x/y.key", "/p/gateways", "inventory_hostname", direct=True)
    assert message == ("inventory_hostname '/p/gateways/x/y.key' refused: /p/gateways/x/y.key is not directly in "
                       "/p/gateways (a '/' made a path of it)")


def test_path_inside_relative_directories():
    assert path_inside("x/y", ".", "h") == "x/y"
    assert path_inside("x", "d", "h") == "d/x"
    for path in ("../x", "/x", ".", "d/../../x"):
        assert "is not inside" in refusal(path_inside, path, ".", "h")


def test_path_inside_needs_a_directory():
    assert "the directory to keep it in is not a non-empty string" in refusal(path_inside, "x", "", "h")
    assert "the directory to keep it in is not a non-empty string" in refusal(path_inside, "x", None, "h")
    assert "it is empty" in refusal(path_inside, "", "/p", "h")


def test_the_message_names_the_value_and_the_reason():
    assert refusal(quoted, "a\nb", "end.local_id") == (
        "end.local_id 'a\\nb' refused: character '\\n' (U+000A) at position 1 is not printable ASCII (a line break, "
        "a control character or non-ASCII text could end or corrupt the line)")
    assert refusal(name, "rv.21", "end.connection") == (
        "end.connection 'rv.21' refused: character '.' (U+002E) at position 2 is not allowed in a name (only letters, "
        "digits, '_' and '-')")
    error = ConfTextError("what", "v", "why")
    assert isinstance(error, ValueError) and (error.what, error.reason) == ("what", "why")
