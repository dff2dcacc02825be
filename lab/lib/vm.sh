# The VM's side of the lab, one host at a time: sourced (after topology.sh)
# by vm-main when it builds the lab, and by guest/reboot when a host comes
# back with a fresh network namespace.  The lab_wire_* functions print `ip
# -batch` lines; lab_start_host boots a host.
# shellcheck shell=bash

# The MAC address of the host's port N (0 mgmt0, 1 eth0, 2 eth1): fixed, as
# a NIC's is, so that a host that reboots (guest/reboot) comes back with the
# same addresses on the wire: QEMU's user network, which keeps the MAC it
# learnt for each management address and never asks again, and the other
# hosts' neighbour caches find it where it was.
lab_mac() { printf '02:00:1a:b0:%02x:%02x\n' "$2" "$(lab_octet "$1")"; }

# In the VM's own namespace: the host's network namespace and its management
# port, bridged with the VM's NIC (bridge mgmt).
lab_wire_vm() {
  local h=$1
  echo "netns add $h"
  echo "link add m-$h type veth peer name mgmt0 address $(lab_mac "$h" 0) netns $h"
  echo "link set m-$h master mgmt"
  echo "link set m-$h up"
}

# In the switches' namespace (lab-switch): the host's cables, plugged into
# the "internet" bridge and its site's LAN bridge.
lab_wire_switch() {
  local h=$1
  case $h in
    r*)
      echo "link add $h-eth0 type veth peer name eth0 address $(lab_mac "$h" 1) netns $h"
      echo "link set $h-eth0 master lan$(lab_site "$h")"
      echo "link set $h-eth0 up"
      ;;
    v*)
      echo "link add $h-eth0 type veth peer name eth0 address $(lab_mac "$h" 1) netns $h"
      echo "link set $h-eth0 master internet"
      echo "link set $h-eth0 up"
      echo "link add $h-eth1 type veth peer name eth1 address $(lab_mac "$h" 2) netns $h"
      echo "link set $h-eth1 master lan$(lab_site "$h")"
      echo "link set $h-eth1 up"
      ;;
    x*)
      # A peer the collection does not manage: the internet only (its LAN is
      # a dummy device the scenario makes).
      echo "link add $h-eth0 type veth peer name eth0 address $(lab_mac "$h" 1) netns $h"
      echo "link set $h-eth0 master internet"
      echo "link set $h-eth0 up"
      ;;
  esac
}

# In the host's namespace: what its network configuration would set at boot
# (addresses of mgmt0, the public address and on-link routes of a gateway,
# the private network of a router).
lab_wire_host() {
  local h=$1 site t nodad
  site=$(lab_site "$h")
  echo "link set lo up"
  # Management is IPv4 only: no link-local address for BIRD or NDP to see.
  echo "link set mgmt0 addrgenmode none"
  echo "address add $(lab_mgmt_address "$h")/$LAB_MGMT_PREFIXLEN dev mgmt0"
  echo "link set mgmt0 up"
  case $h in
    r*)
      echo "link set eth0 up"
      echo "link add dummy0 type dummy"
      echo "address add $(lab_router_address "$site")/64 dev dummy0 nodad"
      if [ "$LAB_PROFILE" = mixed ]; then
        echo "address add $(lab_router_address_v4 "$site")/24 dev dummy0"
        echo "address add $(lab_lan_address_v4 "$h") dev eth0"
      fi
      echo "link set dummy0 up"
      ;;
    v*)
      # mixed: one IPv4 segment, every gateway on-link; eth1's LAN address
      # is the inventory's (routevpn_private_interfaces), set by the mesh.
      nodad=" nodad"
      if [ "$LAB_PROFILE" = mixed ]; then nodad=; fi
      echo "address add $(lab_public_address "$h")/$(lab_public_prefixlen) dev eth0$nodad"
      echo "link set eth0 up"
      if [ "$LAB_PROFILE" != mixed ]; then
        # One shared segment: the other sites' public networks are on-link
        # (a route needs its device up).
        for ((t = 1; t <= LAB_SITES; t++)); do
          ((t == site)) || echo "route add 2001:db8:$t::/64 dev eth0"
        done
      fi
      echo "link set eth1 up"
      ;;
    x*)
      echo "address add $(lab_public_address "$h")/$(lab_public_prefixlen) dev eth0"
      echo "link set eth0 up"
      ;;
  esac
}

# lab_start_host HOST RWDIR: boots HOST in the background (host-boot in its
# network namespace, new mount, UTS, IPC, PID and cgroup namespaces) on its
# upper layer in /run/lab/hosts/HOST (prepared by the caller, and kept from
# one boot to the next: the host's disk).  The unshare process's pid goes to
# unshare.pid there; killing it ends the host.  The host's console is
# appended to RWDIR/hosts/HOST.console.
lab_start_host() {
  local h=$1 rw=$2 base=/run/lab/hosts/$1 init cgroup='' guest repo=''
  guest=$(cd "$(dirname "${BASH_SOURCE[0]}")/../guest" && pwd)
  init=$(lab_host_init "$h")
  if lab_pristine_gateway "$h"; then repo=${LAB_APT_REPO:?no apt repository for $h}; fi
  mkdir -p "$base/upper" "$base/work" "$base/root"
  if [ "$init" = systemd ]; then
    # A cgroup of its own (the host's cgroup namespace's root); what an
    # earlier boot's systemd left below it goes first.
    if [ -d "/sys/fs/cgroup/lab/$h" ]; then
      find "/sys/fs/cgroup/lab/$h" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
    fi
    mkdir -p "/sys/fs/cgroup/lab/$h"
    cgroup="echo \$\$ > /sys/fs/cgroup/lab/$h/cgroup.procs;"
  fi
  # shellcheck disable=SC2016
  setsid bash -c "$cgroup"' exec nsenter --net=/run/netns/$0 unshare --mount --uts --ipc --pid --cgroup --fork --kill-child -- "$@"' \
    "$h" "$guest/host-boot" "$h" "$init" "$(lab_host_root "$h")" "$(lab_host_unit "$h")" "$repo" \
    < /dev/null >> "$rw/hosts/$h.console" 2>&1 &
  echo $! > "$base/unshare.pid"
}
