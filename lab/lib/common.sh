# Shared by the lab's commands on this machine (lab/up, down, exec,
# ansible-ping): paths, the VM's state, and the files lab/up generates.
# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154  # lab, repo: set by the sourcing command; rw: used by it

build=$lab/build
rw=$build/vm  # shared read-write with the VM

die() { echo "${0##*/}: $*" >&2; exit 2; }
now() { date +%s.%N; }
# timing LABEL START: append "LABEL: N.Ns" to the timings file and say it.
timing() {
  local took
  took=$(awk -v a="$2" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}')
  echo "$1: ${took}s" | tee -a "$build/timings.txt"
}

lab_vm_running() {
  local pid
  pid=$(cat "$build/vng.pid" 2>/dev/null) || return 1
  kill -0 "$pid" 2>/dev/null
}

lab_ssh() { ssh -F "$build/ssh_config" "$@"; }

# Every host answers over SSH, in parallel; each keeps a master connection
# (ControlPersist), so that lab/exec and Ansible start from a warm socket.
# A connection closed at once is tried again for up to a minute: once, right
# after the VM said every sshd listened, all five hosts of a lab closed the
# first connection through QEMU's forwarded ports ("kex_exchange_identification:
# Connection closed by remote host").
lab_wait_ssh() {
  local h pids=() failed=0
  for h in $(lab_hosts); do
    (
      deadline=$((SECONDS + 60))
      until lab_ssh -o ConnectTimeout=60 "$h" true; do
        ((SECONDS < deadline)) || exit 1
        sleep 2
      done
    ) &
    pids+=($!)
  done
  for h in "${pids[@]}"; do wait "$h" || failed=1; done
  ((failed == 0)) || die "a host does not answer over SSH (lab/exec HOST true to see which)"
}

# The host's own files, copied by the VM above the shared root (the overlay's
# upper layer): identity, SSH keys, and the settings of its init.
lab_host_upper() {
  local h=$1 up=$build/hosts/$1/upper
  rm -rf "$up"
  mkdir -p "$up/etc/ssh/sshd_config.d" "$up/root/.ssh" "$up/etc/systemd/system" \
    "$up/etc/systemd/journald.conf.d" "$up/var/log"
  echo "$h" > "$up/etc/hostname"
  printf '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' "$h" > "$up/etc/hosts"
  od -An -N16 -tx1 /dev/urandom | tr -d ' \n' > "$up/etc/machine-id"
  echo >> "$up/etc/machine-id"
  # The machine's own fstab is not this host's.
  echo "# lab host $h: nothing to mount" > "$up/etc/fstab"
  install -m 0600 "$build/hosts/$h/ssh_host_ed25519_key" "$up/etc/ssh/ssh_host_ed25519_key"
  install -m 0644 "$build/hosts/$h/ssh_host_ed25519_key.pub" "$up/etc/ssh/ssh_host_ed25519_key.pub"
  # First match wins in sshd_config, and Debian's includes this directory first.
  cat > "$up/etc/ssh/sshd_config.d/00-lab.conf" <<EOF
# lab host $h (written by lab/up)
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
$(lab_sshd_pam "$h")
# Ansible opens a connection per fork and multiplexes sessions on it.
MaxStartups 100
MaxSessions 100
EOF
  chmod 0700 "$up/root/.ssh"
  # The host's init, in its own tree: a host on another root than this
  # machine's (lab_host_root) does not see the repository.
  install -D -m 0755 "$lab/guest/host-init" "$up/usr/local/sbin/lab-host-init"
  # root's own shell files: the machine's (pyenv, cargo, ...) are not a
  # gateway's, and sourced by every SSH command they cost seconds under TCG.
  lab_root_shell_files "$up/root"
  install -m 0600 "$build/id_ed25519.pub" "$up/root/.ssh/authorized_keys"
  # systemd's target for a lab host: sshd and what it depends on, nothing
  # else of the machine's enabled units (postgresql, bird, strongswan, ...).
  cat > "$up/etc/systemd/system/lab.target" <<EOF
[Unit]
Description=Lab host $h
Requires=basic.target
Wants=ssh.service
After=basic.target ssh.service
AllowIsolate=yes
EOF
  cat > "$up/etc/systemd/journald.conf.d/lab.conf" <<EOF
[Journal]
Storage=volatile
RuntimeMaxUse=16M
EOF
  if lab_pristine_gateway "$h"; then lab_pristine_upper "$h" "$up"; fi
}

lab_sshd_pam() {
  if lab_pristine_gateway "$1"; then
    cat <<EOF
# Debian's default: the pristine root has no pam_systemd (a recommended
# package, not installed), so PAM costs nothing here.
UsePAM yes
EOF
  else
    cat <<EOF
# With PAM, every login makes pam_systemd start logind, D-Bus and a user
# systemd on the host: seconds natively, far more under TCG, for nothing
# the roles use.  Without PAM, key logins for root work as before.
UsePAM no
EOF
  fi
}

# What a pristine gateway of LAB_PROFILE=systemd gets above its root (lab
# files only: the roles and the inventory know nothing of them).
lab_pristine_upper() {
  local h=$1 up=$2 unit
  # apt's only source: the local repository (scripts/build-apt-repo), which
  # host-boot mounts read-only at /srv/routevpn-apt; signed by its own key.
  mkdir -p "$up/etc/apt/sources.list.d" "$up/etc/apt/keyrings" "$up/etc/dpkg/dpkg.cfg.d"
  echo "# lab host $h: see sources.list.d/routevpn-lab.list" > "$up/etc/apt/sources.list"
  install -m 0644 "$LAB_APT_REPO/key.gpg" "$up/etc/apt/keyrings/routevpn-lab.gpg"
  echo "deb [signed-by=/etc/apt/keyrings/routevpn-lab.gpg] file:/srv/routevpn-apt ./" \
    > "$up/etc/apt/sources.list.d/routevpn-lab.list"
  # dpkg under TCG: no fsync per file (the upper layer is a tmpfs that dies
  # with the VM anyway), and no documentation, manual pages or translations
  # unpacked (what Debian's own container images leave out too).
  cat > "$up/etc/dpkg/dpkg.cfg.d/lab" <<EOF
# lab host $h (written by lab/up)
force-unsafe-io
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
  # Units of the image that have nothing to do in the lab, masked.  Under
  # TCG every process a unit starts costs seconds (binaries and libraries
  # read over the VM's 9p share, emulated CPU): three gateways booting
  # together took 60 s to reach their default target, about half of it in
  # the units below.  A lab host has no kernel, disk or console of its own
  # (the VM loads the modules and mounts the kernel's file systems): no
  # modprobe@ or modules-load, no remount of a root that is an overlay, no
  # hugepages, mqueue, debugfs, tracefs, configfs or fusectl mounts, no
  # pstore; no e2scrub or fstrim of a disk, no getty.  And timers whose jobs
  # would take the CPU and apt's or dpkg's lock in the middle of a test
  # (apt-daily's unattended download, the dpkg database backup).  What
  # stays is what a gateway's boot does for its own userspace: journald,
  # sysusers, sysctl (in the host's network namespace), tmpfiles, sshd, and
  # the mesh's units.
  for unit in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
    e2scrub_reap.service getty@tty1.service console-getty.service systemd-pstore.service \
    modprobe@.service systemd-modules-load.service systemd-remount-fs.service \
    dev-hugepages.mount dev-mqueue.mount sys-kernel-debug.mount sys-kernel-tracing.mount \
    sys-kernel-config.mount sys-fs-fuse-connections.mount systemd-journal-flush.service; do
    ln -sfn /dev/null "$up/etc/systemd/system/$unit"
  done
}

lab_vm_sshd_config() {
  local dir=$build/hosts/vm
  install -m 0600 "$build/id_ed25519.pub" "$dir/authorized_keys"
  lab_root_shell_files "$dir/root"
  cat > "$build/vm-sshd_config" <<EOF
# The VM's own sshd (lab/exec vm, a controller inside the VM).
ListenAddress $(lab_mgmt_address vm)
HostKey $dir/ssh_host_ed25519_key
AuthorizedKeysFile $dir/authorized_keys
# The key lives in the checkout, and a checkout under /tmp (mode 1777) made
# sshd refuse it ("bad ownership or modes for directory /tmp").
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
# vng's /etc marks root's password locked ("!"), and without PAM sshd then
# refuses even key logins; with PAM it only checks the account's expiry.
UsePAM yes
UseDNS no
PidFile /run/sshd-vm.pid
Subsystem sftp /usr/lib/openssh/sftp-server
MaxStartups 100
MaxSessions 100
EOF
}

lab_ssh_config() {
  local h
  {
    echo "# Written by lab/up: ssh -F lab/build/ssh_config HOST (hosts: vm $(lab_hosts | tr '\n' ' '))"
    for h in vm $(lab_hosts); do
      echo "Host $h"
      echo "  HostName 127.0.0.1"
      echo "  Port $(lab_ssh_port "$h")"
    done
    echo "Host *"
    echo "  User root"
    echo "  IdentityFile $build/id_ed25519"
    echo "  IdentitiesOnly yes"
    echo "  UserKnownHostsFile $build/known_hosts"
    echo "  StrictHostKeyChecking yes"
    echo "  ControlMaster auto"
    echo "  ControlPath $build/cm/%C"
    echo "  ControlPersist 30m"
    echo "  LogLevel ERROR"
  } > "$build/ssh_config"
}

# inventory.yml (controller here, through the forwarded ports) and
# inventory-vm.yml (controller inside the VM, straight to mgmt0): the same
# hosts and variables, only the way in differs.
lab_inventories() {
  lab_inventory here > "$build/inventory.yml"
  lab_inventory vm > "$build/inventory-vm.yml"
}

lab_inventory() {
  local where=$1 h s
  host_vars() {
    if [ "$where" = here ]; then
      echo "          ansible_host: 127.0.0.1"
      echo "          ansible_port: $(lab_ssh_port "$1")"
    else
      echo "          ansible_host: $(lab_mgmt_address "$1")"
    fi
    echo "          lab_mgmt_address: $(lab_mgmt_address "$1")"
    # How the lab booted the host (lab/lib/topology.sh, lab_host_init).
    [ "$1" = vm ] || echo "          lab_init: $(lab_host_init "$1")"
  }
  cat <<EOF
# Written by lab/up ($(date -u +%FT%TZ), LAB_PROFILE=$LAB_PROFILE); do not edit: lab/up rewrites it.
# The lab's hosts, reached over SSH $( [ "$where" = here ] && echo "through the VM's forwarded ports" || echo "on the VM's management network").
all:
  vars:
    ansible_user: root
    ansible_ssh_private_key_file: $build/id_ed25519
    ansible_ssh_common_args: -o UserKnownHostsFile=$build/known_hosts -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes
    ansible_python_interpreter: /usr/bin/python3
  children:
    routevpn_gateways:
      hosts:
EOF
  for h in $(lab_gateways); do
    s=$(lab_site "$h")
    echo "        $h:"
    host_vars "$h"
    echo "          routevpn_site: site$s"
    echo "          routevpn_gateway_id: $(lab_octet "$h")"
    echo "          routevpn_public_address: $(lab_public_address "$h")"
    echo "          routevpn_ike_daemon: $(lab_ike_daemon "$h")"
    echo "          routevpn_tunnel_type: $(lab_tunnel_type "$h")"
    if [ "$LAB_PROFILE" = mixed ]; then
      # The LAN's IPv4 address, for OSPFv2 with the site's router.
      echo "          routevpn_private_interfaces: [{name: eth1, addresses: [$(lab_lan_address_v4 "$h")]}]"
    else
      echo "          routevpn_private_interfaces: [eth1]"
    fi
  done
  cat <<EOF
      vars:
        routevpn_sites:
EOF
  for ((s = 1; s <= LAB_SITES; s++)); do
    echo "          site$s: {asn: $((65000 + s))}"
  done
  for h in $(lab_externals); do
    # A peer's site lists what it may announce: its LAN, a dummy device.
    s=$(lab_site "$h")
    echo "          site$s: {asn: $((64590 + s)), prefixes: [$(lab_private_prefix_v4 "$s"), $(lab_private_prefix "$s")]}"
  done
  echo "        routevpn_transfer_prefix_v6: 2001:db8:ff::/64"
  if [ "$LAB_PROFILE" = mixed ]; then
    cat <<EOF
        routevpn_transfer_prefix_v4: 169.254.64.0/18
        # Certificates from a CA on the controller, kept with the lab's keys.
        routevpn_auth: pubkey
        routevpn_pki_own_ca: true
        routevpn_pki_dir: $build/pki
        # BFD at 1 s x 3 instead of the default 300 ms x 3: this lab's
        # gateways share one VM that QEMU emulates (TCG).  CI's run of
        # 2026-12-07 saw the rekeyed link's BFD sessions go down in check 3,
        # while the same rekeys on a slower machine here dropped no packet
        # (xfrm_stat's XfrmInNoStates unchanged on both ends) and kept BFD up:
        # not reproduced, so the emulation is the likeliest cause.  Check 3
        # asks whether a rekey breaks the link, and a rekey that did would
        # keep it broken far longer than 3 s.  Failover at the default timers
        # is measured in the default lab (bench/results/bfd.md).
        routevpn_bfd_interval_ms: 1000
EOF
    for h in $(lab_externals); do
      cat <<EOF
        # $h: a peer the collection does not manage, as a cloud's gateway is
        # given: a 16-bit private ASN (its site's), the pre-shared key and
        # the /30 inside addresses of its tunnel to v1-1 given by its
        # "provider"; its tunnels to v2-1 (libreswan) and v3-1 (VTI) take
        # keys derived from the master and the mesh's transfer addresses.
        # The mesh's links keep their certificates.  Its generic sheet goes
        # to routevpn_external_peers_dir, and the scenario sets $h up from it.
        routevpn_psk_master: "{{ lookup('ansible.builtin.file', '$build/psk_master') }}"
        routevpn_external_peers_dir: $build/external-peers
        routevpn_external_peers:
          - name: $h
            platform: generic
            gateway_id: $(lab_octet "$h")
            site: site$(lab_site "$h")
            public_address: $(lab_public_address "$h")
            gateways: [v1-1, v2-1, v3-1]
            bfd: true
            tunnels:
              v1-1:
                psk: "{{ lookup('ansible.builtin.file', '$build/${h}_psk') }}"
                inside_v4: 169.254.254.2/30
                peer_inside_v4: 169.254.254.1
EOF
    done
  else
    cat <<EOF
        # Generated by lab/up, never printed; a real inventory reads it from a vault.
        routevpn_psk_master: "{{ lookup('ansible.builtin.file', '$build/psk_master') }}"
EOF
  fi
  cat <<EOF
    lab_vm:
      hosts:
        vm:
EOF
  host_vars vm
  cat <<EOF
          # The VM itself: its namespace lab-switch holds the segments' bridges,
          # where the lab's tests watch the wire (tcpdump) and pull a host's cables.
          lab_switch_netns: lab-switch
          # The VM's /root is read-only (vng): async jobs keep their state here.
          # The linear strategy honours it; Mitogen's async runner did not
          # (it still wrote /root/.ansible_async), see molecule/default/verify.yml.
          ansible_async_dir: /tmp/.ansible_async
EOF
  if [ -n "$(lab_externals)" ]; then
    echo "    lab_external_peers:"
    echo "      hosts:"
    for h in $(lab_externals); do
      echo "        $h:"
      host_vars "$h"
      echo "          lab_site: site$(lab_site "$h")"
      echo "          lab_private_address: $(lab_router_address "$(lab_site "$h")")"
      echo "          lab_private_address_v4: $(lab_router_address_v4 "$(lab_site "$h")")"
    done
  fi
  cat <<EOF
    lab_routers:
      hosts:
EOF
  for h in $(lab_routers); do
    s=$(lab_site "$h")
    echo "        $h:"
    host_vars "$h"
    echo "          lab_site: site$s"
    echo "          lab_router_id: 0.0.0.$s"
    echo "          lab_lan_interface: eth0"
    echo "          lab_private_interface: dummy0"
    echo "          lab_private_prefix: $(lab_private_prefix "$s")"
    echo "          lab_private_address: $(lab_router_address "$s")"
    if [ "$LAB_PROFILE" = mixed ]; then
      echo "          lab_private_prefix_v4: $(lab_private_prefix_v4 "$s")"
      echo "          lab_private_address_v4: $(lab_router_address_v4 "$s")"
    fi
  done
}

# ansible.cfg for a controller here; ansible-vm.cfg for one inside the VM,
# where the repository is read-only and sockets must live under /run.
lab_ansible_cfg() {
  lab_ansible_cfg_for "$build/inventory.yml" "$build/cm" > "$build/ansible.cfg"
  lab_ansible_cfg_for "$build/inventory-vm.yml" /run/lab/controller/cm > "$build/ansible-vm.cfg"
}

lab_ansible_cfg_for() {
  cat <<EOF
# Written by lab/up, for runs against the lab (ANSIBLE_CONFIG=this file).
[defaults]
inventory = $1
forks = 20
host_key_checking = True
interpreter_python = /usr/bin/python3
# Mitogen keeps one Python per host for the whole run: under TCG a module in
# a fresh interpreter costs seconds of CPU (see tests/requirements.txt).
strategy_plugins = $repo/build/ansible_mitogen/plugins/strategy
strategy = ${LAB_ANSIBLE_STRATEGY:-mitogen_linear}
# Starting that Python on a host under TCG takes longer than the default
# 10 s: about 95 s on an idle machine, and a new playbook's first task on
# six gateways timed out at 120 s while native tests shared the two CPUs.
timeout = 300

[ssh_connection]
pipelining = True
ssh_args = -o ControlMaster=auto -o ControlPersist=30m
control_path_dir = $2
EOF
}

# KVM only where tests/vm/run found it working (build/vm-kvm); TCG otherwise.
lab_kvm_works() {
  case ${VM_KVM:-auto} in
    yes) echo yes ;;
    no) echo no ;;
    *) if [ "$(sed -n 1p "$repo/build/vm-kvm" 2>/dev/null)" = yes ]; then echo yes; else echo no; fi ;;
  esac
}

# A plain Debian root's .bashrc and .profile, in DIR.
lab_root_shell_files() {
  install -d -m 0700 "$1"
  printf '%s\n' '# lab host: a plain root shell' 'PS1="\\h:\\w# "' > "$1/.bashrc"
  printf '%s\n' '# lab host' '[ -f ~/.bashrc ] && . ~/.bashrc' > "$1/.profile"
}
