"""The message layouts of _xfrm_messages against the C compiler's reading of <linux/xfrm.h>.

pyroute2 unpacks each field on its own, so a missing pad shifts every field
after it.  Here a small C program prints offsetof() of every named field and
the size of every structure, and the Python layout must agree byte for byte.
"""

import shutil
import struct
import subprocess

import pytest

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink import _xfrm_messages as messages

# (C type, our fields, where our fields must end: "sizeof" or the member that follows them)
LAYOUTS = [
    ("struct xfrm_userpolicy_info", messages.xfrm_userpolicy_info.fields, "sizeof"),
    ("struct xfrm_userpolicy_id", messages.xfrm_userpolicy_id.fields, "sizeof"),
    ("struct xfrm_usersa_info", messages.xfrm_usersa_info.fields, "sizeof"),
    ("struct xfrm_user_tmpl", messages.xfrm_user_tmpl.fields, "sizeof"),
    ("struct xfrm_mark", messages.xfrm_attributes.xfrm_mark.fields, "sizeof"),
    ("struct xfrm_userpolicy_type", messages.xfrm_attributes.xfrm_userpolicy_type.fields, "sizeof"),
    ("struct xfrm_encap_tmpl", messages.xfrm_attributes.xfrm_encap_tmpl.fields, "sizeof"),
    # The algorithm structures end in the key: what we decode must stop exactly where it starts.
    ("struct xfrm_algo", messages.xfrm_attributes.xfrm_algo.fields, "alg_key"),
    ("struct xfrm_algo_aead", messages.xfrm_attributes.xfrm_algo_aead.fields, "alg_key"),
    ("struct xfrm_algo_auth", messages.xfrm_attributes.xfrm_algo_auth.fields, "alg_key"),
]

NESTED = ("sel", "lft", "curlft", "id", "stats")


def c_member(name):
    """Our flat field name as a C member path: sel_prefixlen_d -> sel.prefixlen_d."""
    head, _sep, rest = name.partition("_")
    return "%s.%s" % (head, rest) if head in NESTED and rest else name


def python_layout(fields):
    """{field: (offset, size)} and the end offset, pads counted but not listed."""
    offsets, offset = {}, 0
    for name, fmt in fields:
        size = struct.calcsize(fmt)
        if not name.startswith("__"):
            offsets[name] = (offset, size)
        offset += size
    return offsets, offset


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory):
    if not shutil.which("cc") or not shutil.os.path.exists("/usr/include/linux/xfrm.h"):
        pytest.skip("needs a C compiler and <linux/xfrm.h> (apt install gcc linux-libc-dev)")
    lines = ["#include <stdio.h>", "#include <stddef.h>", "#include <linux/xfrm.h>", "int main(void) {"]
    for ctype, fields, end in LAYOUTS:
        for name, _fmt in fields:
            if not name.startswith("__"):
                member = c_member(name)
                lines.append('printf("%s|%s|%%zu|%%zu\\n", offsetof(%s, %s), sizeof(((%s *)0)->%s));'
                             % (ctype, name, ctype, member, ctype, member))
        if end == "sizeof":
            lines.append('printf("%s|END|%%zu|0\\n", sizeof(%s));' % (ctype, ctype))
        else:
            lines.append('printf("%s|END|%%zu|0\\n", offsetof(%s, %s));' % (ctype, ctype, end))
    lines += ["return 0;", "}"]
    directory = tmp_path_factory.mktemp("xfrm-layout")
    source, binary = directory / "layout.c", directory / "layout"
    source.write_text("\n".join(lines) + "\n")
    subprocess.run(["cc", "-o", str(binary), str(source)], check=True, capture_output=True, text=True)
    layout = {}
    for line in subprocess.run([str(binary)], check=True, capture_output=True, text=True).stdout.splitlines():
        ctype, name, offset, size = line.split("|")
        layout.setdefault(ctype, {})[name] = (int(offset), int(size))
    return layout


@pytest.mark.parametrize("ctype, fields, end", LAYOUTS, ids=[layout[0].split()[-1] for layout in LAYOUTS])
def test_layout_matches_the_kernel_header(c_layout, ctype, fields, end):
    ours, our_end = python_layout(fields)
    theirs = dict(c_layout[ctype])
    their_end = theirs.pop("END")[0]
    assert ours == theirs
    assert our_end == their_end


def test_every_kernel_attribute_number_has_its_name():
    """XFRMA_* numbers come from the list's order: a spot check of both ends and the ones decoded."""
    numbers = dict((name, number) for number, name, _kind in messages.XFRMA_MAP)
    assert (numbers["XFRMA_ALG_AUTH"], numbers["XFRMA_TMPL"], numbers["XFRMA_POLICY_TYPE"]) == (1, 5, 16)
    assert (numbers["XFRMA_ALG_AEAD"], numbers["XFRMA_ALG_AUTH_TRUNC"], numbers["XFRMA_MARK"]) == (18, 20, 21)
    assert (numbers["XFRMA_SET_MARK"], numbers["XFRMA_SET_MARK_MASK"], numbers["XFRMA_IF_ID"]) == (29, 30, 31)


def test_attribute_numbers_match_the_kernel_header(tmp_path):
    if not shutil.which("cc"):
        pytest.skip("needs a C compiler")
    source = tmp_path / "attrs.c"
    source.write_text("#include <stdio.h>\n#include <linux/xfrm.h>\nint main(void) {\n"
                      + "".join('printf("%%d\\n", %s);\n' % name for _n, name, _k in messages.XFRMA_MAP)
                      + 'printf("%d %d %d %d\\n", XFRM_MSG_NEWSA, XFRM_MSG_GETSA, XFRM_MSG_NEWPOLICY, '
                        'XFRM_MSG_GETPOLICY);\nreturn 0;\n}\n')
    subprocess.run(["cc", "-o", str(tmp_path / "attrs"), str(source)], check=True, capture_output=True)
    printed = subprocess.run([str(tmp_path / "attrs")], check=True, capture_output=True, text=True).stdout.split("\n")
    assert [int(line) for line in printed[:len(messages.XFRMA_MAP)]] == [n for n, _name, _k in messages.XFRMA_MAP]
    assert printed[len(messages.XFRMA_MAP)].split() == [str(n) for n in (
        messages.XFRM_MSG_NEWSA, messages.XFRM_MSG_GETSA, messages.XFRM_MSG_NEWPOLICY, messages.XFRM_MSG_GETPOLICY)]


def test_the_marshal_maps_the_two_dump_replies():
    marshal = messages.XfrmMarshal()
    assert marshal.msg_map == {0x10: messages.xfrm_usersa_info, 0x13: messages.xfrm_userpolicy_info}
