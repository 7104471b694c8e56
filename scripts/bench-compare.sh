#!/usr/bin/env bash
# bench-compare.sh: Plenum and Debian's Murmur side by side on loopback.
#
#   scripts/bench-compare.sh            full run, writes docs/BENCHMARKS.md
#   scripts/bench-compare.sh -quick     smoke test: small N, 5 s per run
#
# Environment:
#   BENCH_SECONDS   speaking time per run (default 20; 5 with -quick)
#   BENCH_OUT       the Markdown file to write (default docs/BENCHMARKS.md;
#                   with -quick a file in the temp dir, printed at the end)
#   BENCH_ONLY      space-separated scenario numbers to run (1..6), e.g. "1 2"
#   MURMURD         Murmur binary (default /usr/sbin/murmurd)
#   PLENUM_SRC      build Plenum from this tree instead of the working tree
#   PLENUM_SRC_DESC how to describe that tree in the report
#   BENCH_KEEP      keep the temp dir (binaries, configs, raw JSON) if set
#
# Each server runs pinned to core 0 and the load generator to core 1
# (taskset); every scenario gets a freshly started server, Plenum first,
# then Murmur, back to back. Every process started here is stopped on exit.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
src=${PLENUM_SRC:-$repo}
quick=0
if [[ ${1:-} == -quick ]]; then quick=1; shift; fi
if [[ $# -gt 0 ]]; then echo "usage: $0 [-quick]" >&2; exit 2; fi

secs=${BENCH_SECONDS:-$([[ $quick == 1 ]] && echo 5 || echo 20)}
murmurd=${MURMURD:-/usr/sbin/murmurd}
tmp=$(mktemp -d /tmp/bench-compare.XXXXXX)
out=${BENCH_OUT:-$([[ $quick == 1 ]] && echo "$tmp/BENCHMARKS.md" || echo "$repo/docs/BENCHMARKS.md")}

source "$repo/scripts/bench-lib.sh"
cleanup() {
	stop_server
	# The temp dir holds the built binaries, configs and raw results; keep
	# it only when asked to.
	if [[ -z ${BENCH_KEEP:-} ]]; then rm -rf "$tmp"; else echo "kept $tmp" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ -x $murmurd ]] || { echo "$murmurd not found (apt-get install mumble-server)" >&2; exit 1; }
command -v taskset >/dev/null || { echo "taskset not found (util-linux)" >&2; exit 1; }
[[ $(nproc) -ge 2 ]] || { echo "needs 2 cores: server on 0, generator on 1" >&2; exit 1; }

log "building plenum and plenum-loadgen from $src"
(cd "$src" && go build -o "$tmp/plenum" ./cmd/plenum && go build -o "$tmp/plenum-loadgen" ./cmd/plenum-loadgen)

write_plenum_config "$tmp/plenum.toml"

# Scenarios: number name mode n k (quick mode shrinks n).
scenarios=(
	"1 udp 50 1"
	"2 udp 200 4"
	"3 udp 500 4"
	"4 udp 120 100"
	"5 tunnel 200 4"
	"6 storm 500 0"
)
if [[ $quick == 1 ]]; then
	scenarios=(
		"1 udp 10 1"
		"2 udp 40 4"
		"3 udp 80 4"
		"4 udp 30 20"
		"5 tunnel 40 4"
		"6 storm 80 0"
	)
fi

commands=()
results=()
for s in "${scenarios[@]}"; do
	read -r num mode n k <<<"$s"
	if [[ -n ${BENCH_ONLY:-} && " $BENCH_ONLY " != *" $num "* ]]; then continue; fi
	for server in plenum murmur; do
		port=$(free_port)
		log "scenario $num ($mode N=$n K=$k) against $server on port $port"
		"start_$server" "$port"
		sleep 1 # let it settle
		json="$tmp/result-$num-$server.json"
		args=(-addr "127.0.0.1:$port" -mode "$mode" -n "$n" -k "$k" -seconds "$secs"
			-server-pid "$server_pid" -label "$server" -name-prefix "lg$num-" -json "$json")
		if [[ $server == plenum ]]; then
			args+=(-server-metrics "http://127.0.0.1:$admin_port/metrics")
		fi
		commands+=("taskset -c 1 plenum-loadgen ${args[*]//$tmp\//}")
		if taskset -c 1 "$tmp/plenum-loadgen" "${args[@]}" >"$tmp/result-$num-$server.txt" 2>"$tmp/loadgen-$num-$server.log"; then
			results+=("$json")
		else
			log "run failed:"; cat "$tmp/loadgen-$num-$server.log" >&2
			echo "(run failed: $(tail -1 "$tmp/loadgen-$num-$server.log"))" >"$tmp/result-$num-$server.txt"
		fi
		cat "$tmp/result-$num-$server.txt" >&2
		stop_server
		sleep 1
	done
done

[[ ${#results[@]} -gt 0 ]] || { echo "no run succeeded" >&2; exit 1; }

src_desc() {
	local rev
	rev=$(cd "$src" && git rev-parse --short HEAD 2>/dev/null) || { echo "$src"; return; }
	echo "commit $rev$(cd "$src" && [[ -n $(git status --porcelain -- . ":!docs" 2>/dev/null) ]] && echo ' with uncommitted changes')"
}
murmur_version=$(dpkg-query -W -f='${Version}' mumble-server 2>/dev/null || true)
plenum_version=$(jq -r 'select(.server=="plenum") | .server_version' "${results[@]}" | head -1)
{
	echo "# Benchmarks: Plenum and Murmur side by side"
	echo
	echo "Measured by \`scripts/bench-compare.sh$([[ $quick == 1 ]] && echo " -quick")\` on $(date -u '+%Y-%m-%d %H:%M UTC')."
	echo "Rerunning the script replaces this file."
	echo
	echo "## Machine"
	echo
	hv=$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1)
	echo "- CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores${hv:+ (virtual machine, $hv)}"
	echo "- Kernel: $(uname -sr)"
	echo "- $(go version | sed 's/^go version //; s/^/Go /')"
	echo "- Murmur: Debian mumble-server $murmur_version (\`$murmurd\`), Plenum $plenum_version built from ${PLENUM_SRC_DESC:-$(src_desc)}"
	echo
	echo "## Setup"
	echo
	echo "- Both servers listen on 127.0.0.1, each pinned to core 0 (\`taskset -c 0\`); the load"
	echo "  generator (\`cmd/plenum-loadgen\`) is pinned to core 1 (\`taskset -c 1\`, so GOMAXPROCS=1)."
	echo "- Every scenario starts a fresh server, Plenum first, then Murmur; ${secs} s of speech per run."
	echo "- Murmur's ini: \`users=2000 usersperchannel=0 bandwidth=558000 messagelimit=100000"
	echo "  messageburst=100000 autobanAttempts=0 timeout=60\`. Plenum: its default configuration with"
	echo "  \`max_users = 2000\`, \`timeout = \"60s\"\` and the same message limits (bandwidth is 558000 in both)."
	echo "- Murmur 1.3.4 announces 1.3.4, so the (1.5) clients use the **legacy** UDP voice format with"
	echo "  Murmur and the **protobuf** format with Plenum, as real 1.5 clients would."
	echo "- K speakers send 50 packets/s each: 20 ms frames with 100 bytes of payload carrying the send time,"
	echo "  speaker and sequence, spread evenly over the 20 ms. Every listener decrypts, checks and times"
	echo "  every packet; *expected* is packets sent × (N−1) listeners, all clients being in one channel."
	echo "- Latency is the added one-way latency, generator clock to generator clock (same machine)."
	echo "  *Server CPU* is user+system time of the server process (/proc/PID/stat) from the first packet"
	echo "  to 2 s after the last; *In server* is Plenum's own histogram of the time UDP voice spent inside"
	echo "  the server, from the kernel's arrival timestamp until its copies were queued for sendmmsg (bucket"
	echo "  upper bounds, so \"≤\"); Murmur has no such measurement. *CPU µs/pkt* divides the server CPU"
	echo "  by the packets the server forwarded (received by"
	echo "  the listeners plus the kernel's receive-buffer drops at the generator's sockets); in brackets the"
	echo "  part spent in the server's own code (user time), the rest being the kernel's (system time,"
	echo "  mostly sending datagrams; on loopback that includes delivering them). *Peak RSS* is"
	echo "  VmHWM at the end of the run. *Sync* is the time from the first connection attempt until every"
	echo "  client has ServerSync and knows all N users (logins 32 at a time); for the storm it is the time"
	echo "  from dropping all N clients (rejoins spread over 3 s) until all are resynced, so it cannot be"
	echo "  below ~3 s. *TCP ping p99*: every client pings over TCP once a second during the speech (after"
	echo "  the storm: for 2 s); a ping that fails or takes over 5 s counts as 5 s."
	echo "- *Generator CPU %* is the generator's own CPU time over the same window, of its single core."
	echo "  \"(limit)\" marks runs where the generator used ≥ 90 % of its core, sent > 1 % of packets late,"
	echo "  or its sockets overflowed: there the generator, not only the server, limited the numbers."
	echo
	echo "## Results"
	echo
	"$tmp/plenum-loadgen" table "${results[@]}"
	echo
	echo "Ratios are Plenum / Murmur (below 1 is better for Plenum except for delivered packets/s)."
	echo
	echo "Channels that shape speech (loudest-N, mixing) at 100 simultaneous speakers, with real Opus:"
	echo "[STAGE-BENCHMARKS.md](STAGE-BENCHMARKS.md), from \`scripts/bench-stage.sh\`."
	echo
	echo "## Commands"
	echo
	echo '```'
	echo "scripts/bench-compare.sh$([[ $quick == 1 ]] && echo " -quick")   # BENCH_SECONDS=$secs"
	echo "taskset -c 0 plenum -config plenum.toml -listen 127.0.0.1:PORT -data plenum-data"
	echo "taskset -c 0 $murmurd -fg -ini murmur.ini"
	printf '%s\n' "${commands[@]}" | sed -E 's/-addr 127\.0\.0\.1:[0-9]+/-addr 127.0.0.1:PORT/; s/-server-pid [0-9]+/-server-pid PID/'
	echo '```'
	echo
	echo "## Raw reports"
	echo
	loadgen_reports
} >"$out.tmp"
mv "$out.tmp" "$out"
log "wrote $out"
if [[ $quick == 1 ]]; then cat "$out"; fi
