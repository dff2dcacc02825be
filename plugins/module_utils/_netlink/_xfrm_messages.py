# Copyright (c) routevpn.mesh contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to routevpn.mesh: NETLINK_XFRM messages on pyroute2's netlink base classes.

pyroute2 (0.7 and 0.9) knows the NETLINK_XFRM constant but has no message
classes for it, so the two dump replies used here are described from
<linux/xfrm.h>.  pyroute2 decodes ``fields`` one by one, each with its own
struct format and without C alignment, so every hole the C compiler leaves
is spelled out as an ``x`` pad field, trailing ones included: the
attributes start at the aligned end of the structure.  A unit test compares
these layouts with offsetof() and sizeof() from the C header.

Algorithm attributes (XFRMA_ALG_*) end in the key.  Their classes list only
the name and the length fields, so the key bytes are never decoded into a
value; callers copy what they need into plain dicts and drop the messages.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

try:
    from pyroute2.netlink import NETLINK_XFRM, nla, nla_base, nlmsg
    from pyroute2.netlink.nlsocket import Marshal, NetlinkSocket
except ImportError:
    # The module reports the missing library through _pyroute2_dep; the
    # classes below must still be definable so that this file imports.
    # Not plain object: it may not precede the xfrm_attributes mixin in an MRO.
    class _NoPyroute2(object):
        pass

    NETLINK_XFRM = 6
    nla = nla_base = nlmsg = Marshal = NetlinkSocket = _NoPyroute2

XFRM_MSG_NEWSA = 0x10
XFRM_MSG_GETSA = 0x12
XFRM_MSG_NEWPOLICY = 0x13
XFRM_MSG_DELPOLICY = 0x14
XFRM_MSG_GETPOLICY = 0x15

# struct xfrm_selector (56 bytes); xfrm_address_t is a 16-byte union.
SELECTOR_FIELDS = (
    ("sel_daddr", "16s"),
    ("sel_saddr", "16s"),
    ("sel_dport", ">H"),
    ("sel_dport_mask", ">H"),
    ("sel_sport", ">H"),
    ("sel_sport_mask", ">H"),
    ("sel_family", "H"),
    ("sel_prefixlen_d", "B"),
    ("sel_prefixlen_s", "B"),
    ("sel_proto", "B"),
    ("__sel_pad", "3x"),
    ("sel_ifindex", "i"),
    ("sel_user", "I"),
)

# struct xfrm_lifetime_cfg (64 bytes): the configured limits.
LIFETIME_CFG_FIELDS = (
    ("lft_soft_byte_limit", "Q"),
    ("lft_hard_byte_limit", "Q"),
    ("lft_soft_packet_limit", "Q"),
    ("lft_hard_packet_limit", "Q"),
    ("lft_soft_add_expires_seconds", "Q"),
    ("lft_hard_add_expires_seconds", "Q"),
    ("lft_soft_use_expires_seconds", "Q"),
    ("lft_hard_use_expires_seconds", "Q"),
)

# struct xfrm_lifetime_cur (32 bytes): the counters.
LIFETIME_CUR_FIELDS = (
    ("curlft_bytes", "Q"),
    ("curlft_packets", "Q"),
    ("curlft_add_time", "Q"),
    ("curlft_use_time", "Q"),
)

# XFRMA_* attribute numbers of <linux/xfrm.h> (enum xfrm_attr_type_t), in order.
# Unlisted ones (security contexts, migration, ...) stay undecoded.
XFRMA_NAMES = (
    "XFRMA_UNSPEC",
    "XFRMA_ALG_AUTH",
    "XFRMA_ALG_CRYPT",
    "XFRMA_ALG_COMP",
    "XFRMA_ENCAP",
    "XFRMA_TMPL",
    "XFRMA_SA",
    "XFRMA_POLICY",
    "XFRMA_SEC_CTX",
    "XFRMA_LTIME_VAL",
    "XFRMA_REPLAY_VAL",
    "XFRMA_REPLAY_THRESH",
    "XFRMA_ETIMER_THRESH",
    "XFRMA_SRCADDR",
    "XFRMA_COADDR",
    "XFRMA_LASTUSED",
    "XFRMA_POLICY_TYPE",
    "XFRMA_MIGRATE",
    "XFRMA_ALG_AEAD",
    "XFRMA_KMADDRESS",
    "XFRMA_ALG_AUTH_TRUNC",
    "XFRMA_MARK",
    "XFRMA_TFCPAD",
    "XFRMA_REPLAY_ESN_VAL",
    "XFRMA_SA_EXTRA_FLAGS",
    "XFRMA_PROTO",
    "XFRMA_ADDRESS_FILTER",
    "XFRMA_PAD",
    "XFRMA_OFFLOAD_DEV",
    "XFRMA_SET_MARK",
    "XFRMA_SET_MARK_MASK",
    "XFRMA_IF_ID",
)
_DECODED = {
    "XFRMA_ALG_AUTH": "xfrm_algo",
    "XFRMA_ALG_CRYPT": "xfrm_algo",
    "XFRMA_ALG_COMP": "xfrm_algo",
    "XFRMA_ENCAP": "xfrm_encap_tmpl",
    "XFRMA_TMPL": "xfrm_user_tmpl_array",
    "XFRMA_POLICY_TYPE": "xfrm_userpolicy_type",
    "XFRMA_ALG_AEAD": "xfrm_algo_aead",
    "XFRMA_ALG_AUTH_TRUNC": "xfrm_algo_auth",
    "XFRMA_MARK": "xfrm_mark",
    "XFRMA_SET_MARK": "uint32",
    "XFRMA_SET_MARK_MASK": "uint32",
    "XFRMA_IF_ID": "uint32",
}
XFRMA_MAP = tuple((number, name, _DECODED.get(name, "none")) for number, name in enumerate(XFRMA_NAMES))

ALG_NAME_FORMAT = "64s"

# struct xfrm_user_tmpl (64 bytes), XFRMA_TMPL is an array of them without attribute headers.
USER_TMPL_FIELDS = (
    ("id_daddr", "16s"),
    ("id_spi", ">I"),
    ("id_proto", "B"),
    ("__id_pad", "3x"),
    ("family", "H"),
    ("__family_pad", "2x"),
    ("saddr", "16s"),
    ("reqid", "I"),
    ("mode", "B"),
    ("share", "B"),
    ("optional", "B"),
    ("__mode_pad", "x"),
    ("aalgos", "I"),
    ("ealgos", "I"),
    ("calgos", "I"),
)
USER_TMPL_SIZE = 64


class xfrm_attributes(object):
    """The attribute classes both dump replies share (mixed into the message classes)."""

    class xfrm_mark(nla):
        # Not "value": pyroute2 would return that field alone as the attribute's value.
        fields = (("v", "I"), ("m", "I"))

    class xfrm_userpolicy_type(nla):
        fields = (("type", "B"), ("__pad", "x"), ("reserved1", "H"), ("reserved2", "B"), ("__tail_pad", "x"))

    class xfrm_encap_tmpl(nla):
        fields = (("encap_type", "H"), ("encap_sport", ">H"), ("encap_dport", ">H"), ("__pad", "2x"),
                  ("encap_oa", "16s"))

    # The key follows these fields: it is deliberately not a field.
    class xfrm_algo(nla):
        fields = (("alg_name", ALG_NAME_FORMAT), ("alg_key_len", "I"))

    class xfrm_algo_aead(nla):
        fields = (("alg_name", ALG_NAME_FORMAT), ("alg_key_len", "I"), ("alg_icv_len", "I"))

    class xfrm_algo_auth(nla):
        fields = (("alg_name", ALG_NAME_FORMAT), ("alg_key_len", "I"), ("alg_trunc_len", "I"))

    class xfrm_user_tmpl_array(nla):
        """XFRMA_TMPL: its value is a list of dicts, one per 64-byte xfrm_user_tmpl."""

        fields = ()

        def decode(self):
            nla.decode(self)
            templates = []
            offset = self.offset + 4
            while offset + USER_TMPL_SIZE <= self.offset + self.length:
                template = xfrm_user_tmpl(self.data, offset=offset)
                template.decode()
                templates.append(dict((name, template[name]) for name, _fmt in USER_TMPL_FIELDS
                                      if not name.startswith("__")))
                offset += USER_TMPL_SIZE
            self.value = templates


class xfrm_user_tmpl(nla_base):
    """One struct xfrm_user_tmpl; it has no attribute header of its own (nla_base: nla would drop one)."""

    header = None
    fields = USER_TMPL_FIELDS


class xfrm_userpolicy_info(nlmsg, xfrm_attributes):
    """XFRM_MSG_NEWPOLICY: struct xfrm_userpolicy_info (168 bytes), then attributes."""

    fields = SELECTOR_FIELDS + LIFETIME_CFG_FIELDS + LIFETIME_CUR_FIELDS + (
        ("priority", "I"),
        ("index", "I"),
        ("dir", "B"),
        ("action", "B"),
        ("flags", "B"),
        ("share", "B"),
        ("__tail_pad", "4x"),  # the structure holds u64s: its size rounds up to 8
    )
    nla_map = XFRMA_MAP


class xfrm_usersa_info(nlmsg, xfrm_attributes):
    """XFRM_MSG_NEWSA: struct xfrm_usersa_info (224 bytes), then attributes."""

    fields = SELECTOR_FIELDS + (
        ("id_daddr", "16s"),
        ("id_spi", ">I"),
        ("id_proto", "B"),
        ("__id_pad", "3x"),
        ("saddr", "16s"),
    ) + LIFETIME_CFG_FIELDS + LIFETIME_CUR_FIELDS + (
        ("stats_replay_window", "I"),
        ("stats_replay", "I"),
        ("stats_integrity_failed", "I"),
        ("seq", "I"),
        ("reqid", "I"),
        ("family", "H"),
        ("mode", "B"),
        ("replay_window", "B"),
        ("flags", "B"),
        ("__tail_pad", "7x"),
    )
    nla_map = XFRMA_MAP


class xfrm_userpolicy_id(nlmsg, xfrm_attributes):
    """XFRM_MSG_DELPOLICY: struct xfrm_userpolicy_id (64 bytes), then attributes (XFRMA_IF_ID, XFRMA_MARK)."""

    fields = SELECTOR_FIELDS + (
        ("index", "I"),
        ("dir", "B"),
        ("__tail_pad", "3x"),
    )
    nla_map = XFRMA_MAP


class xfrm_dump_request(nlmsg):
    """An XFRM_MSG_GETSA / GETPOLICY dump request: the kernel reads no body for a full dump."""

    fields = ()


class XfrmMarshal(Marshal):
    msg_map = {
        XFRM_MSG_NEWSA: xfrm_usersa_info,
        XFRM_MSG_NEWPOLICY: xfrm_userpolicy_info,
    }


class XfrmSocket(NetlinkSocket):
    """A NETLINK_XFRM socket of the namespace the calling thread is in when it is made."""

    def __init__(self, **kwargs):
        NetlinkSocket.__init__(self, family=NETLINK_XFRM, **kwargs)
        # 0.9 builds its Marshal in the asyncio core and refuses a plain
        # assignment afterwards; 0.7 has no set_marshal and takes one.
        set_marshal = getattr(self, "set_marshal", None)
        if set_marshal is not None:
            set_marshal(XfrmMarshal())
        else:
            self.marshal = XfrmMarshal()
