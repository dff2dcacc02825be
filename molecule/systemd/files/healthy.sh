# Run on a gateway by lab/exec (sh -c): is it healthy, without Ansible?
#   $1: its number of links.  Exit 0 when systemd has finished booting, its
#   mesh units run, and every link has its IKE SA established, a CHILD_SA
#   installed and its BGP session Established; else print what is missing.
links=$1
state=$(systemctl is-system-running 2>/dev/null)
case $state in running|degraded) ;; *) echo "systemd: $state"; exit 1 ;; esac
for unit in routevpn-netns@private.service routevpn-tunnels@private.service strongswan.service routevpn-bird@private.service; do
  systemctl is-active --quiet "$unit" || { echo "$unit: $(systemctl is-active "$unit")"; exit 1; }
done
ike=$(swanctl --list-sas --noblock 2>/dev/null | grep -c ': #[0-9]*, ESTABLISHED')
child=$(swanctl --list-sas --noblock 2>/dev/null | grep -c 'INSTALLED')
bgp=$(ip netns exec private birdc -s /run/routevpn-bird/private.ctl show protocols 2>/dev/null | grep -c '\sBGP\s.*Established')
if [ "$ike" -ge "$links" ] && [ "$child" -ge "$links" ] && [ "$bgp" -ge "$links" ]; then exit 0; fi
echo "IKE SAs established $ike, CHILD_SAs installed $child, BGP sessions established $bgp, of $links links"
exit 1
