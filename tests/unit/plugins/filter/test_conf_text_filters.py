"""The conf_* filters: module_utils/_mesh/conf_text.py behind AnsibleFilterError, and in templates."""

import pathlib

import pytest

from ansible.errors import AnsibleError, AnsibleFilterError

from ansible_collections.routevpn.mesh.plugins.filter.conf_text import (
    FilterModule, conf_line, conf_name, conf_path_inside, conf_quote, conf_token)

from ...roles.role_runner import render


def test_every_filter_is_registered():
    assert sorted(FilterModule().filters()) == ["conf_line", "conf_name", "conf_path_inside", "conf_quote",
                                                "conf_token"]


@pytest.mark.parametrize("function, value, expected", [
    (conf_quote, "a b {x} # y", '"a b {x} # y"'),
    (conf_name, "rv-21", "rv-21"),
    (conf_token, 4296, "4296"),
    (conf_line, "site1 (AS65001)", "site1 (AS65001)"),
])
def test_filters_return_the_safe_rendering(function, value, expected):
    assert function(value, "what") == expected


@pytest.mark.parametrize("function", [conf_quote, conf_name, conf_token, conf_line])
def test_filters_raise_a_filter_error_naming_the_value(function):
    with pytest.raises(AnsibleFilterError, match=r"^end\.site 'a\\nb' refused: character '\\n'"):
        function("a\nb", "end.site")


def test_conf_path_inside():
    assert conf_path_inside("/p/gateways/v1-1.key", "/p/gateways", "inventory_hostname", direct=True) == \
        "/p/gateways/v1-1.key"
    with pytest.raises(AnsibleFilterError, match=r"^inventory_hostname '/p/gateways/\.\./x\.key' refused: /p/x\.key is "
                                                 r"not inside /p/gateways$"):
        conf_path_inside("/p/gateways/../x.key", "/p/gateways", "inventory_hostname")
    with pytest.raises(AnsibleFilterError, match="direct must be true or false"):
        conf_path_inside("/p/gateways/x.key", "/p/gateways", "h", direct="yes")


def test_in_a_template_the_task_fails_naming_the_field(tmp_path):
    template = tmp_path / "t.j2"
    template.write_text("id = {{ end.local_id | routevpn.mesh.conf_quote('end.local_id') }}\n"
                        "{{ ['a', 'b'] | map('routevpn.mesh.conf_token', 'names') | join(' ') }}\n")
    assert render(template, {"end": {"local_id": "v1-1"}}) == 'id = "v1-1"\na b\n'
    with pytest.raises(AnsibleError) as refused:
        render(template, {"end": {"local_id": "v1-1\n}\nconnections {"}})
    assert "end.local_id 'v1-1\\n}\\nconnections {' refused: character '\\n'" in str(refused.value)


def test_every_filter_has_documentation():
    from ...collection_paths import COLLECTION_ROOT

    for name in FilterModule().filters():
        assert (pathlib.Path(COLLECTION_ROOT) / "plugins" / "filter" / (name + ".yml")).exists(), name
