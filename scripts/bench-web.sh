#!/usr/bin/env bash
# bench-web.sh: browsers over WebRTC beside Mumble clients, one channel,
# 4 speakers (2 browsers, 2 Mumble clients), with the Mumble-only run of
# the same size for reference. Not part of CI.
#
#   scripts/bench-web.sh        prints the Markdown for docs/BENCHMARKS.md
#
# Environment:
#   BENCH_SECONDS  speaking time per run (default 20)
#   BENCH_ONLY     space-separated run numbers (1..3)
#   BENCH_TIMED    browsers that decode and time the mix (default 50)
#   BENCH_KEEP     keep the temp dir if set
#
# The server runs pinned to core 0, the generator (plenum-loadgen -mode
# web: every browser does ICE, DTLS and SRTP) to core 1, one fresh server
# per run. Run it when nothing else is busy: the generator's timing is
# only as good as its core is free (see the report's generator CPU and
# late sends).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/scripts/lib.sh"
ensure_go
ensure_opus
secs=${BENCH_SECONDS:-20}
timed=${BENCH_TIMED:-50}
tmp=$(mktemp -d /tmp/bench-web.XXXXXX)
source "$repo/scripts/bench-lib.sh"
cleanup() {
	stop_server
	if [[ -z ${BENCH_KEEP:-} ]]; then rm -rf "$tmp"; else echo "kept $tmp" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ $(nproc) -ge 2 ]] || { echo "needs 2 cores: server on 0, generator on 1" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset not found (util-linux)" >&2; exit 1; }

log "building plenum and plenum-loadgen from $repo"
(cd "$repo" && go build -o "$tmp/plenum" ./cmd/plenum && go build -o "$tmp/plenum-loadgen" ./cmd/plenum-loadgen)
commit=$(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)

# Runs: number|scenario|loadgen flags.
runs=(
	"1|500 browsers + 2 Mumble, K=4 (2 web, 2 Mumble)|-mode web -n 500 -mumble 2 -k 4 -web-speakers 2"
	"2|250 browsers + 250 Mumble, K=4 (2 web, 2 Mumble)|-mode web -n 250 -mumble 250 -k 4 -web-speakers 2"
	"3|Mumble only N=500 K=4 (reference)|-n 500 -k 4"
)

rows=()
commands=()
for run in "${runs[@]}"; do
	IFS='|' read -r num scenario flags <<<"$run"
	if [[ -n ${BENCH_ONLY:-} && " $BENCH_ONLY " != *" $num "* ]]; then continue; fi
	port=$(free_port)
	web_port=$(free_port)
	rtc_port=$(free_port)
	rm -rf "$tmp/plenum-data" "$tmp/plenum.log"
	write_plenum_config "$tmp/plenum.toml"
	sed -i -e "s/^web_listen = .*/web_listen = \"127.0.0.1:$web_port\"/" \
		-e "s/^web_udp_port = .*/web_udp_port = $rtc_port/" \
		-e "s/^web_tcp_port = .*/web_tcp_port = $rtc_port/" "$tmp/plenum.toml"
	log "run $num: $scenario"
	start_plenum "$port"
	# shellcheck disable=SC2206
	args=(-addr "127.0.0.1:$port" -web-url "ws://127.0.0.1:$web_port/ws" -timed "$timed" -seconds "$secs"
		-server-pid "$server_pid" -json "$tmp/result-$num.json" -scenario "$scenario" -label plenum $flags)
	commands+=("taskset -c 1 plenum-loadgen $flags -timed $timed -seconds $secs -addr 127.0.0.1:PORT -web-url ws://127.0.0.1:WEBPORT/ws -server-pid PID")
	if ! taskset -c 1 "$tmp/plenum-loadgen" "${args[@]}" >"$tmp/result-$num.txt" 2>"$tmp/loadgen-$num.log"; then
		cat "$tmp/loadgen-$num.log" >&2
		echo "run $num failed" >&2
		stop_server
		continue
	fi
	stop_server
	mixlog=$(grep -o 'msg="web mix".*' "$tmp/plenum.log" || true)
	rows+=("$(python3 - "$tmp/result-$num.json" "$mixlog" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
mix = sys.argv[2]
late = re.search(r'late_ticks_given_up=(\d+)', mix)
wake = re.search(r'latest_wake=(\S+)', mix)
web = r.get("web_clients", 0) > 0
def f(v, p=2): return f"{v:.{p}f}"
mumble_users = r.get("mumble_clients", r["clients"]) if web else r["clients"]
# Of one core over the speech and the 2 s drain after it.
cpu = r.get("server_cpu_pct") or (100 * r["server_cpu_s"] / (r["seconds"] + 2) if r["server_cpu_s"] >= 0 else None)
cells = [
    r["scenario"],
    f(r.get("web_loss_pct", 0)) if web else "–",
    f"{f(r['web_latency_p50_ms'])} / {f(r['web_latency_p99_ms'])} / {f(r['web_latency_max_ms'],1)}" if web else "–",
    f(r["loss_pct"]) if mumble_users > 1 or not web else "–",
    f"{f(r['latency_p50_ms'])} / {f(r['latency_p99_ms'])} / {f(r['latency_max_ms'],1)}" if r["expected"] else "–",
    f(cpu, 1) if cpu is not None else "n/a",
    f(cpu / r["clients"], 3) if cpu is not None else "n/a",
    f(r["sync_s"]),
    f(r["gen_cpu_pct"], 0) + (" (limit)" if r["generator_limited"] else "") + f", late {r['late_sends']}",
    (late.group(1) if late else "–") + (f", {wake.group(1)}" if wake else ""),
]
print("| " + " | ".join(cells) + " |")
PY
)")
	log "run $num done"
	cat "$tmp/result-$num.txt" >&2
done

cat <<EOF
Measured by \`scripts/bench-web.sh\` on $(date -u '+%Y-%m-%d %H:%M') UTC, Plenum built from commit $commit,
$secs s of speech per run, server on core 0 and generator on core 1 (\`taskset\`), one fresh server per run.
Load average before the first run: $(cut -d' ' -f1-3 /proc/loadavg).

| scenario | browsers' loss % | browsers' added latency p50 / p99 / max ms | Mumble listeners' loss % | Mumble listeners' latency p50 / p99 / max ms | server CPU % of a core | per user | connect all s | generator CPU %, late sends | mix ticks given up, latest wake |
|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|
EOF
printf '%s\n' "${rows[@]}"
echo
echo "Commands (PORT, WEBPORT and PID filled in by the script):"
echo
printf '    %s\n' "${commands[@]}"
echo
loadgen_reports
