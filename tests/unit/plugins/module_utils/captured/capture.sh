#!/usr/bin/env bash
# Captures real swanctl/birdc/ip outputs for the health parser's tests (module_utils/_mesh/health.py).
# Run in a VM with Debian's kernel, e.g.:
#   vng --run /boot/vmlinuz-6.1.0-56-amd64 --disable-kvm --memory 2G --cpus 2 --rwdir OUT --exec "bash capture.sh OUT"
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
gw() { # ns priv me peer myid peerid ifname lan asn peerasn tr_me tr_peer
  local n=$1 p=$2 me=$3 peer=$4 myid=$5 peerid=$6 ifn=$7 lan=$8 asn=$9 pasn=${10} trm=${11} trp=${12}
  mkdir -p "$OUT/$n" "$RUN/$n"
  cat > "$OUT/$n/strongswan.conf" <<EOC
charon-systemd {
  install_routes = no
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
  ip netns exec "$n" env STRONGSWAN_CONF="$OUT/$n/strongswan.conf" /usr/sbin/charon-systemd > "$OUT/$n/charon.log" 2>&1 &
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
gw a ap 2001:db8:1::1 2001:db8:2::1 11 21 rv-21 2001:db8:a1::1/64 65001 65002 2001:db8:ff::190/127 2001:db8:ff::191
gw b bp 2001:db8:2::1 2001:db8:1::1 21 11 rv-11 2001:db8:a2::1/64 65002 65001 2001:db8:ff::191/127 2001:db8:ff::190
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
