#!/usr/bin/env bash
# End-to-end test of the real-host path on the namespace testbed (part of ./scripts/test):
#   3-site topology, one host per site plus a client host ->
#   loadgen keygen -> testbed up -> loadgen inventory -> provision.yml -> shape.yml (htb; the
#   netem attempt must stop with nothing applied) -> for each protocol: start.yml (replicas
#   with --metrics) -> metrics.yml (Prometheus on this machine scraping them) -> loadgen run
#   (in the client host, sampling the replicas into timeseries.csv) -> Prometheus has every
#   replica's executed updates -> collect.yml -> stop.yml -> metrics.yml stopped -> unshape.yml
#   -> testbed down,
#   checking on the way: each host holds only its own nodes' secrets, shaping is replaced and
#   not stacked, every reply verified, throughput > 0 at 1 and 5 clients, 1-client latency at
#   least one WAN round trip, and no process, namespace or qdisc left behind.
#
#   ansible/testbed/e2e.sh [--protocols steward,pbft] [--bin-dir target/debug] [--keep <dir>]
# Needs root, ansible-playbook on PATH, iproute2, openssh-server, and built binaries
# (cargo build -p loadgen -p bft-nodes). Cleans up on failure and on Ctrl-C.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
ansible_dir="$(cd "$here/.." && pwd)"
repo="$(cd "$ansible_dir/.." && pwd)"
protocols="steward,pbft"
bin_dir="$repo/target/debug"
keep=""
while [ $# -gt 0 ]; do
  case "$1" in
    --protocols) protocols="$2"; shift 2 ;;
    --bin-dir) bin_dir="$(cd "$2" && pwd)"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    *) echo "e2e: unknown argument $1" >&2; exit 2 ;;
  esac
done

fail() { echo "e2e: FAILED: $*" >&2; exit 1; }
step() { echo "== e2e $(date +%T) $*"; }
for b in loadgen steward-node pbft-node analysis; do
  [ -x "$bin_dir/$b" ] || fail "$bin_dir/$b is missing (cargo build -p loadgen -p bft-nodes -p analysis)"
done
command -v ansible-playbook >/dev/null || fail "ansible-playbook not on PATH (pip install -r ansible/requirements.txt)"
start_s=$(date +%s)

work="${keep:-$(mktemp -d "${TMPDIR:-/tmp}/steward-e2e.XXXXXX")}"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
state="$work/testbed"
cleanup() {
  rc=$?
  if [ -f "$work/prometheus/prometheus.pid" ]; then
    "$work/prometheus/steward-supervise" stop "$work/prometheus/prometheus" >/dev/null 2>&1 || true
  fi
  if [ -f "$state/testbed.env" ]; then
    echo "e2e: cleaning up the testbed" >&2
    "$here/down.sh" "$state" >&2 || true
  fi
  [ -n "$keep" ] || rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A 3-site topology: 4 servers per site (f = 1), 25 ms one-way between sites, 10 Mbit/s
# shared per site's uplink; PBFT 4 replicas (2/1/1), clients at site0.
one_way_ms=25
cat >"$work/three-sites.toml" <<EOF
name = "testbed-three-sites"
description = "e2e: 3 sites of 4, 25 ms one-way, 10 Mbit/s site uplinks"
[lan]
latency_ms = 0.1
bandwidth = "1Gbps"
[wan]
model = "site-uplink"
[wan.default]
latency_ms = $one_way_ms
bandwidth = "10Mbps"
[[site]]
name = "site0"
f = 1
[[site]]
name = "site1"
f = 1
[[site]]
name = "site2"
f = 1
[clients]
weights = { site0 = 1 }
[pbft]
servers_per_site = { site0 = 2, site1 = 1, site2 = 1 }
EOF

export ANSIBLE_CONFIG="$ansible_dir/ansible.cfg"
export ANSIBLE_NOCOLOR=1
play() { # play <playbook> [args]: runs it with both inventories; output in $work/<playbook>.log
  local pb="$1"; shift
  local log="$work/$(basename "$pb" .yml)-$(date +%s%N).log"
  if ! ansible-playbook -i "$work/inv/inventory.yml" -i "$state/testbed.yml" \
    -e steward_local_deployment="$work/dep" -e steward_local_bin_dir="$work/bin" \
    "$ansible_dir/$pb" "$@" >"$log" 2>&1; then
    tail -40 "$log" >&2
    return 1
  fi
  last_log="$log"
}
# The PLAY RECAP's total of changed tasks of the last play.
changed() { grep -Eo 'changed=[0-9]+' "$last_log" | awk -F= '{ s += $2 } END { print s + 0 }'; }

step "keygen"
# Binaries without debug info (the playbooks copy them to every host).
mkdir -p "$work/bin"
for b in loadgen steward-node pbft-node; do
  strip --strip-debug -o "$work/bin/$b" "$bin_dir/$b"
done
"$bin_dir/loadgen" keygen --topology "$work/three-sites.toml" --out "$work/dep" --clients 5 >/dev/null

step "testbed up"
"$here/up.sh" "$state" site0-0:site0 site1-0:site1 site2-0:site2 site0-client0:site0:clients
# shellcheck disable=SC1091
. "$state/testbed.env"
ns_of() { echo "stb${TAG}-$1"; }
hosts=(site0-0 site1-0 site2-0 site0-client0)

step "inventory"
"$bin_dir/loadgen" inventory --topology "$work/three-sites.toml" --hosts "$state/hosts.txt" \
  --deployment "$work/dep" --out "$work/inv"
ansible-inventory -i "$work/inv/inventory.yml" -i "$state/testbed.yml" --graph >"$work/graph.txt"
grep -q -- '--@site_site1:' "$work/graph.txt" || fail "inventory has no site_site1 group: $(cat "$work/graph.txt")"

step "provision"
play provision.yml
play provision.yml
[ "$(changed)" = 0 ] || fail "provision.yml is not idempotent: changed=$(changed) on the second run"
# Each host holds public/ and only its own nodes' folders; no CA key anywhere.
python3 - "$state" "$work/inv/inventory.yml" <<'EOF' || fail "deployment secrets check"
import os, re, stat, sys
state, inv = sys.argv[1], open(sys.argv[2]).read()
expect = {
    "site0-0": {"steward/s0.0", "steward/s0.1", "steward/s0.2", "steward/s0.3", "pbft/r0", "pbft/r1"},
    "site1-0": {"steward/s1.0", "steward/s1.1", "steward/s1.2", "steward/s1.3", "pbft/r2"},
    "site2-0": {"steward/s2.0", "steward/s2.1", "steward/s2.2", "steward/s2.3", "pbft/r3"},
    "site0-client0": {f"clients/c{i}" for i in range(5)},
}
for host, want in expect.items():
    dep = os.path.join(state, "hosts", host, "root", "deployment")
    got = set()
    for kind in ("steward", "pbft", "clients"):
        d = os.path.join(dep, kind)
        if os.path.isdir(d):
            got |= {f"{kind}/{n}" for n in os.listdir(d)}
    assert got == want, f"{host}: node folders {sorted(got)}, expected {sorted(want)}"
    assert not os.path.exists(os.path.join(dep, "ca")), f"{host}: holds the CA's key"
    assert os.path.isdir(os.path.join(dep, "public")), f"{host}: no public/"
    for root, dirs, files in os.walk(dep):
        for n in dirs:
            m = stat.S_IMODE(os.stat(os.path.join(root, n)).st_mode)
            assert m == 0o700, f"{host}: {os.path.join(root, n)} has mode {m:o}"
        for n in files:
            m = stat.S_IMODE(os.stat(os.path.join(root, n)).st_mode)
            assert m == 0o600, f"{host}: {os.path.join(root, n)} has mode {m:o}"
print("e2e: every host holds only its own nodes' secrets (0600 files, 0700 folders)")
EOF

step "shape (netem must refuse on this kernel, with nothing applied)"
if ansible-playbook -i "$work/inv/inventory.yml" -i "$state/testbed.yml" "$ansible_dir/shape.yml" \
  -e steward_wan=netem >"$work/shape-netem.log" 2>&1; then
  if ip netns exec "$(ns_of site0-0)" tc qdisc show dev eth0 | grep -q netem; then
    echo "e2e: this kernel has sch_netem; the netem path was applied"
  else
    fail "shape.yml with steward_wan=netem passed without netem"
  fi
else
  grep -q "this kernel has no sch_netem" "$work/shape-netem.log" ||
    fail "shape.yml netem failure without the promised message: $(tail -20 "$work/shape-netem.log")"
  for h in "${hosts[@]}"; do
    q=$(ip netns exec "$(ns_of "$h")" tc qdisc show dev eth0)
    echo "$q" | grep -q '^qdisc noqueue' || fail "$h: the failed netem play changed the qdisc: $q"
  done
  echo "e2e: shape.yml refused netem (no sch_netem) and changed nothing"
fi

step "shape (htb; delay by the userspace shaper)"
play shape.yml -e steward_wan=emulate
play shape.yml -e steward_wan=emulate
[ "$(changed)" = 0 ] || fail "shape.yml is not idempotent: changed=$(changed) on the second run"
for h in "${hosts[@]}"; do
  q=$(ip netns exec "$(ns_of "$h")" tc qdisc show dev eth0)
  [ "$(echo "$q" | grep -c '^qdisc htb 1: root')" = 1 ] || fail "$h: expected one htb root: $q"
  c=$(ip netns exec "$(ns_of "$h")" tc class show dev eth0)
  echo "$c" | grep -q 'class htb 1:2 root rate 10Mbit ceil 10Mbit' || fail "$h: no 10 Mbit/s uplink class: $c"
done
# The rendered netem commands (not applied here) carry the topology's delay per destination.
grep -q "netem delay $((one_way_ms * 1000))us" "$work/inv/shape/site0-0.netem.sh" ||
  fail "rendered netem script lacks the WAN delay"

# Prometheus (Debian's package; installed by metrics.yml when missing) on this machine, the
# controller, on a free port; its files under $work.
prom_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
prom_install=true
command -v prometheus >/dev/null && command -v promtool >/dev/null && prom_install=false
prom_vars=(-e ansible_become=false -e steward_install_packages="$prom_install"
  -e steward_prometheus_listen="127.0.0.1:$prom_port" -e steward_prometheus_run_dir="$work/prometheus"
  -e steward_prometheus_config="$work/prometheus/prometheus.yml"
  -e steward_prometheus_data_dir="$work/prometheus/data")

for proto in ${protocols//,/ }; do
  step "start $proto (with --metrics)"
  play start.yml -e steward_protocol="$proto" -e steward_wan=emulate -e steward_metrics=true
  play status.yml -e steward_protocol="$proto"

  step "metrics.yml: Prometheus scraping the $proto replicas"
  play metrics.yml -e steward_protocol="$proto" "${prom_vars[@]}"

  step "loadgen run $proto (from the client host)"
  ip netns exec "$(ns_of site0-client0)" "$bin_dir/loadgen" run --deployment "$work/dep" \
    --protocol "$proto" --clients 1,5 --duration 4s --warmup 2s --wan emulate \
    --metrics-port-offset 0 \
    --out "$work/results/$proto" >"$work/run-$proto.log" 2>&1 ||
    fail "loadgen run $proto: $(tail -20 "$work/run-$proto.log")"
  python3 - "$work/results/$proto/timeseries.csv" "$proto" "$prom_port" <<'EOF' || fail "$proto metrics check"
import csv, json, sys, time, urllib.parse, urllib.request
series, proto, port = sys.argv[1], sys.argv[2], sys.argv[3]
want = ({f"steward-s{s}.{i}" for s in range(3) for i in range(4)} if proto == "steward"
        else {f"pbft-r{r}" for r in range(4)})
rows = [r for r in csv.DictReader(open(series)) if r["metric"] == "bft_executed_updates_total"]
got = {r["node"] for r in rows}
assert got == want, f"timeseries.csv: executed updates sampled from {sorted(got)}, expected {sorted(want)}"
assert max(float(r["value"]) for r in rows) > 0, "timeseries.csv: no replica executed an update"
# Prometheus scraped every replica: poll (bounded) until each one's executed updates show.
query = urllib.parse.quote(f'bft_executed_updates_total{{protocol="{proto}"}}')
deadline, seen = time.time() + 30, {}
while time.time() < deadline:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query={query}", timeout=5) as r:
        result = json.load(r)["data"]["result"]
    seen = {x["metric"]["node"]: float(x["value"][1]) for x in result}
    if set(seen) == want and all(v > 0 for v in seen.values()):
        break
    time.sleep(0.5)
else:
    raise AssertionError(f"Prometheus has executed updates for {seen}, expected every one of {sorted(want)} > 0")
print(f"e2e: {proto}: timeseries.csv and Prometheus have every replica's executed updates "
      f"({len(rows)} samples; Prometheus: {int(min(seen.values()))}..{int(max(seen.values()))})")
EOF
  python3 - "$work/results/$proto/summary.csv" "$one_way_ms" <<'EOF' || fail "$proto results check"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
one_way = float(sys.argv[2])
by = {int(r["clients"]): r for r in rows}
assert set(by) == {1, 5}, f"rows for clients {sorted(by)}"
for n, r in by.items():
    assert r["safety"] == "ok", f"{n} clients: safety {r['safety']}"
    assert float(r["throughput_ops_s"]) > 0, f"{n} clients: no throughput"
    assert r["mode"] == "remote"
lat = float(by[1]["lat_mean_ms"])
assert lat >= 2 * one_way, f"1-client latency {lat} ms < one WAN round trip {2 * one_way} ms"
print(f"e2e: {rows[0]['protocol']}: 1 client {float(by[1]['throughput_ops_s']):.1f} ops/s "
      f"{lat:.1f} ms (>= {2 * one_way:.0f} ms), 5 clients {float(by[5]['throughput_ops_s']):.1f} ops/s, safety ok")
EOF

  step "collect $proto"
  play collect.yml -e steward_results_dir="$work/results/$proto/collected"
  first=$(python3 -c "import sys; print('s0.0' if sys.argv[1] == 'steward' else 'r0')" "$proto")
  grep -q '^ready ' "$work/results/$proto/collected/site0-0/$first.out" || fail "collect: no ready line for $first"
  grep -q '^wan ' "$work/results/$proto/collected/site0-0/$first.out" || fail "collect: no wan counters for $first"

  step "stop $proto"
  play stop.yml
  for h in "${hosts[@]}"; do
    for pid in $(ip netns pids "$(ns_of "$h")"); do
      comm=$(cat "/proc/$pid/comm" 2>/dev/null || true)
      [ -z "$comm" ] || [ "$comm" = sshd ] || fail "$h: $comm (pid $pid) still runs after stop.yml"
    done
  done
  grep -q '^stats ' "$state/hosts/site0-0/root/run/$first.out" || fail "stop: $first printed no stats line"
done

step "metrics.yml: stop Prometheus"
play metrics.yml -e steward_prometheus_state=stopped "${prom_vars[@]}"
if python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 1)" "$prom_port" 2>/dev/null; then
  fail "Prometheus still answers on 127.0.0.1:$prom_port after metrics.yml stopped it"
fi

step "loadgen matrix with remote points (from the client host), then analysis report"
quoted=$(echo "$protocols" | sed 's/[^,][^,]*/"&"/g; s/,/, /g')
cat >"$work/remote-matrix.toml" <<EOF
name = "testbed-remote"
description = "e2e: the protocols on the namespace testbed through the start/stop playbooks"
[[run]]
mode = "remote"
deployment = "dep"
inventory = ["inv/inventory.yml", "testbed/testbed.yml"]
protocols = [$quoted]
clients = [2]
duration = "3s"
warmup = "1s"
wan = "emulate"
ansible_dir = "$ansible_dir"
EOF
ip netns exec "$(ns_of site0-client0)" "$bin_dir/loadgen" matrix --spec "$work/remote-matrix.toml" \
  --out "$work/results/matrix" >"$work/matrix.log" 2>&1 || fail "loadgen matrix: $(tail -20 "$work/matrix.log")"
python3 - "$work/results/matrix" "$protocols" <<'EOF' || fail "matrix results check"
import csv, json, sys
out, protocols = sys.argv[1], sys.argv[2].split(",")
rows = list(csv.DictReader(open(f"{out}/summary.csv")))
assert sorted(r["protocol"] for r in rows) == sorted(protocols), rows
for r in rows:
    assert r["mode"] == "remote" and r["safety"] == "ok" and float(r["throughput_ops_s"]) > 0, r
m = json.load(open(f"{out}/manifest.json"))
hosts = m["remote"][0]["hosts"]
assert set(hosts) == {"site0-0", "site1-0", "site2-0", "site0-client0"}, hosts
assert m["remote_shaping"] == ["emulate"] and m["machine"]["git_revision"], m
print(f"e2e: matrix: {len(rows)} remote points, hosts {sorted(hosts)}, safety ok")
EOF
# Resuming a finished sweep runs nothing (no playbook either).
ip netns exec "$(ns_of site0-client0)" "$bin_dir/loadgen" matrix --spec "$work/remote-matrix.toml" \
  --out "$work/results/matrix" >"$work/matrix2.log" 2>&1 || fail "loadgen matrix resume: $(tail -5 "$work/matrix2.log")"
if grep -q 'ansible-playbook' "$work/matrix2.log"; then fail "the resumed matrix ran a playbook"; fi
"$bin_dir/analysis" report "$work/results/matrix" --out "$work/results/matrix-report" --no-plots \
  >"$work/report.log" 2>&1 || fail "analysis report: $(tail -5 "$work/report.log")"
[ -s "$work/results/matrix-report/REPORT.md" ] || fail "analysis report wrote no REPORT.md"

step "an unreachable host stops the matrix with an error that names it"
# site1-0's ssh port becomes 9 (closed, inside its namespace): connection refused.
printf 'all:\n  hosts:\n    site1-0:\n      ansible_port: 9\n' >"$work/unreachable.yml"
sed 's|"testbed/testbed.yml"]|"testbed/testbed.yml", "unreachable.yml"]|' "$work/remote-matrix.toml" >"$work/unreachable.toml"
if ip netns exec "$(ns_of site0-client0)" "$bin_dir/loadgen" matrix --spec "$work/unreachable.toml" \
  --out "$work/results/unreachable" >"$work/unreachable.log" 2>&1; then
  fail "the matrix passed with an unreachable host"
fi
grep -q 'error: .*ansible-playbook stop.yml failed.*fatal: \[site1-0\]: UNREACHABLE!' "$work/unreachable.log" ||
  fail "no error naming the unreachable host: $(tail -5 "$work/unreachable.log")"

step "unshape"
play unshape.yml
for h in "${hosts[@]}"; do
  q=$(ip netns exec "$(ns_of "$h")" tc qdisc show dev eth0)
  echo "$q" | grep -q '^qdisc noqueue 0: root' || fail "$h: qdisc left after unshape.yml: $q"
done

step "testbed down"
"$here/down.sh" "$state"
ip netns list | grep -q "^stb${TAG}-" && fail "namespaces left: $(ip netns list | grep "^stb${TAG}-")"
ip link show "$BRIDGE" >/dev/null 2>&1 && fail "bridge $BRIDGE left"
[ ! -e "$state/id_ed25519" ] || fail "testbed key left"
echo "e2e: passed (${protocols}) in $(($(date +%s) - start_s)) s"
