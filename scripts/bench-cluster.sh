#!/usr/bin/env bash
# bench-cluster.sh: issue 17's load row. Three Plenum nodes share one
# channel tree over a three-server NATS cluster (the real nats-server,
# built from its module), N users on each node, four speakers spread over
# the nodes (two on the first, one on each other); every listener counts
# and times every packet. For reference, the same total of users on one
# Plenum and on Debian's Murmur. Not part of CI.
#
#   scripts/bench-cluster.sh        prints the Markdown for docs/BENCHMARKS.md
#
# Environment:
#   BENCH_PER_NODE  users per node (default 300)
#   BENCH_SECONDS   speaking time per run (default 20)
#   BENCH_ONLY      space-separated run numbers (1: cluster, 2: one Plenum,
#                   3: Murmur)
#   MURMURD         Murmur binary (default /usr/sbin/murmurd)
#   BENCH_KEEP      keep the temp dir if set
#
# Everything runs on loopback. The nodes and the NATS servers are pinned to
# core 0 (as the single servers are), the generator (plenum-loadgen) to
# core 1. Run it when nothing else is busy: the report gives the
# generator's CPU and late sends, and whether it was the limit.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/scripts/lib.sh"
ensure_go
ensure_opus
per_node=${BENCH_PER_NODE:-300}
secs=${BENCH_SECONDS:-20}
murmurd=${MURMURD:-/usr/sbin/murmurd}
total=$((3 * per_node))
tmp=$(mktemp -d /tmp/bench-cluster.XXXXXX)
source "$repo/scripts/bench-lib.sh"

cluster_pids=()
stop_cluster() {
	local p
	for p in "${cluster_pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${cluster_pids[@]}"; do
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	cluster_pids=()
}
cleanup() {
	stop_cluster
	stop_server
	if [[ -z ${BENCH_KEEP:-} ]]; then rm -rf "$tmp"; else echo "kept $tmp" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(nproc) -ge 2 ]] || { echo "needs 2 cores: servers on 0, generator on 1" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset not found (util-linux)" >&2; exit 1; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 1; }

log "building plenum, plenum-loadgen and nats-server"
(cd "$repo" && go build -o "$tmp/plenum" ./cmd/plenum && go build -o "$tmp/plenum-loadgen" ./cmd/plenum-loadgen &&
	go build -o "$tmp/nats-server" github.com/nats-io/nats-server/v2)
commit=$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)

# cpu_ticks PID...: user+system CPU of the processes, in clock ticks.
cpu_ticks() {
	local sum=0 p f
	for p in "$@"; do
		read -ra f <"/proc/$p/stat"
		# Fields 14 and 15, counted after the command name (no spaces here).
		sum=$((sum + f[13] + f[14]))
	done
	echo "$sum"
}

# unused_port NAME sets variable NAME to a free_port that also avoids the
# ports chosen earlier in this run but not bound yet (so not in a
# subshell, which would forget them).
chosen=" "
unused_port() {
	local p
	while :; do
		p=$(free_port)
		[[ $chosen == *" $p "* ]] || break
	done
	chosen+="$p "
	printf -v "$1" '%s' "$p"
}

# server_drops ADMIN_PORT...: the voice the servers dropped, summed over
# them, by reason ("socket_backlog 12, replayed 1"), from their metrics.
server_drops() {
	local p
	for p in "$@"; do curl -s "http://127.0.0.1:$p/metrics"; done |
		awk '/^plenum_voice_dropped_total/ { split($1, a, "\""); n[a[2]] += $2 }
			END { for (r in n) if (n[r] > 0) { printf "%s%s %d", sep, r, n[r]; sep = ", " } }'
}

# start_cluster: three NATS servers routed to each other, then three
# Plenum nodes, node i using NATS server i first. Sets node_ports,
# admin_ports, node_pids and nats_pids.
start_cluster() {
	local i j routes urls
	local -a client_ports route_ports mon_ports
	node_ports=() admin_ports=() node_pids=() nats_pids=()
	for i in 0 1 2; do
		unused_port "client_ports[$i]"
		unused_port "route_ports[$i]"
		unused_port "mon_ports[$i]"
	done
	for i in 0 1 2; do
		routes=""
		for j in 0 1 2; do
			[[ $j == "$i" ]] || routes+="\"nats://127.0.0.1:${route_ports[j]}\", "
		done
		mkdir -p "$tmp/nats$i"
		cat >"$tmp/nats$i.conf" <<CONF
server_name: nats$i
listen: "127.0.0.1:${client_ports[i]}"
http: "127.0.0.1:${mon_ports[i]}"
jetstream { store_dir: "$tmp/nats$i" }
cluster { name: bench, listen: "127.0.0.1:${route_ports[i]}", routes: [${routes%, }] }
CONF
		taskset -c 0 "$tmp/nats-server" -c "$tmp/nats$i.conf" >>"$tmp/nats$i.log" 2>&1 &
		nats_pids[i]=$!
		cluster_pids+=("$!")
	done
	for i in 0 1 2; do
		for _ in $(seq 300); do
			curl -sf "http://127.0.0.1:${mon_ports[i]}/healthz" >/dev/null && break
			sleep 0.1
		done
		curl -sf "http://127.0.0.1:${mon_ports[i]}/healthz" >/dev/null ||
			{ cat "$tmp/nats$i.log" >&2; echo "NATS server $i has no JetStream" >&2; exit 1; }
	done
	for i in 0 1 2; do
		urls=""
		for j in 0 1 2; do urls+="\"nats://127.0.0.1:${client_ports[(i + j) % 3]}\", "; done
		write_plenum_config "$tmp/node$i.toml"
		sed -i -e 's/^web_listen = .*/web_listen = ""/' "$tmp/node$i.toml"
		cat >>"$tmp/node$i.toml" <<CONF

[cluster]
name = "bench"
node = "node$i"
nats_urls = [${urls%, }]
CONF
		unused_port "node_ports[$i]"
		unused_port "admin_ports[$i]"
		mkdir -p "$tmp/node$i-data"
		taskset -c 0 "$tmp/plenum" -config "$tmp/node$i.toml" -listen "127.0.0.1:${node_ports[i]}" \
			-data "$tmp/node$i-data" -admin-listen "127.0.0.1:${admin_ports[i]}" >>"$tmp/node$i.log" 2>&1 &
		node_pids[i]=$!
		cluster_pids+=("$!")
		server_pid=${node_pids[i]} wait_tcp "${node_ports[i]}" ||
			{ cat "$tmp/node$i.log" >&2; echo "node $i did not start" >&2; exit 1; }
	done
}

runs=(
	"1|3 nodes × $per_node users, K=4 (2 on node A, 1 on B, 1 on C)"
	"2|one Plenum, $total users, K=4 (reference)"
	"3|Murmur 1.3.4, $total users, K=4 (reference)"
)
rows=()
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for run in "${runs[@]}"; do
	IFS='|' read -r num scenario <<<"$run"
	if [[ -n ${BENCH_ONLY:-} && " $BENCH_ONLY " != *" $num "* ]]; then continue; fi
	log "run $num: $scenario"
	nats_cpu="" drops="–"
	case $num in
	1)
		start_cluster
		addr=$(printf '127.0.0.1:%s,' "${node_ports[@]}")
		addr=${addr%,}
		pids=$(IFS=,; echo "${node_pids[*]}")
		label=plenum-cluster
		nats0=$(cpu_ticks "${nats_pids[@]}")
		;;
	2)
		port=$(free_port)
		rm -rf "$tmp/plenum-data"
		write_plenum_config "$tmp/plenum.toml"
		sed -i -e 's/^web_listen = .*/web_listen = ""/' "$tmp/plenum.toml"
		start_plenum "$port"
		addr=127.0.0.1:$port pids=$server_pid label=plenum
		;;
	3)
		[[ -x $murmurd ]] || { echo "$murmurd not found (apt-get install mumble-server)" >&2; continue; }
		port=$(free_port)
		start_murmur "$port"
		addr=127.0.0.1:$port pids=$server_pid label=murmur
		;;
	esac
	ok=1
	taskset -c 1 "$tmp/plenum-loadgen" -addr "$addr" -n "$total" -k 4 -seconds "$secs" -server-pid "$pids" \
		-json "$tmp/result-$num.json" -scenario "$scenario" -label "$label" >"$tmp/result-$num.txt" 2>"$tmp/loadgen-$num.log" || ok=0
	if [[ $num == 1 ]]; then
		nats_cpu=$(( $(cpu_ticks "${nats_pids[@]}") - nats0 ))
		drops=$(server_drops "${admin_ports[@]}")
		stop_cluster
	else
		[[ $num == 2 ]] && drops=$(server_drops "$admin_port")
		stop_server
	fi
	if [[ $ok == 0 ]]; then
		cat "$tmp/loadgen-$num.log" >&2
		echo "run $num failed" >&2
		continue
	fi
	rows+=("$(python3 - "$tmp/result-$num.json" "$nats_cpu" "$(getconf CLK_TCK)" "${drops:-none}" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
nats = sys.argv[2]
tck = int(sys.argv[3])
def f(v, p=2): return f"{v:.{p}f}"
window = r["seconds"] + 2  # speech and the 2 s drain after it
cpu = 100 * r["server_cpu_s"] / window
cells = [
    r["scenario"],
    f(r["loss_pct"], 3) + f" ({r['received']} of {r['expected']})",
    f"{f(r['latency_p50_ms'])} / {f(r['latency_p99_ms'])} / {f(r['latency_max_ms'], 1)}",
    f(cpu, 1),
    f(100 * int(nats) / tck / window, 1) if nats else "–",
    f(r["sync_s"]),
    f"{r['server_socket_drops']} / {r['client_socket_drops']}",
    sys.argv[4],
    f(r["gen_cpu_pct"], 0) + (" (limit)" if r["generator_limited"] else "") + f", late {r['late_sends']}",
]
print("| " + " | ".join(cells) + " |")
PY
)")
	log "run $num done"
	cat "$tmp/result-$num.txt" >&2
done

cat <<EOF
Measured by \`scripts/bench-cluster.sh\` on $(date -u '+%Y-%m-%d %H:%M') UTC, Plenum built from commit $commit,
$secs s of speech per run, the server(s) and NATS servers on core 0, the generator on core 1 (\`taskset\`),
everything on loopback, freshly started for each run. Load average before the first run: $load_before.

| scenario | loss % (received of expected) | latency p50 / p99 / max ms | nodes' CPU % of a core | NATS servers' CPU % | connect all s | socket drops server / clients | voice the server dropped (its metrics) | generator CPU %, late sends |
|---|--:|--:|--:|--:|--:|--:|--:|--:|
EOF
printf '%s\n' "${rows[@]}"
echo
loadgen_reports
