# shellcheck shell=sh
# Run on a gateway by lab/exec (sh -c): is it healthy, without Ansible?
#   $@: the connection names of its link ends (the plan's
#   hosts[gateway][].connection).  Exit 0 when systemd has finished booting,
#   the mesh's units are active, charon holds exactly one IKE_SA per link
#   end, ESTABLISHED, with exactly one CHILD_SA, INSTALLED, and no other SA
#   (one end initiates each link: a second IKE_SA or CHILD_SA is a
#   duplicate, a CONNECTING or DELETING one a leftover), and BIRD has a BGP
#   session Established per link; else print what is wrong.
[ $# -gt 0 ] || { echo "healthy.sh: no connection named"; exit 2; }
state=$(systemctl is-system-running 2>/dev/null)
case $state in running|degraded) ;; *) echo "systemd: $state"; exit 1 ;; esac
for unit in routevpn-netns@private.service routevpn-tunnels@private.service strongswan.service routevpn-bird@private.service; do
  systemctl is-active --quiet "$unit" || { echo "$unit: $(systemctl is-active "$unit")"; exit 1; }
done
sas=$(swanctl --list-sas --noblock 2>&1) || { echo "swanctl: $sas"; exit 1; }
# swanctl prints "NAME: #ID, STATE, IKEv2, ..." for each IKE_SA, then
# "  CHILD: #ID, reqid N, STATE, ..." for each of its CHILD_SAs: the states
# are collected per IKE_SA's connection, in order.
wrong=$(printf '%s\n' "$sas" | awk -v planned="$*" '
  BEGIN { n = split(planned, p, " "); for (i = 1; i <= n; i++) want[p[i]] = 1 }
  /^[^ ][^ ]*: #[0-9]+, [A-Z_]+, IKEv/ {
    cur = $1; sub(/:$/, "", cur); s = $3; sub(/,$/, "", s)
    ike[cur] = ike[cur] " " s; seen[cur] = 1; next
  }
  /^  [^ ][^ ]*: #[0-9]+, reqid [0-9]+, [A-Z_]+,/ {
    s = $5; sub(/,$/, "", s); child[cur] = child[cur] " " s; next
  }
  END {
    for (c in seen) if (!(c in want)) print c ": IKE_SA" ike[c] " of no link of this gateway"
    for (c in want) {
      if (ike[c] != " ESTABLISHED") print c ": IKE_SAs" (ike[c] == "" ? " none" : ike[c]) ", want one ESTABLISHED"
      if (child[c] != " INSTALLED") print c ": CHILD_SAs" (child[c] == "" ? " none" : child[c]) ", want one INSTALLED"
    }
  }')
bgp=$(ip netns exec private birdc -s /run/routevpn-bird/private.ctl show protocols 2>/dev/null | grep -c '\sBGP\s.*Established')
if [ -z "$wrong" ] && [ "$bgp" -ge $# ]; then exit 0; fi
[ -z "$wrong" ] || echo "$wrong"
echo "BGP sessions established: $bgp, of $# links"
exit 1
