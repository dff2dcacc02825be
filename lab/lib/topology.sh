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
# shellcheck shell=bash disable=SC2034  # the settings are used by the sourcing scripts

LAB_SITES=${LAB_SITES:-3}
LAB_GATEWAYS=${LAB_GATEWAYS:-2}
# direct: PID 1 is lab/guest/host-init, which only runs sshd (the roles then
# start their daemons without systemd); systemd: every host boots its own
# systemd (PID 1 of its PID namespace).  direct is the default because under
# TCG nine systemd hosts made the lab several times slower: up in 288 s
# instead of 68 s, and mesh.yml had not finished its second role after 8 min
# (it takes 5.5 min in all with direct).
LAB_INIT=${LAB_INIT:-direct}
LAB_SSH_PORT_BASE=${LAB_SSH_PORT_BASE:-42200}

LAB_MGMT_NET=10.0.2
LAB_MGMT_PREFIXLEN=24
# 10.0.2.2 and .3 are QEMU's (gateway, DNS); .15 is its DHCP address, unused.
LAB_VM_OCTET=100
# The VM's NIC on that network, found by its address (its name depends on the bus).
LAB_VM_MAC=52:54:00:1a:b0:01

lab_check_topology() {
  [[ $LAB_SITES =~ ^[1-9]$ ]] || { echo "LAB_SITES must be 1..9, not '$LAB_SITES'" >&2; return 2; }
  [[ $LAB_GATEWAYS =~ ^[1-9]$ ]] || { echo "LAB_GATEWAYS must be 1..9, not '$LAB_GATEWAYS'" >&2; return 2; }
  [[ $LAB_INIT =~ ^(systemd|direct)$ ]] || { echo "LAB_INIT must be systemd or direct, not '$LAB_INIT'" >&2; return 2; }
}

lab_routers() {
  local s
  for ((s = 1; s <= LAB_SITES; s++)); do echo "r$s"; done
}

lab_gateways() {
  local s g
  for ((s = 1; s <= LAB_SITES; s++)); do
    for ((g = 1; g <= LAB_GATEWAYS; g++)); do echo "v$s-$g"; done
  done
}

lab_hosts() {
  lab_routers
  lab_gateways
}

# The management address's last octet, also the SSH port's offset:
# rS -> S0, vS-G -> SG (the gateway id).
lab_octet() {
  case $1 in
    vm) echo "$LAB_VM_OCTET" ;;
    r[1-9]) echo "${1#r}0" ;;
    v[1-9]-[1-9]) local sg=${1#v}; echo "${sg%-*}${sg#*-}" ;;
    *) echo "lab: no host '$1'" >&2; return 2 ;;
  esac
}

lab_site() {  # host -> site number
  case $1 in
    r*) echo "${1#r}" ;;
    v*) local sg=${1#v}; echo "${sg%-*}" ;;
  esac
}

lab_mgmt_address() { echo "$LAB_MGMT_NET.$(lab_octet "$1")"; }
lab_ssh_port() { echo $((LAB_SSH_PORT_BASE + $(lab_octet "$1"))); }
lab_public_address() { local sg=${1#v}; echo "2001:db8:${sg%-*}::${sg#*-}"; }
lab_private_prefix() { echo "2001:db8:a$1::/64"; }  # site number
lab_router_address() { echo "2001:db8:a$1::1"; }    # site number
