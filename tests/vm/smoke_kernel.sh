#!/usr/bin/env bash
# Helpers run only through check() and trap, which shellcheck cannot follow.
# shellcheck disable=SC2317
# Kernel smoke test: does this kernel carry route-based IPsec at all?
# Needs none of the collection (only iproute2 and ping), so that CI can tell
# "the VM or its kernel is broken" from "the collection is broken".
#
#   tests/vm/run smoke                    inside the VM (the usual way)
#   bash tests/vm/smoke_kernel.sh         on any root shell with such a kernel
#
# Packets, not just objects: two namespaces joined by veth, hand-keyed ESP SAs
# and policies (no IKE daemon), and a ping through
#   1. an XFRM interface over IPv4 (esp4, xfrm_interface, if_id binding),
#   2. an XFRM interface over IPv6 (esp6),
#   3. a VTI over IPv4 (ip_vti, mark binding),
# then a vti6 device is created.  Each check prints "ok N - ..." or
# "not ok N - ..."; the exit status is the number of failed checks.
# The keys below are throw-away test values; no command here prints SAs.
set -u
PATH=/usr/sbin:/sbin:$PATH
run=smoke$$
a=$run-a
b=$run-b
failed=0
n=0

check() { # description command...
  local what=$1
  shift
  n=$((n + 1))
  if "$@" >"/tmp/$run.out" 2>&1; then
    echo "ok $n - $what"
  else
    echo "not ok $n - $what"
    sed 's/^/#   /' "/tmp/$run.out"
    failed=$((failed + 1))
  fi
}
cleanup() {
  ip netns del "$a" 2>/dev/null
  ip netns del "$b" 2>/dev/null
  rm -f "/tmp/$run.out"
}
trap cleanup EXIT

echo "# kernel $(uname -r)"
# Module state is a diagnostic only; the checks below are the verdict.
for m in xfrm_user xfrm_interface ip_vti ip6_vti esp4 esp6 veth; do
  if modprobe -q "$m" 2>/dev/null && [ -d "/sys/module/$m" ]; then
    echo "# module $m: loaded"
  else
    echo "# module $m: not loadable (built in, or missing)"
  fi
done

ip netns add "$a"
ip netns add "$b"
ip link add va netns "$a" type veth peer name vb netns "$b"
for ns in "$a" "$b"; do
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "v${ns##*-}" up
  # VTI's own policy check would drop the decrypted packets (as strongSwan's docs say).
  ip netns exec "$ns" sysctl -qw net.ipv4.conf.default.disable_policy=1
done
ip -n "$a" addr add 192.0.2.1/24 dev va
ip -n "$b" addr add 192.0.2.2/24 dev vb
ip -n "$a" addr add 2001:db8::1/64 dev va nodad
ip -n "$b" addr add 2001:db8::2/64 dev vb nodad

key() { printf '0x%040x' "$1"; } # 128-bit AES key + 32-bit salt

# sa NS SRC DST SPI BINDING...: one ESP SA in tunnel mode.
sa() {
  local ns=$1 src=$2 dst=$3 spi=$4
  shift 4
  ip -n "$ns" xfrm state add src "$src" dst "$dst" proto esp spi "$spi" reqid "$spi" mode tunnel \
    aead 'rfc4106(gcm(aes))' "$(key "$spi")" 128 "$@"
}
# policy NS DIR SRC DST SPI BINDING...: a catch-all policy (for the inner family
# in $inner) using that SA's reqid.
policy() {
  local ns=$1 dir=$2 src=$3 dst=$4 spi=$5
  shift 5
  ip -n "$ns" xfrm policy add src "$inner" dst "$inner" dir "$dir" "$@" \
    tmpl src "$src" dst "$dst" proto esp reqid "$spi" mode tunnel
}
# tunnel_pair LOCAL_A LOCAL_B SPI_AB SPI_BA BINDING...: SAs and policies on both sides.
tunnel_pair() {
  local la=$1 lb=$2 ab=$3 ba=$4
  shift 4
  sa "$a" "$la" "$lb" "$ab" "$@" && sa "$a" "$lb" "$la" "$ba" "$@" &&
    sa "$b" "$la" "$lb" "$ab" "$@" && sa "$b" "$lb" "$la" "$ba" "$@" &&
    policy "$a" out "$la" "$lb" "$ab" "$@" && policy "$a" in "$lb" "$la" "$ba" "$@" &&
    policy "$b" out "$lb" "$la" "$ba" "$@" && policy "$b" in "$la" "$lb" "$ab" "$@"
}
# packets NS SRC DST SPI [mark M]: the SA counted traffic (grep keeps the key lines out of the log).
packets() {
  ip -n "$1" -s xfrm state get src "$2" dst "$3" proto esp spi "$4" "${@:5}" |
    grep -E '^[[:space:]]+[0-9]+\(bytes\), [0-9]+\(packets\)' | grep -qv ' 0(packets)'
}
# up NS DEV ADDRESS: errors are left to the next check, which names the missing device.
# ADDRESS may carry flags ("ADDR nodad"), hence unquoted.
# shellcheck disable=SC2086
up() { ip -n "$1" addr add $3 dev "$2" 2>/dev/null && ip -n "$1" link set "$2" up 2>/dev/null; }
ping_over() { ip netns exec "$a" ping -c 2 -W 3 "$@"; }

# 1. XFRM interface, IPv4 underlay.
inner=0.0.0.0/0
check "xfrm interface created (if_id 41)" \
  eval "ip -n $a link add xi4 type xfrm dev va if_id 41 && ip -n $b link add xi4 type xfrm dev vb if_id 41"
check "esp4 SAs and policies with if_id 41" tunnel_pair 192.0.2.1 192.0.2.2 0x141 0x241 if_id 41
up "$a" xi4 10.41.0.1/30
up "$b" xi4 10.41.0.2/30
check "ping through the xfrm interface over IPv4" ping_over 10.41.0.2
check "esp4 SA counted the packets" packets "$a" 192.0.2.1 192.0.2.2 0x141

# 2. XFRM interface, IPv6 underlay and IPv6 inside (the mesh's usual transfer /127).
inner=::/0
check "xfrm interface created (if_id 61)" \
  eval "ip -n $a link add xi6 type xfrm dev va if_id 61 && ip -n $b link add xi6 type xfrm dev vb if_id 61"
check "esp6 SAs and policies with if_id 61" tunnel_pair 2001:db8::1 2001:db8::2 0x161 0x261 if_id 61
up "$a" xi6 "2001:db8:61::/127 nodad"
up "$b" xi6 "2001:db8:61::1/127 nodad"
check "ping through the xfrm interface over IPv6" ping_over 2001:db8:61::1
check "esp6 SA counted the packets" packets "$a" 2001:db8::1 2001:db8::2 0x161

# 3. VTI, IPv4: the SAs and policies are bound by mark instead of if_id.
inner=0.0.0.0/0
ip -n "$a" addr add 192.0.2.11/24 dev va
ip -n "$b" addr add 192.0.2.12/24 dev vb
check "vti created (key 7)" \
  eval "ip -n $a link add vti7 type vti local 192.0.2.11 remote 192.0.2.12 key 7 &&
        ip -n $b link add vti7 type vti local 192.0.2.12 remote 192.0.2.11 key 7"
check "esp4 SAs and policies with mark 7" tunnel_pair 192.0.2.11 192.0.2.12 0x107 0x207 mark 7
up "$a" vti7 10.7.0.1/30
up "$b" vti7 10.7.0.2/30
check "ping through the vti" ping_over 10.7.0.2
check "vti SA counted the packets" packets "$a" 192.0.2.11 192.0.2.12 0x107 mark 7

# 4. vti6: the device only.
check "vti6 created (key 9)" ip -n "$a" link add vti9 type vti6 local 2001:db8::1 remote 2001:db8::2 key 9

echo "1..$n"
echo "# $failed of $n checks failed"
exit "$failed"
