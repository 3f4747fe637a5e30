#!/usr/bin/env bash
# Removes a namespace testbed made by up.sh: every process running in its namespaces (sshd,
# replicas, clients), the namespaces, the bridge, the generated keys and the state files.
#   ansible/testbed/down.sh <state dir>
# Safe to run twice and on a half-built testbed.
set -uo pipefail

die() { echo "testbed down: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: down.sh <state dir>"
state="$1"
[ -f "$state/testbed.env" ] || { echo "testbed down: $state holds no testbed"; exit 0; }
state="$(cd "$state" && pwd)"
# shellcheck disable=SC1091
. "$state/testbed.env"

# Ansible's persistent ssh connections to the hosts.
for sock in "$state"/cp/*; do
  [ -S "$sock" ] && ssh -o ControlPath="$sock" -O exit testbed >/dev/null 2>&1
done
for ns in $NAMESPACES; do
  ip netns list | grep -qw "^$ns" || continue
  # Every process in the namespace: TERM, then KILL what is left (bounded).
  for sig in TERM KILL; do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [ -n "$pids" ] || break
    kill -s "$sig" $pids 2>/dev/null
    for _ in $(seq 1 50); do
      [ -z "$(ip netns pids "$ns" 2>/dev/null)" ] && break
      sleep 0.1
    done
  done
  left=$(ip netns pids "$ns" 2>/dev/null)
  [ -z "$left" ] || echo "testbed down: processes $left survive in $ns" >&2
  ip netns del "$ns"
done
ip link show "$BRIDGE" >/dev/null 2>&1 && ip link del "$BRIDGE"
if [ "${MOUNT_POINT_CREATED:-0}" = 1 ]; then
  rmdir /opt/steward 2>/dev/null || true
fi
rm -rf "$state/hosts" "$state/id_ed25519" "$state/id_ed25519.pub" "$state/authorized_keys" \
  "$state/hosts.txt" "$state/testbed.yml" "$state/cp" "$state/testbed.env"
echo "testbed down: removed $NAMESPACES and $BRIDGE"
