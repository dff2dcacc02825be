# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to routevpn.mesh: XFRM interfaces and VTI/VTI6 devices, described as data for ``LinkSet``.

Every attribute of a tunnel's IFLA_INFO_DATA is RECREATE here.  For an
XFRM interface the kernel leaves no choice: a change must carry both if_id
and link or link silently resets to 0, and collect_md can never change.
For VTI the kernel could change endpoints and keys in place, but a device
whose key changes under a running IKE daemon silently moves to other SAs;
a new device makes the change visible (routes and BGP sessions over it
restart) instead.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._links import (
    READ_ONLY,
    LinkAttr,
    LinkError,
    LinkKind,
)

U32_MAX = 0xFFFFFFFF


def _normalise_xfrm(entry):
    name, if_id = entry["name"], entry.get("if_id")
    if if_id is None:
        raise LinkError("%s: if_id is required to create an XFRM interface" % name)
    if not 0 < if_id <= U32_MAX:
        raise LinkError("%s: if_id %s must be 1..%d (the kernel refuses 0)" % (name, if_id, U32_MAX))
    entry["kind"] = "xfrm"
    # An XFRM interface needs an underlying device only for its own traffic, which it has none of.
    entry["link"] = entry.get("link") or "lo"
    return entry


XFRM = LinkKind(
    kinds={"xfrm": ("xfrm interface", "xfrm_interface")},
    attrs=(
        LinkAttr("if_id", "IFLA_XFRM_IF_ID", "xfrm_if_id"),
        LinkAttr("link", "IFLA_XFRM_LINK", "xfrm_link", unset=0, device=True),
    ),
    # The kernel keeps one table of if_ids per namespace the interfaces were created in.
    unique=(("if_id",),),
    normalise=_normalise_xfrm,
)


def _normalise_vti(entry):
    name = entry["name"]
    missing = [option for option in ("local", "remote") if entry.get(option) in (None, "")]
    if missing:
        raise LinkError("%s: %s required to create a VTI device" % (name, " and ".join(missing)))
    try:
        local, remote = ipaddress.ip_address(entry["local"]), ipaddress.ip_address(entry["remote"])
    except ValueError as exc:
        raise LinkError("%s: %s" % (name, exc))
    if local.version != remote.version:
        raise LinkError("%s: local %s and remote %s are of different families" % (name, local, remote))
    mode = entry.get("mode") or ("vti6" if local.version == 6 else "vti")
    if (mode == "vti6") != (local.version == 6):
        raise LinkError("%s: mode %s needs IPv%d endpoints, not %s" % (name, mode, 6 if mode == "vti6" else 4, local))
    if entry.get("key") is not None:
        for which in ("ikey", "okey"):
            if entry.get(which) not in (None, entry["key"]):
                raise LinkError("%s: key %s contradicts %s %s; give key, or ikey and okey"
                                % (name, entry["key"], which, entry[which]))
            entry[which] = entry["key"]
    for which in ("ikey", "okey"):
        if not entry.get(which):
            raise LinkError("%s: %s (or key) is required: a VTI device without a key takes every SA" % (name, which))
        if not 0 < entry[which] <= U32_MAX:
            raise LinkError("%s: %s %s must be 1..%d" % (name, which, entry[which], U32_MAX))
    entry.update(kind=mode, local=str(local), remote=str(remote))
    entry.pop("key", None)
    return entry


VTI = LinkKind(
    kinds={"vti": ("vti", "ip_vti"), "vti6": ("vti6", "ip6_vti")},
    attrs=(
        LinkAttr("local", "IFLA_VTI_LOCAL", "vti_local"),
        LinkAttr("remote", "IFLA_VTI_REMOTE", "vti_remote"),
        LinkAttr("ikey", "IFLA_VTI_IKEY", "vti_ikey", unset=0),
        LinkAttr("okey", "IFLA_VTI_OKEY", "vti_okey", unset=0),
        LinkAttr("link", "IFLA_VTI_LINK", "vti_link", unset=0, device=True),
        LinkAttr("fwmark", "IFLA_VTI_FWMARK", change=READ_ONLY, unset=0),
    ),
    # Without disable_policy the kernel looks up an IPsec input policy for the decrypted packets
    # arriving on the device, finds none in the namespace the device was moved to, and drops them.
    # Both families: a VTI device of either family carries inner packets of both (ip_vti and
    # ip6_vti transmit IPv4 and IPv6); the IPv6 sysctl exists since Linux 5.17, and is skipped where missing.
    sysctls=(("ipv4", "disable_policy", "1"), ("ipv6", "disable_policy", "1")),
    # The kernel finds a VTI device by its endpoints and input key, and refuses a second one.
    unique=(("local", "remote", "ikey"),),
    normalise=_normalise_vti,
)
