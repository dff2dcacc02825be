"""Hostile inventory text against every template the roles write (issue 9, part 2).

The planner refuses hostile inventory text; the templates must not rely on
that.  Each case takes the reference lab's plan (or a role's variables),
overwrites one field with a hostile string, and renders the role's template
with Ansible's own templating.  Either the rendering fails with the
conf_text error naming the field, or the daemon's own parser reads the file
and the value comes back as one value, with no line, section, record or
symbol more than with the harmless value:

- strongSwan: a charon-systemd in a scratch namespace loads the file with
  ``swanctl --load-conns`` (``--load-creds`` for secrets) and vici lists
  what it holds; charon may refuse a value, but only as the value of its
  own key ("invalid value for: proposals");
- libreswan 4.10 (the extracted Debian packages): ``ipsec addconn
  --checkconfig``, then ``readwriteconf`` prints the conns it parsed; a
  pluto's ``--listpsks`` lists the secrets it read;
- BIRD 2: ``bird -p``, then a BIRD in a scratch namespace lists its
  protocols (with their descriptions) and its symbols;
- the namespace boot script's state file: the script itself, with ``ip``,
  ``nsenter``, ``sysctl`` and ``nft`` replaced by stubs that record their
  arguments (the tunnels' boot unit reads JSON that the tunnels_boot module
  writes, from no template);
- systemd units: ``systemd-analyze verify``; nftables: ``nft -f`` into a
  scratch namespace and ``nft -j list``.

Values the filters refuse in every place (a line break, NUL, a tab,
non-ASCII, more than 1024 characters) are checked without daemons.
"""

import copy
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import uuid
from collections import namedtuple

import pytest
import yaml

from ansible.errors import AnsibleError

from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.plan import plan
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.tunnels import tunnel_config

from ..collection_paths import COLLECTION_ROOT
from ..plugins.module_utils.mesh_inventory import MASTER
from .libreswan_root import LibreswanTree, extracted
from .mesh_roles import lab_hostvars, run, wait_until
from .role_runner import render

ROLES = COLLECTION_ROOT / "roles"
HOST = "v1-1"
# Where the units' ExecStart finds the boot scripts when systemd-analyze verifies them (one per process).
LIBEXEC = pathlib.Path("/tmp/rvinj-libexec-%d" % os.getpid())
CHARON = "/usr/sbin/charon-systemd"

# Refused wherever they go: each would end a line, or corrupt it.
BREAKOUT = {
    "newline": "x\n  include /etc/passwd",
    "crlf": "x\r\n[Service]",
    "nul": "x\x00y",
    "tab": "x\ty",
    "line separator": "x\u2028y",
    "non-ASCII": "gw-\u00e9",
    "very long": "x" * 1100,
}
# Printable, but syntax somewhere: refused where they would be, else read back as one value.
SYNTAX = {
    "close brace": "x}",
    "open brace": "{x",
    "double quote": 'x"y',
    "hash": "x#y",
    "semicolon": "x;y",
    "dot dot slash": "../x",
    "backslash": "x\\",
    "apostrophe": "x'y",
    "odd but safe when quoted": "a b {x} # y",
}


# ---- contexts: the variables each template sees, as the role would give them ----

def role_variables(role):
    """The role's defaults and vars over those of the common role, which every role depends on."""
    variables = {}
    for name in ("defaults", "vars"):
        for owner in ("common", role):
            path = ROLES / owner / name / "main.yml"
            if path.exists():
                variables.update(yaml.safe_load(path.read_text()) or {})
    return variables


def lab(**per_host):
    """(hostvars, plan) of the reference lab; per_host = {host: {variable: value}}."""
    hostvars = lab_hostvars()
    for host, settings in per_host.items():
        hostvars[host].update(settings)
    return hostvars, plan(hostvars, sorted(hostvars))


def plan_context(role, mesh, hostvars, **extra):
    variables = role_variables(role)
    variables.update(routevpn_mesh_plan=mesh, inventory_hostname=HOST, hostvars={}, ansible_managed="Ansible managed",
                     routevpn_psk_master=MASTER, routevpn_psk_overrides={},
                     routevpn_transfer_prefix_v4=hostvars[HOST]["routevpn_transfer_prefix_v4"],
                     routevpn_transfer_prefix_v6=hostvars[HOST]["routevpn_transfer_prefix_v6"])
    variables.update(extra)
    return variables


def strongswan_context(tunnel_type="xfrm"):
    hostvars, mesh = lab(**{HOST: {"routevpn_tunnel_type": tunnel_type}})
    return plan_context("strongswan", mesh, hostvars, end=mesh["hosts"][HOST][0])


def libreswan_context(tunnel_type="vti"):
    hostvars, mesh = lab(**{HOST: {"routevpn_tunnel_type": tunnel_type, "routevpn_ike_daemon": "libreswan"}})
    # tasks/version.yml sets the version from `ipsec --version`; the parser below is 4.10's.
    return plan_context("libreswan", mesh, hostvars, end=mesh["hosts"][HOST][0], __routevpn_libreswan_version="4.10")


def bird_context():
    hostvars, mesh = lab()
    return plan_context("bird", mesh, hostvars, routevpn_bfd=True, routevpn_bird_announce_static=True,
                        routevpn_private_interfaces=["lan0", {"name": "lan1.100", "addresses": ["10.1.0.1/24"]}])


def netns_context():
    variables = role_variables("private_netns")
    variables.update(ansible_managed="Ansible managed", routevpn_libexec_dir=str(LIBEXEC), routevpn_private_interfaces=[
        "lan0", {"name": "lan1.100", "addresses": ["10.1.0.1/24", "2001:db8:a1::1/64"]}])
    return variables


def tunnels_context(tunnel_type="xfrm"):
    hostvars, mesh = lab(**{HOST: {"routevpn_tunnel_type": tunnel_type}})
    variables = role_variables("tunnels")
    variables.update(ansible_managed="Ansible managed", routevpn_mesh_plan=mesh, inventory_hostname=HOST,
                     hostvars={}, routevpn_tcp_mss=None, routevpn_libexec_dir=str(LIBEXEC),
                     __routevpn_tunnels=tunnel_config(copy.deepcopy(mesh["hosts"][HOST]), netns="private", mtu=1400))
    return variables


CONTEXTS = {
    "strongswan/connection.conf.j2": strongswan_context,
    "strongswan/connection.conf.j2 (vti)": lambda: strongswan_context("vti"),
    "strongswan/secrets.conf.j2": strongswan_context,
    "strongswan/routevpn.conf.j2": lambda: dict(role_variables("strongswan"), routevpn_strongswan_log_file="/x.log"),
    "libreswan/connection.conf.j2": libreswan_context,
    "libreswan/connection.conf.j2 (xfrm)": lambda: libreswan_context("xfrm"),
    "libreswan/secrets.j2": libreswan_context,
    "bird/bird.conf.j2": bird_context,
    "bird/routevpn-bird.service.j2": lambda: role_variables("bird"),
    "private_netns/netns.conf.j2": netns_context,
    "private_netns/routevpn-netns@.service.j2": netns_context,
    "tunnels/routevpn-tunnels@.service.j2": tunnels_context,
    "tunnels/mss.nft.j2": tunnels_context,
}


_CONTEXT_CACHE = {}


def context(key):
    """A fresh copy of the variables of template ``key`` (the plan is made once per process)."""
    if key not in _CONTEXT_CACHE:
        _CONTEXT_CACHE[key] = CONTEXTS[key]()
    return copy.deepcopy(_CONTEXT_CACHE[key])


def template_of(key):
    return ROLES / key.split(" ")[0].replace("/", "/templates/", 1)


def render_key(key, variables):
    return render(template_of(key), variables)


# ---- fields: where a hostile value goes, and the label the error must name ----

# kind: what the template makes of the value (conf_quote, conf_line, conf_name, conf_token); the
# strictest where it is printed twice (if_id in a comment and as a value: token).
Field = namedtuple("Field", "key label kind put expect refusal_key")


def field(key, label, kind, put, expect=None, refusal_key=None):
    return Field(key, label, kind, put, expect, refusal_key)


def end_field(name, alias=None):
    """Put into ``end``; ``alias`` names the plan mapping a lookup by the old value must still find."""
    def put(variables, value):
        end = variables["end"] if "end" in variables else variables["routevpn_mesh_plan"]["hosts"][HOST][0]
        old, end[name] = end[name], value
        if alias:
            variables["routevpn_mesh_plan"][alias][value] = variables["routevpn_mesh_plan"][alias][old]
    return put


def first_child(key):
    """Put into the first of ``end``'s children (the plan's CHILD_SAs): its name, or its first traffic selector."""
    def put(variables, value):
        child = variables["end"]["children"][0]
        if key == "traffic_selectors":
            child[key][0] = value
        else:
            child[key] = value
    return put


def variable(name):
    def put(variables, value):
        variables[name] = value
    return put


def bird_end(name):
    def put(variables, value):
        variables["routevpn_mesh_plan"]["hosts"][HOST][0][name] = value
    return put


def bird_session(name):
    """Put into the first BGP session (IPv6) of the first link end."""
    def put(variables, value):
        variables["routevpn_mesh_plan"]["hosts"][HOST][0]["bgp_sessions"][0][name] = value
    return put


def plan_key(name):
    def put(variables, value):
        variables["routevpn_mesh_plan"][name] = value
    return put


def bird_hostname(variables, value):
    mesh = variables["routevpn_mesh_plan"]
    variables["inventory_hostname"] = value
    mesh["gateways"][value], mesh["hosts"][value] = mesh["gateways"].pop(HOST), mesh["hosts"].pop(HOST)


def bird_gateway(name):
    def put(variables, value):
        gateway = variables["routevpn_mesh_plan"]["gateways"][HOST]
        old, gateway[name] = gateway[name], value
        if name == "site":
            sites = variables["routevpn_mesh_plan"]["sites"]
            sites[value] = sites.pop(old)
    return put


def bird_other_site(variables, value):
    sites = variables["routevpn_mesh_plan"]["sites"]
    sites[value] = sites.pop("site3")
    other_sites = variables["routevpn_mesh_plan"]["gateways"][HOST]["other_sites"]
    other_sites[other_sites.index("site3")] = value


def bird_site(name, index=None):
    def put(variables, value):
        site = variables["routevpn_mesh_plan"]["sites"]["site2"]
        if index is None:
            site[name] = value
        else:
            site[name][index] = value
    return put


def first_item(name, key=None, index=None):
    """Put into the first item of list variable ``name`` (or of its ``key``, or into ``index`` of that)."""
    def put(variables, value):
        items = variables[name] if key is None else variables[name][key]
        if index is None:
            items[0] = value
        else:
            items[0][index] = value
    return put


def second_item_name(name):
    def put(variables, value):
        variables[name][1]["name"] = value
    return put


def second_item_address(name):
    def put(variables, value):
        variables[name][1]["addresses"][0] = value
    return put


def strongswan_id(side):
    def expect(view, value):
        for conn in view.values():
            conn[side + "-1"]["id"] = value
        return view
    return expect


def libreswan_keys(**keys):
    def expect(view, value):
        for conn in view.values():
            for key, template in keys.items():
                conn[key] = template % value
        return view
    return expect


def bird_description(template):
    """The description of the first link's BGP protocols (``link 11-21 to v2-1`` in the lab) with the value in it."""
    def expect(view, value):
        protocols, symbols = view
        for spec in protocols.values():
            if spec.get("Description") == "link 11-21 to v2-1":
                spec["Description"] = template % value
        return protocols, symbols
    return expect


SWAN_CONN = "strongswan/connection.conf.j2"
SWAN_VTI = "strongswan/connection.conf.j2 (vti)"
SWAN_SECRETS = "strongswan/secrets.conf.j2"
SWAN_SETTINGS = "strongswan/routevpn.conf.j2"
LS_CONN = "libreswan/connection.conf.j2"
LS_XFRM = "libreswan/connection.conf.j2 (xfrm)"
LS_SECRETS = "libreswan/secrets.j2"
BIRD = "bird/bird.conf.j2"
BIRD_UNIT = "bird/routevpn-bird.service.j2"
NETNS = "private_netns/netns.conf.j2"
NETNS_UNIT = "private_netns/routevpn-netns@.service.j2"
TUNNELS_UNIT = "tunnels/routevpn-tunnels@.service.j2"
MSS = "tunnels/mss.nft.j2"

FIELDS = [
    # strongSwan connections
    field(SWAN_CONN, "end.link", "line", end_field("link")),
    field(SWAN_CONN, "end.gateway", "line", end_field("gateway", alias="gateways")),
    field(SWAN_CONN, "end.site", "line", end_field("site")),
    field(SWAN_CONN, "end.peer", "line", end_field("peer", alias="gateways")),
    field(SWAN_CONN, "end.peer_site", "line", end_field("peer_site")),
    field(SWAN_CONN, "end.connection", "name", end_field("connection")),
    field(SWAN_CONN, "end.local_ike_address", "token", end_field("local_ike_address")),
    field(SWAN_CONN, "end.remote_ike_address", "token", end_field("remote_ike_address")),
    field(SWAN_CONN, "end.local_id", "quote", end_field("local_id"), expect=strongswan_id("local")),
    field(SWAN_CONN, "end.remote_id", "quote", end_field("remote_id"), expect=strongswan_id("remote")),
    field(SWAN_CONN, "end.if_id", "token", end_field("if_id")),
    field(SWAN_CONN, "end.children.name", "name", first_child("name")),
    field(SWAN_CONN, "end.children.traffic_selectors", "token", first_child("traffic_selectors")),
    field(SWAN_VTI, "end.mark", "token", end_field("mark")),
    field(SWAN_CONN, "routevpn_strongswan_proposals", "quote", variable("routevpn_strongswan_proposals"),
          refusal_key="proposals"),
    field(SWAN_CONN, "routevpn_strongswan_esp_proposals", "quote", variable("routevpn_strongswan_esp_proposals"),
          refusal_key="esp_proposals"),
    field(SWAN_CONN, "routevpn_strongswan_dpd_delay", "token", variable("routevpn_strongswan_dpd_delay")),
    field(SWAN_CONN, "routevpn_strongswan_ike_rekey_time", "token", variable("routevpn_strongswan_ike_rekey_time")),
    field(SWAN_CONN, "routevpn_strongswan_keyingtries", "token", variable("routevpn_strongswan_keyingtries")),
    field(SWAN_CONN, "routevpn_strongswan_child_rekey_time", "token",
          variable("routevpn_strongswan_child_rekey_time")),
    # strongSwan secrets and settings
    field(SWAN_SECRETS, "end.connection", "name", end_field("connection")),
    field(SWAN_SECRETS, "end.local_id", "quote", end_field("local_id")),
    field(SWAN_SECRETS, "end.remote_id", "quote", end_field("remote_id")),
    field(SWAN_SETTINGS, "routevpn_strongswan_disabled_plugins", "name",
          first_item("routevpn_strongswan_disabled_plugins")),
    field(SWAN_SETTINGS, "routevpn_strongswan_vici_socket", "quote", variable("routevpn_strongswan_vici_socket")),
    field(SWAN_SETTINGS, "routevpn_strongswan_log_file", "quote", variable("routevpn_strongswan_log_file")),
    # libreswan conns and secrets
    field(LS_CONN, "end.link", "line", end_field("link")),
    field(LS_CONN, "end.gateway", "line", end_field("gateway")),
    field(LS_CONN, "end.site", "line", end_field("site")),
    field(LS_CONN, "end.peer", "line", end_field("peer")),
    field(LS_CONN, "end.peer_site", "line", end_field("peer_site")),
    field(LS_CONN, "end.children.name", "name", first_child("name")),
    field(LS_CONN, "end.children.traffic_selectors", "token", first_child("traffic_selectors")),
    field(LS_CONN, "end.local_ike_address", "token", end_field("local_ike_address")),
    field(LS_CONN, "end.remote_ike_address", "token", end_field("remote_ike_address")),
    field(LS_CONN, "end.local_id", "quote", end_field("local_id"), expect=libreswan_keys(leftid="@%s")),
    field(LS_CONN, "end.remote_id", "quote", end_field("remote_id"), expect=libreswan_keys(rightid="@%s")),
    field(LS_CONN, "end.mark", "token", end_field("mark")),
    field(LS_CONN, "end.interface", "token", end_field("interface")),
    field(LS_XFRM, "end.if_id", "token", end_field("if_id")),
    field(LS_XFRM, "end.interface", "line", end_field("interface")),
    field(LS_CONN, "routevpn_libreswan_ike", "quote", variable("routevpn_libreswan_ike"),
          expect=libreswan_keys(ike="%s")),
    field(LS_CONN, "routevpn_libreswan_esp", "quote", variable("routevpn_libreswan_esp"),
          expect=libreswan_keys(esp="%s", ah="%s")),
    field(LS_CONN, "routevpn_libreswan_dpd_delay", "token", variable("routevpn_libreswan_dpd_delay")),
    field(LS_CONN, "routevpn_libreswan_retransmit_timeout", "token",
          variable("routevpn_libreswan_retransmit_timeout")),
    field(LS_CONN, "routevpn_libreswan_keyingtries", "token", variable("routevpn_libreswan_keyingtries")),
    field(LS_CONN, "routevpn_libreswan_ike_lifetime", "token", variable("routevpn_libreswan_ike_lifetime")),
    field(LS_CONN, "routevpn_libreswan_ipsec_lifetime", "token", variable("routevpn_libreswan_ipsec_lifetime")),
    field(LS_SECRETS, "end.link", "line", end_field("link")),
    field(LS_SECRETS, "end.connection", "line", end_field("connection")),
    field(LS_SECRETS, "end.local_id", "token", end_field("local_id")),
    field(LS_SECRETS, "end.remote_id", "token", end_field("remote_id")),
    # BIRD
    field(BIRD, "routevpn_private_netns", "line", variable("routevpn_private_netns")),
    field(BIRD, "inventory_hostname", "line", bird_hostname),
    field(BIRD, "gateway.site", "line", bird_gateway("site")),
    field(BIRD, "gateway.asn", "line", bird_gateway("asn")),
    field(BIRD, "gateway.router_id", "token", bird_gateway("router_id")),
    # BIRD's log statement by design (a destination, quoted file names, classes): a line, not a comment.
    field(BIRD, "routevpn_bird_log", "statement", variable("routevpn_bird_log")),
    field(BIRD, "routevpn_transfer_prefix_v6", "token", plan_key("transfer_pool_v6")),
    field(BIRD, "routevpn_sites", "line", bird_other_site),
    field(BIRD, "routevpn_sites asn", "token", bird_site("asn")),
    field(BIRD, "routevpn_sites prefixes", "token", bird_site("prefixes_v4", 0)),
    field(BIRD, "routevpn_private_interfaces", "token", first_item("routevpn_private_interfaces")),
    field(BIRD, "routevpn_bird_ospf_area", "token", variable("routevpn_bird_ospf_area")),
    field(BIRD, "end.link", "quote", bird_end("link"), expect=bird_description("link %s to v2-1")),
    field(BIRD, "end.peer", "quote", bird_end("peer"), expect=bird_description("link 11-21 to %s")),
    field(BIRD, "end.peer_site", "line", bird_end("peer_site")),
    field(BIRD, "end.interface", "token", bird_end("interface")),
    field(BIRD, "end.bgp_sessions.name", "name", bird_session("name")),
    field(BIRD, "end.bgp_sessions.local_address", "token", bird_session("local_address")),
    field(BIRD, "end.bgp_sessions.neighbor_address", "token", bird_session("neighbor_address")),
    field(BIRD, "end.local_asn", "token", bird_end("local_asn")),
    field(BIRD, "end.peer_asn", "token", bird_end("peer_asn")),
    field(BIRD_UNIT, "routevpn_private_netns", "name", variable("routevpn_private_netns")),
    field(BIRD_UNIT, "routevpn_bird_user", "token", variable("routevpn_bird_user")),
    field(BIRD_UNIT, "routevpn_bird_config", "token", variable("routevpn_bird_config")),
    field(BIRD_UNIT, "routevpn_bird_control_socket", "token", variable("routevpn_bird_control_socket")),
    field(BIRD_UNIT, "routevpn_bird_pid_file", "token", variable("routevpn_bird_pid_file")),
    # Boot state files and units
    field(NETNS, "ansible_managed", "line", variable("ansible_managed")),
    field(NETNS, "routevpn_private_netns", "name", variable("routevpn_private_netns")),
    field(NETNS, "routevpn_libexec_dir", "line", variable("routevpn_libexec_dir")),
    field(NETNS, "routevpn_private_interfaces", "token", first_item("routevpn_private_interfaces")),
    field(NETNS, "routevpn_private_interfaces name", "token", second_item_name("routevpn_private_interfaces")),
    field(NETNS, "routevpn_private_interfaces addresses", "token",
          second_item_address("routevpn_private_interfaces")),
    field(NETNS_UNIT, "ansible_managed", "line", variable("ansible_managed")),
    field(NETNS_UNIT, "routevpn_libexec_dir", "token", variable("routevpn_libexec_dir")),
    field(NETNS_UNIT, "routevpn_private_netns_config_dir", "token", variable("routevpn_private_netns_config_dir")),
    field(TUNNELS_UNIT, "ansible_managed", "line", variable("ansible_managed")),
    field(TUNNELS_UNIT, "routevpn_libexec_dir", "token", variable("routevpn_libexec_dir")),
    field(TUNNELS_UNIT, "routevpn_tunnels_config_dir", "token", variable("routevpn_tunnels_config_dir")),
    field(TUNNELS_UNIT, "routevpn_tunnels_boot_python", "token", variable("routevpn_tunnels_boot_python")),
    field(MSS, "ansible_managed", "line", variable("ansible_managed")),
    field(MSS, "routevpn_private_netns", "line", variable("routevpn_private_netns")),
    field(MSS, "end.interface", "token", first_item("__routevpn_tunnels", "interfaces")),
    field(MSS, "routevpn_tcp_mss", "token", variable("routevpn_tcp_mss")),
]


def hostile_render(spec, value):
    """(rendered text, None) or (None, the error's message)."""
    variables = context(spec.key)
    spec.put(variables, value)
    try:
        return render_key(spec.key, variables), None
    except AnsibleError as exc:
        return None, "%s %s" % (exc, exc.__cause__ or "")


def case_id(spec, name):
    return "%s|%s|%s" % (spec.key, spec.label, name)


# ---- values refused everywhere: no daemon needed ----

def refused_naming(message, label):
    """The conf_text error for ``label``: "<label> '<value>' refused: <reason>"."""
    return re.search(re.escape(label) + r" ['\"].*refused: ", message, re.DOTALL) is not None


@pytest.mark.parametrize("spec", FIELDS, ids=lambda spec: "%s|%s" % (spec.key, spec.label))
def test_a_line_break_or_a_control_character_is_refused_naming_the_field(spec):
    for name, value in BREAKOUT.items():
        text, message = hostile_render(spec, value)
        assert text is None, "%s, %s: %r was written:\n%s" % (spec.label, name, value, text)
        assert refused_naming(message, spec.label), message


# ---- printable syntax: refused, or read back by the daemon as one value ----

class Refused(object):
    """A daemon refused the file; ``message`` is what it said."""

    def __init__(self, message):
        self.message = message

    def __repr__(self):
        return "Refused(%r)" % self.message


def text_of(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, list):
        return [text_of(item) for item in value]
    if isinstance(value, dict):
        return dict((key, text_of(item)) for key, item in value.items())
    return value


class Charon(object):
    """charon-systemd in a scratch namespace, started for one file and stopped again (it takes 50 ms)."""

    SETTINGS = """charon {
  load_modular = yes
  plugins {
    include /etc/strongswan.d/charon/*.conf
  }
}
%s
"""
    VICI = 'charon-systemd {\n  plugins {\n    vici {\n      socket = "unix://%s"\n    }\n  }\n}\n'

    def __init__(self, base, settings=None, socket_path=None):
        """``settings``: charon's own (the role's drop-in); else a vici socket in a fresh directory of /run."""
        self.base = base
        self.run_dir = pathlib.Path("/run") / ("rvinj-" + uuid.uuid4().hex[:8])
        self.run_dir.mkdir()
        self.socket = socket_path or str(self.run_dir / "charon.vici")
        self.conf = base / ("strongswan-%s.conf" % uuid.uuid4().hex[:8])
        self.conf.write_text(self.SETTINGS % (settings if settings is not None else self.VICI % self.socket))
        self.netns = "rvinj-" + uuid.uuid4().hex[:8]
        run("ip", "netns", "add", self.netns)
        self.process = subprocess.Popen(["ip", "netns", "exec", self.netns, "env", "STRONGSWAN_CONF=%s" % self.conf,
                                         CHARON], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait(self, socket_path=None, timeout=20):
        path = socket_path or self.socket
        wait_until(lambda: os.path.exists(path) or self.process.poll() is not None, timeout, interval=0.02,
                   message="charon's vici socket %s" % path)
        return os.path.exists(path)

    def session(self, socket_path=None):
        import vici

        sock = socket.socket(socket.AF_UNIX)
        sock.connect(socket_path or self.socket)
        return vici.Session(sock)

    def swanctl(self, *args):
        proc = run("swanctl", *(args + ("--uri", "unix://" + self.socket)), check=False)
        output = "\n".join(line for line in (proc.stdout + proc.stderr).splitlines()
                           if not re.match(r"^plugin '.*': failed to load", line))
        return proc.returncode, output

    def close(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        run("ip", "netns", "del", self.netns, check=False)
        shutil.rmtree(str(self.run_dir), ignore_errors=True)


class Daemons(object):
    """The parsers each template's file goes to, and what they read back (a view to compare)."""

    def __init__(self, base, libreswan):
        self.base = base
        self.libreswan = libreswan
        self.pluto_netns = None
        # The namespace script wants the namespace to exist; the stubs stand in for everything done in it.
        self.state_netns = None

    def path(self, text, name="rendered"):
        path = self.base / ("%s-%s" % (uuid.uuid4().hex[:8], name))
        path.write_text(text)
        return path

    # strongSwan
    def swanctl(self, text, what):
        pytest.importorskip("vici")
        charon = Charon(self.base)
        try:
            assert charon.wait(), "charon did not start"
            rc, output = charon.swanctl("--load-" + what, "--file", str(self.path(text, "swanctl.conf")))
            if rc != 0:
                return Refused(output)
            session = charon.session()
            if what == "conns":
                return dict((name, text_of(conn)) for item in session.list_conns() for name, conn in item.items())
            return sorted(text_of(session.get_shared()["keys"]))
        finally:
            charon.close()

    # libreswan
    def libreswan_conns(self, text):
        path = self.path(text, "ipsec.conf")
        checked = self.libreswan.run("addconn", "--config", str(path), "--checkconfig", check=False)
        output = (checked.stdout + checked.stderr).strip()
        if checked.returncode != 0 or output:
            return Refused(output)
        conns, current = {}, None
        for line in self.libreswan.run("readwriteconf", "--config", str(path)).stdout.splitlines():
            if line.startswith("conn "):
                current = conns.setdefault(line.split(" ", 1)[1], {})
            elif current is not None and line.startswith("\t") and "=" in line:
                key, value = line.strip().split("=", 1)
                current[key] = value[1:-1] if len(value) > 1 and value[0] == value[-1] == '"' else value
        return conns

    def libreswan_secrets(self, text):
        if self.pluto_netns is None:
            self.pluto_netns = "rvinj-" + uuid.uuid4().hex[:8]
            run("ip", "netns", "add", self.pluto_netns)
            self.libreswan.run("--checknss", netns=self.pluto_netns)
            self.libreswan.run("pluto", "--config", str(self.libreswan.conf_file), "--rundir",
                               str(self.libreswan.run_dir), "--logfile", str(self.libreswan.base / "pluto.log"),
                               netns=self.pluto_netns)
            wait_until(lambda: self.libreswan.whack("--status", netns=self.pluto_netns, check=False).returncode == 0,
                       20, message="pluto's control socket")
        (self.libreswan.conf_dir / "routevpn-rendered.secrets").write_text(text)
        self.libreswan.whack("--rereadsecrets", netns=self.pluto_netns)
        listed = self.libreswan.whack("--listpsks", netns=self.pluto_netns).stdout
        return sorted(sorted(m.group(1).split()) for m in re.finditer(r"^\d+ +\d+: PSK (.*)$", listed, re.M))

    # BIRD
    def bird(self, text):
        path = self.path(text, "bird.conf")
        parsed = run("bird", "-p", "-c", str(path), check=False)
        if parsed.returncode != 0:
            return Refused(parsed.stderr)
        netns = "rvinj-" + uuid.uuid4().hex[:8]
        control = "/run/%s.ctl" % netns
        run("ip", "netns", "add", netns)
        try:
            run("ip", "netns", "exec", netns, "bird", "-c", str(path), "-s", control, "-P", "/run/%s.pid" % netns)
            wait_until(lambda: os.path.exists(control), 20, interval=0.02, message="BIRD's control socket")
            protocols, current = {}, None
            for line in run("birdc", "-s", control, "show", "protocols", "all").stdout.splitlines()[2:]:
                fields = line.split()
                if line and not line.startswith(" "):
                    current = protocols.setdefault(fields[0], {"proto": fields[1]})
                elif current is not None and ":" in line and line.strip().split(":")[0] in (
                        "Description", "Neighbor address", "Neighbor AS", "Local AS"):
                    key, value = line.strip().split(":", 1)
                    current[key] = value.strip()
            symbols = sorted(line.split()[0] + " " + line.split("\t", 1)[-1].strip() for line in
                             run("birdc", "-s", control, "show", "symbols").stdout.splitlines()[1:] if line.strip())
            return protocols, symbols
        finally:
            run("birdc", "-s", control, "down", check=False)
            run("ip", "netns", "del", netns, check=False)
            # BIRD removes them itself as it goes down: whichever of us comes second finds nothing.
            for leftover in (control, "/run/%s.pid" % netns):
                pathlib.Path(leftover).unlink(missing_ok=True)

    # The boot scripts, with stubs for the commands they run
    def boot_script(self, text, role, script, stub_fails):
        stubs = self.base / ("stubs-" + uuid.uuid4().hex[:8])
        stubs.mkdir()
        log = stubs / "calls"
        for command in ("ip", "nsenter", "sysctl", "nft", "sleep"):
            (stubs / command).write_text(
                "#!/bin/sh\n{ printf '%%s' \"$(basename \"$0\")\"; "
                "for a; do printf '\\037%%s' \"$a\"; done; echo; } >> %s\n"
                "case \" $* \" in %s) exit 1;; esac\nexit 0\n" % (log, stub_fails))
            (stubs / command).chmod(0o755)
        conf = self.path(text, "state.conf")
        if self.state_netns is None:
            self.state_netns = "rvinj-" + uuid.uuid4().hex[:8]
            run("ip", "netns", "add", self.state_netns)
        proc = subprocess.run(["sh", str(ROLES / role / "files" / script), "up", self.state_netns, str(conf)],
                              capture_output=True, text=True, check=False,
                              env=dict(os.environ, PATH="%s:/usr/bin:/bin" % stubs))
        calls = [line.split("\037") for line in log.read_text().splitlines()] if log.exists() else []
        return proc.returncode, proc.stderr, calls

    # systemd and nftables
    def unit(self, text, key):
        directory = self.base / ("units-" + uuid.uuid4().hex[:8])
        directory.mkdir()
        name = pathlib.Path(key).name.replace(".j2", "")
        (directory / name).write_text(text)
        LIBEXEC.mkdir(exist_ok=True)
        (LIBEXEC / "routevpn-netns").write_text("#!/bin/sh\n")
        (LIBEXEC / "routevpn-netns").chmod(0o755)
        for role, unit in (("private_netns", "routevpn-netns@.service"), ("tunnels", "routevpn-tunnels@.service")):
            if unit != name:
                variables = dict(role_variables(role), ansible_managed="test", routevpn_libexec_dir=str(LIBEXEC))
                (directory / unit).write_text(render(ROLES / role / "templates" / (unit + ".j2"), variables))
        verified = run("systemd-analyze", "verify", "--man=no", str(directory / name.replace("@", "@private")),
                       check=False)
        if verified.returncode != 0 or verified.stderr.strip():
            return Refused(verified.stderr)
        # What systemd read: the same sections and keys, line for line.
        return [line.split("=", 1)[0] for line in text.splitlines() if line and not line.startswith("#")]

    def nft(self, text):
        netns = "rvinj-" + uuid.uuid4().hex[:8]
        run("ip", "netns", "add", netns)
        try:
            loaded = run("ip", "netns", "exec", netns, "nft", "-f", str(self.path(text, "mss.nft")), check=False)
            if loaded.returncode != 0:
                return Refused(loaded.stderr)
            listed = json.loads(run("ip", "netns", "exec", netns, "nft", "-j", "list", "ruleset").stdout)
            return [item for item in listed["nftables"] if "metainfo" not in item]
        finally:
            run("ip", "netns", "del", netns, check=False)

    def close(self):
        if self.state_netns:
            run("ip", "netns", "del", self.state_netns, check=False)
        if self.pluto_netns:
            self.libreswan.close()
            run("ip", "netns", "del", self.pluto_netns, check=False)


@pytest.fixture
def daemons(tmp_path):
    """Per test: ansible-test units forks every test, so state kept for a module would be lost (and leak)."""
    if os.geteuid() != 0:
        pytest.skip("the parsers run in scratch namespaces: root only")
    for tool in ("bird", "swanctl", "nft", "systemd-analyze"):
        if not shutil.which(tool):
            pytest.skip("%s is not installed" % tool)
    base = tmp_path / "injection"
    base.mkdir()
    tree = LibreswanTree(extracted(), base / "libreswan")
    found = Daemons(base, tree)
    try:
        yield found
    finally:
        found.close()
        tree.close()
        shutil.rmtree(str(LIBEXEC), ignore_errors=True)


def view_of(daemons, key, text):
    if key.startswith("strongswan/connection"):
        return daemons.swanctl(text, "conns")
    if key.startswith("strongswan/secrets"):
        return daemons.swanctl(text, "creds")
    if key.startswith("libreswan/connection"):
        return daemons.libreswan_conns(text)
    if key.startswith("libreswan/secrets"):
        return daemons.libreswan_secrets(text)
    if key.startswith("bird/bird.conf"):
        return daemons.bird(text)
    if key.startswith("private_netns/netns.conf"):
        # The LAN interfaces are in the public namespace, not yet in the private one.
        return daemons.boot_script(text, "private_netns", "routevpn-netns", "*' -n '*' show '*")
    if key.endswith(".service.j2"):
        return daemons.unit(text, key)
    if key.endswith(".nft.j2"):
        return daemons.nft(text)
    raise AssertionError("no parser for %s" % key)


SYNTAX_FIELDS = [spec for spec in FIELDS if spec.key != SWAN_SETTINGS and spec.kind != "statement"]


@pytest.mark.parametrize("spec", SYNTAX_FIELDS, ids=lambda spec: "%s|%s" % (spec.key, spec.label))
def test_printable_syntax_is_refused_or_read_back_by_the_daemon_as_one_value(spec, daemons):
    benign = view_of(daemons, spec.key, render_key(spec.key, context(spec.key)))
    assert not isinstance(benign, Refused), benign
    read_back = 0
    for name, value in SYNTAX.items():
        text, message = hostile_render(spec, value)
        if text is None:
            assert refused_naming(message, spec.label), message
            continue
        # A bare word or a name is one word by construction; the syntax characters only pass where they are text.
        assert spec.kind in ("quote", "line") or re.match(r"^[A-Za-z0-9_.:/@+-]+$", value), (spec, value, text)
        if spec.kind not in ("quote", "line"):
            continue
        view = view_of(daemons, spec.key, text)
        if isinstance(view, Refused):
            # Only a value charon checks itself, refused as the value of its own key.
            assert spec.refusal_key and "invalid value for: %s," % spec.refusal_key in view.message, (value, view, text)
            continue
        expected = spec.expect(copy.deepcopy(benign), value) if spec.expect else benign
        assert view == expected, "%s, %s (%r):\n%s" % (spec.label, name, value, text)
        read_back += 1
    # Text in quotes or comments: the odd value at least reached the parser and came back.
    assert read_back or spec.kind not in ("quote", "line") or spec.refusal_key, spec


# ---- values that quoting (or a bare word) makes safe come back intact ----

ODD = "a b {x} # y;'z'"


def test_an_ike_id_with_blanks_braces_and_a_hash_comes_back_intact(daemons):
    """strongSwan, libreswan and BIRD read the quoted value back as it was, as one value."""
    variables = context(SWAN_CONN)
    variables["end"]["local_id"] = ODD
    conns = daemons.swanctl(render_key(SWAN_CONN, variables), "conns")
    assert list(conns) == ["rv-21"] and conns["rv-21"]["local-1"]["id"] == ODD, conns
    assert list(conns["rv-21"]["children"]) == ["rv-21"]
    variables = context(SWAN_SECRETS)  # one link's file
    variables["end"]["local_id"] = ODD
    assert daemons.swanctl(render_key(SWAN_SECRETS, variables), "creds") == ["ike-rv-21"]

    variables = context(LS_CONN)
    variables["end"]["local_id"] = ODD
    conns = daemons.libreswan_conns(render_key(LS_CONN, variables))
    assert sorted(conns) == ["rv-21-v4", "rv-21-v6"], conns
    assert all(conn["leftid"] == "@" + ODD and conn["rightid"] == "@v2-1" for conn in conns.values()), conns

    variables = context(BIRD)
    variables["routevpn_mesh_plan"]["hosts"][HOST][0]["peer"] = ODD
    protocols, dummy = daemons.bird(render_key(BIRD, variables))
    described = dict((name, spec["Description"]) for name, spec in protocols.items() if "Description" in spec)
    assert described["rv-21-v6"] == described["rv-21-v4"] == "link 11-21 to " + ODD, described


def test_odd_bare_words_stay_one_word_for_each_reader(daemons):
    """Ids, interface names and addresses with every character a bare word may hold."""
    odd_id = "gw_1.example.org@site:a/b+c"
    variables = context(LS_SECRETS)
    variables["end"].update(local_id=odd_id, remote_id="2001:db8::1")
    assert daemons.libreswan_secrets(render_key(LS_SECRETS, variables)) == [["@2001:db8::1", "@" + odd_id]]

    # An IPv6 address may end with ':' (link index 0 gets the pool's first address) ...
    variables = context(BIRD)
    session = variables["routevpn_mesh_plan"]["hosts"][HOST][0]["bgp_sessions"][0]
    session.update(local_address="2001:db8:ff::", neighbor_address="2001:db8:ff::1")
    variables["routevpn_private_interfaces"][0] = "lan0.100"
    protocols, dummy = daemons.bird(render_key(BIRD, variables))
    assert protocols["rv-21-v6"]["Neighbor address"] == "2001:db8:ff::1%rv-21", protocols["rv-21-v6"]
    # ... no other word may (an id is written @id): libreswan's secrets lexer would split the ':' off as its separator.
    for value in ("gw:", "2001:db8::"):
        text, message = hostile_render(field(LS_SECRETS, "end.local_id", "token", end_field("local_id")), value)
        assert text is None and refused_naming(message, "end.local_id") and "trailing ':'" in message, message

    odd_name = "lan1.100:a@b+c"
    variables = context(NETNS)
    variables["routevpn_private_interfaces"][1] = {"name": odd_name, "addresses": ["2001:db8:a1::/64", "10.1.0.1/24"]}
    rc, stderr, calls = daemons.boot_script(render_key(NETNS, variables), "private_netns", "routevpn-netns",
                                            "*' -n '*' show '*")
    assert rc == 0, stderr
    assert ["ip", "link", "set", "dev", odd_name, "netns", daemons.state_netns] in calls, calls
    assert ["ip", "-n", daemons.state_netns, "address", "replace", "2001:db8:a1::/64", "dev", odd_name] in calls


def test_a_leading_dash_never_reaches_a_command_line():
    for spec in (field(NETNS, "routevpn_private_interfaces", "token", first_item("routevpn_private_interfaces")),
                 field(BIRD, "routevpn_private_interfaces", "token", first_item("routevpn_private_interfaces"))):
        text, message = hostile_render(spec, "-batch")
        assert text is None and refused_naming(message, spec.label), message


def test_charon_settings_paths_come_back_as_one_value(daemons, tmp_path):
    """The drop-in's socket and log file, with blanks, braces, '#', ';' and an apostrophe in their names."""
    pytest.importorskip("vici")
    directory = pathlib.Path("/run") / ("rvinj-" + uuid.uuid4().hex[:8])
    (directory / "d").mkdir(parents=True)
    logs = tmp_path / "logs"
    logs.mkdir()
    try:
        socket_path = str(directory / ("vici %s.sock" % ODD))
        log_file = str(logs / ("charon %s.log" % ODD))
        variables = dict(role_variables("strongswan"), routevpn_strongswan_vici_socket=socket_path,
                         routevpn_strongswan_log_file=log_file)
        charon = Charon(daemons.base, render_key(SWAN_SETTINGS, variables), socket_path=socket_path)
        try:
            assert charon.wait(), "charon did not listen on %r" % socket_path
            plugins = text_of(charon.session().stats()["plugins"])
            assert "vici" in plugins and "connmark" not in plugins and "bypass-lan" not in plugins, plugins
            wait_until(lambda: os.path.exists(log_file) and os.path.getsize(log_file) > 0, 10,
                       message="charon's log file %r" % log_file)
            assert sorted(os.listdir(str(directory))) == ["d", os.path.basename(socket_path)]
            assert sorted(os.listdir(str(logs))) == [os.path.basename(log_file)]
        finally:
            charon.close()
        # '..' in a quoted path is still one path; the settings parser does not resolve it.
        variables["routevpn_strongswan_vici_socket"] = str(directory / "d" / ".." / "up.sock")
        charon = Charon(daemons.base, render_key(SWAN_SETTINGS, variables),
                        socket_path=variables["routevpn_strongswan_vici_socket"])
        try:
            assert charon.wait() and os.path.exists(str(directory / "up.sock"))
        finally:
            charon.close()
    finally:
        shutil.rmtree(str(directory), ignore_errors=True)


# ---- the pki role's paths on the controller ----

PKI_PATHS = "{{ __routevpn_pki_gateway_key }}\n{{ __routevpn_pki_gateway_certificate }}\n"


def pki_paths(tmp_path, hostname):
    template = tmp_path / "pki-paths.j2"
    template.write_text(PKI_PATHS)
    variables = dict(role_variables("pki"), routevpn_pki_dir=str(tmp_path / "pki"), inventory_hostname=hostname)
    return render(template, variables).splitlines()


@pytest.mark.parametrize("hostname", ["v1-1", "gw1.example.org", "..", ".hidden"])
def test_the_pki_role_keeps_a_gateway_s_key_and_certificate_in_its_directory(tmp_path, hostname):
    gateways = tmp_path / "pki" / "gateways"
    assert pki_paths(tmp_path, hostname) == [str(gateways / (hostname + ".key")), str(gateways / (hostname + ".crt"))]


@pytest.mark.parametrize("hostname", ["../../evil", "x/y", "/etc/cron.d/evil", "../gateways-evil", "a\nb"])
def test_a_host_name_that_would_leave_the_pki_directory_is_refused(tmp_path, hostname):
    with pytest.raises(AnsibleError) as refused:
        pki_paths(tmp_path, hostname)
    message = "%s %s" % (refused.value, refused.value.__cause__ or "")
    assert refused_naming(message, "inventory_hostname"), message
    assert not (tmp_path / "pki").exists()
