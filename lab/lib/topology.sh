# The lab's topology, sourced by lab/up on the machine and by the VM's
# scripts, so that both derive every name and address the same way.
#
# Sites 1..LAB_SITES (at most 9), each with gateways 1..LAB_GATEWAYS (at most
# 9) and one private router.  Gateway vS-G has routevpn_gateway_id SG, public
# address 2001:db8:S::G/64 on eth0 (the "internet" segment) and eth1 on its
# site's LAN; router rS has eth0 on that LAN and 2001:db8:aS::1/64 on dummy0.
# Every host also has mgmt0, an IPv4-only management port on the VM's own
# network (QEMU's user network, 10.0.2.0/24): Ansible's SSH arrives there,
# through a port that QEMU forwards from 127.0.0.1 on the machine.
#
# LAB_PROFILE=mixed (molecule/mixed) is the same lab with one gateway at
# site 1 and two at sites 2 and 3, mixing what a fleet mixes: IPv4 on the "internet" (gateway vS-G at
# 203.0.113.SG/24), private networks in both families (router rS: 10.S.0.1/24
# and 2001:db8:aS::1/64 on dummy0, the site's LAN 10.S.255.0/24 for OSPFv2
# beside OSPFv3's link-local addresses), and per gateway another IKE daemon,
# tunnel type and root filesystem (lab_ike_daemon, lab_tunnel_type and
# lab_host_root below).
#
# The mixed lab with LAB_EXTERNAL=1 also has x4, a peer the collection does not manage
# (routevpn_external_peers): site 4's only gateway, on the "internet" at
# 203.0.113.49, with no router; the scenario sets it up from the generic
# sheet the mesh renders for it (lab/lib/external_peer.py), with plain
# strongSwan and BIRD.
#
# LAB_PROFILE=systemd (molecule/systemd) is the default lab's addressing with
# two sites, two gateways at site 1 and one at site 2, whose gateways boot
# systemd on a pristine Debian 12 root (scripts/build-gateway-root) and
# install their packages with apt from a local repository
# (scripts/build-apt-repo); the routers stay as in the default lab.
# shellcheck shell=bash disable=SC2034  # the settings are used by the sourcing scripts

LAB_PROFILE=${LAB_PROFILE:-default}
if [ "$LAB_PROFILE" = systemd ]; then
  LAB_SITES=${LAB_SITES:-2}
else
  LAB_SITES=${LAB_SITES:-3}
fi
if [ "$LAB_PROFILE" = mixed ] || [ "$LAB_PROFILE" = systemd ]; then
  LAB_GATEWAYS=${LAB_GATEWAYS:-1}
else
  LAB_GATEWAYS=${LAB_GATEWAYS:-2}
fi
# direct: PID 1 is lab/guest/host-init, which only runs sshd (the roles then
# start their daemons without systemd); systemd: every host boots its own
# systemd (PID 1 of its PID namespace).  direct is the default because under
# TCG nine systemd hosts made the lab several times slower: up in 288 s
# instead of 68 s, and mesh.yml had not finished its second role after 8 min
# (it takes 5.5 min in all with direct).  LAB_PROFILE=systemd boots its
# gateways with systemd whatever LAB_INIT says (lab_host_init).
LAB_INIT=${LAB_INIT:-direct}
# Below the kernel's ephemeral ports (ip_local_port_range, 32768-60999 by
# default): any outgoing connection of this machine may hold a port there,
# and QEMU then fails to bind that forward and exits before the guest boots
# (a CI run lost the systemd lab that way, in 7 s, at 43200).
LAB_SSH_PORT_BASE=${LAB_SSH_PORT_BASE:-22200}

LAB_MGMT_NET=10.0.2
LAB_MGMT_PREFIXLEN=24
# 10.0.2.2 and .3 are QEMU's (gateway, DNS); .15 is its DHCP address, unused.
LAB_VM_OCTET=100
# The VM's NIC on that network, found by its address (its name depends on the bus).
LAB_VM_MAC=52:54:00:1a:b0:01

lab_check_topology() {
  [[ $LAB_PROFILE =~ ^(default|mixed|systemd)$ ]] || { echo "LAB_PROFILE must be default, mixed or systemd, not '$LAB_PROFILE'" >&2; return 2; }
  [[ $LAB_SITES =~ ^[1-9]$ ]] || { echo "LAB_SITES must be 1..9, not '$LAB_SITES'" >&2; return 2; }
  [[ $LAB_GATEWAYS =~ ^[1-9]$ ]] || { echo "LAB_GATEWAYS must be 1..9, not '$LAB_GATEWAYS'" >&2; return 2; }
  [[ $LAB_INIT =~ ^(systemd|direct)$ ]] || { echo "LAB_INIT must be systemd or direct, not '$LAB_INIT'" >&2; return 2; }
}

lab_routers() {
  local s
  for ((s = 1; s <= LAB_SITES; s++)); do echo "r$s"; done
}

# Gateways per site: LAB_GATEWAYS, but sites 2 and 3 of the mixed lab have
# two, so that libreswan meets libreswan across sites, and site 1 of the
# systemd lab has two, so that one of them can reboot while the other
# carries the site's traffic.
lab_site_gateways() {
  if [ "$LAB_PROFILE" = mixed ] && [[ $1 == [23] ]] && ((LAB_GATEWAYS < 2)); then echo 2
  elif [ "$LAB_PROFILE" = systemd ] && [ "$1" = 1 ] && ((LAB_GATEWAYS < 2)); then echo 2
  else echo "$LAB_GATEWAYS"; fi
}

lab_gateways() {
  local s g
  for ((s = 1; s <= LAB_SITES; s++)); do
    for ((g = 1; g <= $(lab_site_gateways "$s"); g++)); do echo "v$s-$g"; done
  done
}

# Peers the collection does not manage: xS, the only gateway of site S.
# Only with LAB_EXTERNAL=1 until molecule/mixed runs its checks (see
# molecule/mixed/external-peer.yml): off, the lab is as before.
lab_externals() {
  if [ "$LAB_PROFILE" = mixed ] && [ "${LAB_EXTERNAL:-0}" = 1 ]; then echo "x$((LAB_SITES + 1))"; fi
}

lab_hosts() {
  lab_routers
  lab_gateways
  lab_externals
}

# The management address's last octet, also the SSH port's offset:
# rS -> S0, vS-G -> SG (the gateway id), xS -> S9 (the external peer's gateway_id).
lab_octet() {
  case $1 in
    vm) echo "$LAB_VM_OCTET" ;;
    r[1-9]) echo "${1#r}0" ;;
    v[1-9]-[1-9]) local sg=${1#v}; echo "${sg%-*}${sg#*-}" ;;
    x[1-9]) echo "${1#x}9" ;;
    *) echo "lab: no host '$1'" >&2; return 2 ;;
  esac
}

lab_site() {  # host -> site number
  case $1 in
    r*) echo "${1#r}" ;;
    v*) local sg=${1#v}; echo "${sg%-*}" ;;
    x*) echo "${1#x}" ;;
  esac
}

lab_mgmt_address() { echo "$LAB_MGMT_NET.$(lab_octet "$1")"; }
lab_ssh_port() { echo $((LAB_SSH_PORT_BASE + $(lab_octet "$1"))); }
# The gateway's address on the "internet" (its IKE endpoint) and its length.
lab_public_address() {
  local sg=${1#v}
  if [ "$LAB_PROFILE" = mixed ]; then echo "203.0.113.$(lab_octet "$1")"; else echo "2001:db8:${sg%-*}::${sg#*-}"; fi
}
lab_public_prefixlen() { if [ "$LAB_PROFILE" = mixed ]; then echo 24; else echo 64; fi; }
lab_private_prefix() { echo "2001:db8:a$1::/64"; }  # site number
lab_router_address() { echo "2001:db8:a$1::1"; }    # site number
# IPv4 of the private side (LAB_PROFILE=mixed only): the router's network,
# and the site's LAN, where the gateway vS-G is 10.S.255.G and the router .254.
lab_private_prefix_v4() { echo "10.$1.0.0/24"; }    # site number
lab_router_address_v4() { echo "10.$1.0.1"; }       # site number
lab_lan_address_v4() {
  case $1 in
    r*) echo "10.$(lab_site "$1").255.254/24" ;;
    v*) local sg=${1#v}; echo "10.${sg%-*}.255.${sg#*-}/24" ;;
  esac
}
# Per-gateway choices of LAB_PROFILE=mixed: v1-1 strongSwan with XFRM
# interfaces; v2-1 libreswan 5.2 with XFRM interfaces (Debian 13); v2-2
# libreswan 4.10 with VTI devices (Debian 12); v3-1 strongSwan with VTI
# devices; v3-2 libreswan 5.2 with VTI devices (Debian 13); all with
# certificates.  The default lab is strongSwan with XFRM interfaces everywhere.
lab_ike_daemon() {
  if [ "$LAB_PROFILE" = mixed ] && [[ $1 == v2-* || $1 == v3-2 ]]; then echo libreswan; else echo strongswan; fi
}
lab_tunnel_type() {
  if [ "$LAB_PROFILE" = mixed ] && [[ $1 == v3-* || $1 == v2-2 ]]; then echo vti; else echo xfrm; fi
}
# The Debian release of a libreswan gateway's own root (scripts/build-libreswan-root
# --suite), or nothing for a host on this machine's root (Debian 12, with
# strongSwan): Debian's libreswan conflicts with strongSwan, and XFRM
# interfaces in the private namespace need libreswan 5.2 (Debian 13).  v2-2
# is the one libreswan 4.10 gateway.
lab_host_suite() {
  if [[ $1 == v* ]] && [ "$(lab_ike_daemon "$1")" = libreswan ]; then
    if [ "$1" = v2-2 ]; then echo bookworm; else echo trixie; fi
  fi
}
# A gateway of the systemd lab: pristine root, systemd, packages from apt.
lab_pristine_gateway() {
  [ "$LAB_PROFILE" = systemd ] && [[ $1 == v* ]]
}
# The root filesystem a host boots on (its overlay's lower layer): lab/up
# puts each suite's root in LAB_ROOT_<suite>, and the pristine gateway root
# (scripts/build-gateway-root) in LAB_ROOT_gateway.
lab_host_root() {
  local suite
  if lab_pristine_gateway "$1"; then echo "${LAB_ROOT_gateway:?no pristine gateway root}"; return; fi
  suite=$(lab_host_suite "$1")
  if [ -z "$suite" ]; then echo /; else local var=LAB_ROOT_$suite; echo "${!var:?no root for $suite}"; fi
}
# The host's init: systemd for the systemd lab's gateways, else LAB_INIT.
lab_host_init() {
  if lab_pristine_gateway "$1"; then echo systemd; else echo "$LAB_INIT"; fi
}
# The unit systemd boots: a pristine gateway boots its default target, as a
# real one does (the roles' units are WantedBy=multi-user.target); a host on
# this machine's root boots lab.target (sshd only: the machine's own enabled
# units, postgresql, bird, strongswan ..., are not a lab host's).
lab_host_unit() {
  if lab_pristine_gateway "$1"; then echo default.target; else echo lab.target; fi
}
