#!/usr/bin/env bash
# Captures real swanctl/birdc/ip outputs and kernel SAs for the health parser's tests (module_utils/_mesh/health.py).
# Run in a VM with Debian's kernel, from the repository (the xfrm dumps import the collection), e.g.:
#   tests/vm/run --out DIR bash tests/unit/plugins/module_utils/captured/capture.sh DIR   (about 13 min under TCG)
# The test files are copies of some of DIR's, from a run (2026-12) of this script as it is but for two
# edits that change no capture: step twoike was named undup, and a snapshot right after the refused
# duplicate CHILD_SA (the same SAs as pair-up) was taken and dropped.  The older files (swanctl-*.raw,
# birdc-*.txt, routes*.json, xfrm-policy.txt) come from an earlier run; a new run rewrites them with new SPIs.
set -uo pipefail
OUT=$1; RUN=/run/cap; mkdir -p "$OUT" "$RUN"
modprobe xfrm_interface; modprobe esp4; modprobe esp6
ip netns add a; ip netns add b; ip netns add ap; ip netns add bp
ip link add va type veth peer name vb
ip link set va netns a; ip link set vb netns b
ip -n a addr add 2001:db8:1::1/64 dev va nodad
ip -n b addr add 2001:db8:2::1/64 dev vb nodad
for n in a b ap bp; do ip -n $n link set lo up; done
ip -n a link set va up; ip -n b link set vb up
ip -n a route add 2001:db8:2::/64 dev va; ip -n b route add 2001:db8:1::/64 dev vb
ip netns exec a ping -6 -c1 -W3 2001:db8:2::1 | tail -1
charon() { # ns: start charon in it (again)
  ip netns exec "$1" env STRONGSWAN_CONF="$OUT/$1/strongswan.conf" /usr/sbin/charon-systemd >> "$OUT/$1/charon.log" 2>&1 &
}
gw() { # ns priv me peer myid peerid ifname lan asn peerasn tr_me tr_peer reuse_ikesa
  local n=$1 p=$2 me=$3 peer=$4 myid=$5 peerid=$6 ifn=$7 lan=$8 asn=$9 pasn=${10} trm=${11} trp=${12} reuse=${13}
  mkdir -p "$OUT/$n" "$RUN/$n"
  cat > "$OUT/$n/strongswan.conf" <<EOC
charon-systemd {
  install_routes = no
  reuse_ikesa = $reuse
  plugins { vici { socket = unix://$RUN/$n/charon.vici } }
  filelog { stderr { default = 1 } }
}
EOC
  cat > "$OUT/$n/swanctl.conf" <<EOC
connections {
  $ifn {
    local_addrs = $me
    remote_addrs = $peer
    version = 2
    mobike = no
    proposals = aes256gcm16-prfsha384-ecp384
    local {
      auth = psk
      id = $myid
    }
    remote {
      auth = psk
      id = $peerid
    }
    if_id_in = 4296
    if_id_out = 4296
    children {
      $ifn {
        local_ts = 0.0.0.0/0,::/0
        remote_ts = 0.0.0.0/0,::/0
        esp_proposals = aes256gcm16-ecp384
        start_action = trap
      }
    }
  }
}
secrets {
  ike-1 {
    id-a = 11
    id-b = 21
    secret = "0123456789abcdef0123456789abcdef"
  }
}
EOC
  charon "$n"
  ip -n "$n" link add "$ifn" type xfrm dev lo if_id 4296
  ip -n "$n" link set "$ifn" netns "$p"
  ip -n "$p" addr add "$trm" dev "$ifn"
  ip -n "$p" link set "$ifn" up
  ip -n "$p" link add lan0 type veth peer name lan1
  ip -n "$p" addr add "$lan" dev lan0 nodad; ip -n "$p" link set lan0 up; ip -n "$p" link set lan1 up
  cat > "$OUT/$n/bird.conf" <<EOC
router id 0.0.0.$myid;
protocol device { }
protocol direct { ipv6; interface "lan0"; }
protocol kernel { ipv6 { import none; export where source = RTS_BGP; }; merge paths on; }
protocol bgp '$ifn' {
  local ${trm%/*} as $asn; neighbor $trp as $pasn; hold time 6; error wait time 1,5;
  ipv6 { import all; export where source = RTS_DEVICE; };
}
EOC
}
gw a ap 2001:db8:1::1 2001:db8:2::1 11 21 rv-21 2001:db8:a1::1/64 65001 65002 2001:db8:ff::190/127 2001:db8:ff::191 yes
gw b bp 2001:db8:2::1 2001:db8:1::1 21 11 rv-11 2001:db8:a2::1/64 65002 65001 2001:db8:ff::191/127 2001:db8:ff::190 no
for _ in $(seq 90); do [ -S $RUN/a/charon.vici ] && [ -S $RUN/b/charon.vici ] && break; sleep 1; done
for n in a b; do ip netns exec $n swanctl --load-all --file "$OUT/$n/swanctl.conf" --uri unix://$RUN/$n/charon.vici; done
# Before any SA: trap policies only
ip netns exec a swanctl --list-sas --raw --uri unix://$RUN/a/charon.vici > "$OUT"/swanctl-none.raw
ip netns exec a swanctl --initiate --child rv-21 --uri unix://$RUN/a/charon.vici | tail -3
ip netns exec a swanctl --list-sas --raw --uri unix://$RUN/a/charon.vici > "$OUT"/swanctl-established.raw
ip netns exec a swanctl --list-sas --uri unix://$RUN/a/charon.vici > "$OUT"/swanctl-established.txt
ip netns exec a swanctl --list-sas --pretty --uri unix://$RUN/a/charon.vici > "$OUT"/swanctl-established.pretty
ip netns exec a swanctl --list-conns --raw --uri unix://$RUN/a/charon.vici > "$OUT"/swanctl-conns.raw
ip -n a xfrm policy > "$OUT"/xfrm-policy.txt
for n in a b; do p=${n}p; ip netns exec $p bird -c "$OUT/$n/bird.conf" -s $RUN/$n/bird.ctl -P $RUN/$n/bird.pid; done
for _ in $(seq 60); do ip netns exec ap birdc -s $RUN/a/bird.ctl show protocols | grep -q Established && break; sleep 1; done
sleep 3
ip netns exec ap birdc -s $RUN/a/bird.ctl show protocols all > "$OUT"/birdc-established.txt
ip netns exec ap birdc -s $RUN/a/bird.ctl show protocols > "$OUT"/birdc-short.txt
ip -j -n ap -6 route show > "$OUT"/routes6.json
ip -j -n ap -4 route show > "$OUT"/routes4.json
ip -n ap -6 route show > "$OUT"/routes6.txt
ip netns exec ap ping -c2 -I 2001:db8:a1::1 2001:db8:a2::1 | tail -2
# -- Both ends of the link, as playbooks/verify.yml reads them (a is v1-1, b is v2-1) ---------------------
# pair-STEP-GW.swanctl.raw/.pretty: swanctl --list-sas; pair-STEP-GW.xfrm.json: the xfrm_policy_facts
# backend's dump (policies and states, never keys); NAME.result.json: a command's rc, stdout and stderr
# as Ansible's command module registers them (trailing newlines stripped).
result() { # name command...: run it, keep rc/stdout/stderr
  local name=$1
  shift
  "$@" > "$RUN/stdout" 2> "$RUN/stderr"
  python3 - "$?" "$RUN/stdout" "$RUN/stderr" "$@" > "$OUT/$name.result.json" <<'EOF'
import json, sys
rc, out, err, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
read = lambda path: open(path, encoding="utf-8", errors="replace").read().rstrip("\r\n")
json.dump({"cmd": cmd, "rc": rc, "stdout": read(out), "stderr": read(err)}, sys.stdout, indent=1)
EOF
}
uri() { echo "unix://$RUN/$1/charon.vici"; }
sas() { # ns file
  ip netns exec "$1" swanctl --list-sas --raw --uri "$(uri "$1")" > "$OUT/$2.swanctl.raw" 2> /dev/null
  ip netns exec "$1" swanctl --list-sas --pretty --uri "$(uri "$1")" > "$OUT/$2.swanctl.pretty" 2> /dev/null
}
xfrm() { # ns file
  python3 - "$1" > "$OUT/$2.xfrm.json" <<'EOF'
import json, sys
from ansible_collections.routevpn.mesh.plugins.module_utils._netlink._xfrm_dump import read_xfrm
json.dump(read_xfrm(sys.argv[1]), sys.stdout, indent=1, sort_keys=True)
EOF
}
snap() { # step: both ends' SAs and kernel states
  sas a "pair-$1-v1-1"; sas b "pair-$1-v2-1"
  xfrm a "pair-$1-v1-1"; xfrm b "pair-$1-v2-1"
  echo "== $1"; ip -n a xfrm state | grep -E '^src|if_id'; ip -n b xfrm state | grep -E '^src|if_id'
}
ids() { # ns kind(ike|child) name: unique ids of those IKE_SAs or CHILD_SAs, oldest first
  ip netns exec "$1" swanctl --list-sas --raw --uri "$(uri "$1")" 2> /dev/null | python3 -c '
import sys
from ansible_collections.routevpn.mesh.plugins.module_utils._mesh.health import parse_vici_dump
kind, name = sys.argv[1:]
for _event, message in parse_vici_dump(sys.stdin.read()):
    for conn, sa in message.items():
        if kind == "ike" and conn == name:
            print(sa["uniqueid"])
        for child in (sa.get("child-sas") or {}).values() if kind == "child" else ():
            if child.get("name") == name:
                print(child["uniqueid"])' "$2" "$3" | sort -n
}
ip netns exec ap ping -c5 -i 0.2 -I 2001:db8:a1::1 2001:db8:a2::1 | tail -1
snap up
# a asks for a second CHILD_SA in its IKE_SA: charon 5.9.8 refuses ("not establishing CHILD_SA rv-21{5}
# due to existing duplicate {2}").  Then a's CHILD_SA is terminated, and b initiates while BGP's next
# packet hits b's trap; b has reuse_ikesa = no and sends no INITIAL_CONTACT while it has an IKE_SA with a,
# so each makes an IKE_SA of its own: pair-dupike, on both ends three IKE_SAs (the first without a
# CHILD_SA) and two INSTALLED CHILD_SAs.  pair-twoike: b's newest IKE_SA terminated, two are left.
ip netns exec a swanctl --initiate --child rv-21 --uri "$(uri a)" | tail -1
ip netns exec a swanctl --terminate --child-id "$(ids a child rv-21 | tail -1)" --uri "$(uri a)" | tail -1
ip netns exec b swanctl --initiate --child rv-11 --uri "$(uri b)" | tail -1
snap dupike
ip netns exec b swanctl --terminate --ike-id "$(ids b ike rv-11 | tail -1)" --uri "$(uri b)" | tail -1
snap twoike
# charon on a killed (-9): b still holds its IKE_SAs (no DPD here), a's kernel keeps the SAs and the
# socket file stays (pair-killed-run-dir.txt): swanctl is refused; a socket path that is not there.
ip netns pids a | xargs -r kill -9
sleep 3
ls -l "$RUN/a/" > "$OUT/pair-killed-run-dir.txt"
snap killed
result swanctl-refused ip netns exec a swanctl --list-sas --pretty --uri "$(uri a)"
result swanctl-missing ip netns exec a swanctl --list-sas --pretty --uri "unix://$RUN/a/none.vici"
result swanctl-default-missing ip netns exec a swanctl --list-sas --pretty
# charon started again on a: it does not flush the SAs its predecessor left in the kernel
# (pair-restarted).  a initiates: b takes the INITIAL_CONTACT and drops its old IKE_SAs and their SAs;
# a's kernel keeps the dead charon's pair beside the new one (pair-reinitiated).
charon a
for _ in $(seq 60); do ip netns exec a swanctl --stats --uri "$(uri a)" > /dev/null 2>&1 && break; sleep 1; done
ip netns exec a swanctl --load-all --file "$OUT/a/swanctl.conf" --uri "$(uri a)" > /dev/null 2>&1
snap restarted
ip netns exec a swanctl --initiate --child rv-21 --uri "$(uri a)" | tail -1
sleep 2
snap reinitiated
# BIRD killed (-9) on a: its socket stays and refuses; a socket that is not there; no namespace.
kill -9 "$(cat "$RUN/a/bird.pid")"; sleep 1
result birdc-refused ip netns exec ap birdc -s "$RUN/a/bird.ctl" show protocols all
result birdc-missing ip netns exec ap birdc -s "$RUN/a/none.ctl" show protocols all
result birdc-no-netns ip netns exec nonexistent birdc -s "$RUN/a/bird.ctl" show protocols all
result routes-no-netns ip -j -6 -n nonexistent route show
# Down states: stop BIRD on b, wait for hold time
kill "$(cat "$RUN/b/bird.pid")"; sleep 8
ip netns exec ap birdc -s $RUN/a/bird.ctl show protocols all > "$OUT"/birdc-down.txt
ip -j -n ap -6 route show > "$OUT"/routes6-down.json
# IKE gone: terminate and list; then initiate towards a dead peer (CONNECTING)
ip netns exec a swanctl --terminate --ike rv-21 --uri unix://$RUN/a/charon.vici | tail -1
ip netns exec a swanctl --list-sas --raw --uri unix://$RUN/a/charon.vici > "$OUT"/swanctl-terminated.raw
kill $(pgrep -f "STRONGSWAN_CONF" ) 2>/dev/null
ip netns pids b | xargs -r kill
sleep 1
ip netns exec a swanctl --initiate --ike rv-21 --timeout 3 --uri unix://$RUN/a/charon.vici | tail -1
ip netns exec a swanctl --list-sas --raw --uri unix://$RUN/a/charon.vici > "$OUT"/swanctl-connecting.raw
ip netns exec a swanctl --list-sas --pretty --uri unix://$RUN/a/charon.vici > "$OUT"/swanctl-connecting.pretty
echo "done" > "$OUT"/done
