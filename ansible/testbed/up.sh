#!/usr/bin/env bash
# Namespace testbed: N "hosts" on one Linux box, each a network namespace on a shared bridge
# with its own sshd (generated keys), its own private /opt/steward (a bind mount seen only by
# that host's processes) and its own eth0 to shape with tc.
#
#   ansible/testbed/up.sh <state dir> <name>:<site>[:<roles>] ...
#     e.g. up.sh /tmp/tb site0-0:site0 site1-0:site1 site2-0:site2 site0-client0:site0:clients
#
# Writes into <state dir>:
#   hosts.txt       the hosts file for `loadgen inventory --hosts` (name address site roles)
#   testbed.yml     an Ansible inventory with the connection settings (ssh key, root, no host
#                   key checking, process supervision) to pass as a second -i
#   id_ed25519      the controller's ssh key (authorized on every host)
#   testbed.env     what down.sh removes
# Only addresses inside these namespaces are used: 10.<a>.<b>.0/24 derived from the state
# directory, the bridge holds .1, the hosts .10 and up. Needs root, iproute2, openssh-server.
# On any failure it removes what it created (down.sh).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
die() { echo "testbed up: $*" >&2; exit 1; }
[ $# -ge 2 ] || die "usage: up.sh <state dir> <name>:<site>[:<roles>] ..."
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, bridges, sshd)"
for tool in ip tc ssh-keygen unshare /usr/sbin/sshd; do
  command -v "$tool" >/dev/null 2>&1 || die "missing $tool (apt-get install iproute2 openssh-server openssh-client util-linux)"
done

state="$1"; shift
# The hosts share this machine's filesystem: their Python is the controller's.
py="$(python3 -c 'import sys; print(sys.executable)')" || die "python3 is missing"
[ -e "$state/testbed.env" ] && die "$state already holds a testbed; run down.sh $state first"
mkdir -p "$state"
state="$(cd "$state" && pwd)"
# A short tag from the state directory keeps parallel testbeds apart (names, subnet).
sum=$(printf '%s' "$state" | cksum | cut -d' ' -f1)
tag=$(printf '%04x' $((sum % 65536)))
net="10.$((200 + sum % 50)).$(((sum / 50) % 250))"
bridge="stb${tag}br"
mount_point=/opt/steward

cat >"$state/testbed.env" <<EOF
TAG=$tag
BRIDGE=$bridge
NET=$net
NAMESPACES=""
MOUNT_POINT_CREATED=0
EOF
trap 'echo "testbed up: failed; removing what was created" >&2; "$here/down.sh" "$state" || true' ERR

if [ ! -d "$mount_point" ]; then
  mkdir -p "$mount_point"
  sed -i 's/^MOUNT_POINT_CREATED=0/MOUNT_POINT_CREATED=1/' "$state/testbed.env"
fi
mkdir -p /run/sshd

ssh-keygen -q -t ed25519 -N '' -C "steward-testbed-$tag" -f "$state/id_ed25519"
cp "$state/id_ed25519.pub" "$state/authorized_keys"
chmod 600 "$state/authorized_keys"

ip link add "$bridge" type bridge
ip addr add "$net.1/24" dev "$bridge"
ip link set "$bridge" up

: >"$state/hosts.txt"
{
  echo "# written by ansible/testbed/up.sh: connection settings of the namespace hosts"
  echo "all:"
  echo "  vars:"
  echo "    ansible_user: root"
  echo "    ansible_ssh_private_key_file: \"$state/id_ed25519\""
  echo "    ansible_ssh_common_args: \"-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR\""
  echo "    ansible_python_interpreter: \"$py\""
  echo "    ansible_become: false"
  echo "    ansible_ssh_args: \"-o ControlMaster=auto -o ControlPersist=60s\""
  echo "    ansible_control_path_dir: \"$state/cp\""
  echo "  hosts:"
} >"$state/testbed.yml"

i=0
nslist=""
for spec in "$@"; do
  IFS=: read -r name site roles <<<"$spec"
  [ -n "$name" ] && [ -n "$site" ] || die "bad host spec $spec (name:site[:roles])"
  roles="${roles:-replicas}"
  ns="stb${tag}-${name}"
  addr="$net.$((10 + i))"
  veth="stb${tag}v${i}"
  ip netns add "$ns"
  nslist="$nslist $ns"
  sed -i "s/^NAMESPACES=.*/NAMESPACES=\"${nslist# }\"/" "$state/testbed.env"
  ip link add "$veth" type veth peer name "${veth}p"
  ip link set "${veth}p" netns "$ns"
  ip link set "$veth" master "$bridge" up
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "${veth}p" name eth0
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  hdir="$state/hosts/$name"
  mkdir -p "$hdir/root"
  ssh-keygen -q -t ed25519 -N '' -C "$name" -f "$hdir/ssh_host_ed25519_key"
  cat >"$hdir/sshd_config" <<EOF
ListenAddress $addr
Port 22
HostKey $hdir/ssh_host_ed25519_key
PidFile $hdir/sshd.pid
AuthorizedKeysFile $state/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
EOF
  # Each host's sshd (and so every process Ansible starts there) sees its own /opt/steward.
  ip netns exec "$ns" unshare --mount --propagation private \
    sh -c "mount --bind '$hdir/root' '$mount_point' && exec /usr/sbin/sshd -f '$hdir/sshd_config'"
  echo "$name $addr $site $roles" >>"$state/hosts.txt"
  {
    echo "    $name:"
    echo "      ansible_host: \"$addr\""
    # Host vars: they override the playbooks' group_vars/all.yml (a group var here would not).
    echo "      steward_supervisor: process"
    echo "      steward_service_user: root"
    echo "      shape_dev: eth0"
  } >>"$state/testbed.yml"
  i=$((i + 1))
done

# Wait (bounded) until every sshd accepts our key.
ssh_opts=(-i "$state/id_ed25519" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null
  -o LogLevel=ERROR -o BatchMode=yes -o ConnectTimeout=2)
while read -r name addr _; do
  ok=0
  for _try in $(seq 1 50); do
    if ssh "${ssh_opts[@]}" "root@$addr" true 2>/dev/null; then ok=1; break; fi
    sleep 0.2
  done
  [ "$ok" = 1 ] || die "host $name ($addr): sshd does not answer"
done <"$state/hosts.txt"
trap - ERR
echo "testbed up: $# hosts on $bridge ($net.0/24); hosts file $state/hosts.txt, inventory $state/testbed.yml"
