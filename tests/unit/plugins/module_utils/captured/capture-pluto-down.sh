#!/usr/bin/env bash
# Captures what libreswan's whack says when pluto is not running, for the gateway problems of
# module_utils/_mesh/health.py: no control socket, and a socket nobody listens on (pluto killed -9).
# Natively (whack only connects to a socket), with the libreswan trees the role tests use:
#   bash capture-pluto-down.sh OUT [4.10 ROOT] [5.2 ROOT]
# ROOTs default to ~/.cache/routevpn-mesh/libreswan/root (4.10, extracted .debs) and
# ~/.cache/routevpn-mesh/libreswan-root-trixie (5.2, a debootstrapped Debian 13).
set -euo pipefail
OUT=$1
V4=${2:-$HOME/.cache/routevpn-mesh/libreswan/root}
V5=${3:-$HOME/.cache/routevpn-mesh/libreswan-root-trixie}
mkdir -p "$OUT"
result() { # name run-dir-inside command...: run it, keep rc/stdout/stderr as Ansible's command module does
  local name=$1
  shift
  set +e
  "$@" > "$OUT/.stdout" 2> "$OUT/.stderr"
  local rc=$?
  set -e
  python3 - "$rc" "$OUT/.stdout" "$OUT/.stderr" > "$OUT/$name.result.json" <<'PY'
import json, sys
rc, out, err = int(sys.argv[1]), sys.argv[2], sys.argv[3]
read = lambda path: open(path, encoding="utf-8", errors="replace").read().rstrip("\r\n")
cmd = ["ipsec", "whack", "--ctlsocket", "/run/pluto/pluto.ctl", "--showstates"]
json.dump({"cmd": cmd, "rc": rc, "stdout": read(out), "stderr": read(err)}, sys.stdout, indent=1)
PY
  rm -f "$OUT/.stdout" "$OUT/.stderr"
}

# 4.10: the extracted tree, run from here (its libraries by LD_LIBRARY_PATH); the socket in a
# mount namespace's /run so that the printed path is the real one.
for state in missing refused; do
  # shellcheck disable=SC2016 # sh -c's own script: $0 and $1 are its arguments
  result "pluto-4.10-$state" unshare --mount --propagation private sh -c '
    mount -t tmpfs tmpfs /run && mkdir /run/pluto
    [ "$1" = refused ] && python3 -c "import socket; s = socket.socket(socket.AF_UNIX); s.bind(\"/run/pluto/pluto.ctl\"); s.close()"
    LD_LIBRARY_PATH=$0/usr/lib/x86_64-linux-gnu IPSEC_EXECDIR=$0/usr/libexec/ipsec IPSEC_SBINDIR=$0/usr/sbin \
      exec sh "$0/usr/sbin/ipsec" whack --ctlsocket /run/pluto/pluto.ctl --showstates' "$V4" "$state"
done
# 5.2: its own root, by chroot, with a tmpfs on its /run.
for state in missing refused; do
  # shellcheck disable=SC2016 # sh -c's own script: $0 and $1 are its arguments
  result "pluto-5.2-$state" unshare --mount --propagation private sh -c '
    mount -t tmpfs tmpfs "$0/run" && mkdir "$0/run/pluto"
    [ "$1" = refused ] && python3 -c "import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()" "$0/run/pluto/pluto.ctl"
    exec chroot "$0" ipsec whack --ctlsocket /run/pluto/pluto.ctl --showstates' "$V5" "$state"
done
