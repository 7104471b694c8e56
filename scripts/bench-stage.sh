#!/usr/bin/env bash
# bench-stage.sh: 120 clients with 100 talking at once, forwarded, shaped
# by loudest-N and mixed, side by side with Murmur, with real Opus.
#
#   scripts/bench-stage.sh           writes docs/STAGE-BENCHMARKS.md
#
# Environment:
#   BENCH_SECONDS  speaking time per run (default 20)
#   BENCH_OUT      the Markdown file to write (default docs/STAGE-BENCHMARKS.md)
#   BENCH_ONLY     space-separated run numbers (1..7)
#   MURMURD        Murmur binary (default /usr/sbin/murmurd)
#   BENCH_KEEP     keep the temp dir if set
#
# Servers run pinned to core 0, the generator to core 1, one fresh server
# per run (see bench-compare.sh, whose server setup this shares). Speakers
# send real Opus (plenum-loadgen -opus: a tone each, their loudness spread
# over 28 dB), since a shaping channel decodes what it gets.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/scripts/lib.sh"
ensure_go
ensure_opus
secs=${BENCH_SECONDS:-20}
murmurd=${MURMURD:-/usr/sbin/murmurd}
tmp=$(mktemp -d /tmp/bench-stage.XXXXXX)
out=${BENCH_OUT:-$repo/docs/STAGE-BENCHMARKS.md}
source "$repo/scripts/bench-lib.sh"
cleanup() {
	stop_server
	if [[ -z ${BENCH_KEEP:-} ]]; then rm -rf "$tmp"; else echo "kept $tmp" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

[[ -x $murmurd ]] || { echo "$murmurd not found (apt-get install mumble-server)" >&2; exit 1; }
[[ $(nproc) -ge 2 ]] || { echo "needs 2 cores: server on 0, generator on 1" >&2; exit 1; }

log "building plenum and plenum-loadgen from $repo"
(cd "$repo" && go build -o "$tmp/plenum" ./cmd/plenum && go build -o "$tmp/plenum-loadgen" ./cmd/plenum-loadgen)

# plenum_config FILE KEYS: everyone starts in channel "Bench", whose table
# gets KEYS (TOML lines separated by ';').
plenum_config() {
	write_plenum_config "$1"
	sed -i 's/^default_channel = .*/default_channel = "Bench"/' "$1"
	printf '\n[[channel]]\nname = "Bench"\n%s\n' "$(tr ';' '\n' <<<"$2")" >>"$1"
}

# Runs: number server n k scenario-label channel-keys loadgen-flags.
runs=(
	"1|murmur|120|100|forward N=120 K=100||"
	"2|plenum|120|100|forward N=120 K=100||"
	"3|murmur|120|8|forward N=120 K=8||"
	"4|plenum|120|8|forward N=120 K=8||"
	"5|plenum|120|100|loudest-8 N=120 K=100|max_speakers = 8|-loudest 8"
	"6|plenum|120|100|mix N=120 K=100|mix = true|-mixed"
	"7|plenum|120|100|mix loudest-8 N=120 K=100|mix = true;max_speakers = 8|-mixed"
)

commands=()
results=()
for spec in "${runs[@]}"; do
	IFS='|' read -r num server n k label keys flags <<<"$spec"
	if [[ -n ${BENCH_ONLY:-} && " $BENCH_ONLY " != *" $num "* ]]; then continue; fi
	port=$(free_port)
	log "run $num: $label against $server on port $port"
	if [[ $server == plenum ]]; then
		plenum_config "$tmp/plenum-$num.toml" "$keys"
		start_plenum "$port" "$tmp/plenum-$num.toml"
	else
		start_murmur "$port"
	fi
	sleep 1
	json="$tmp/result-$num.json"
	# shellcheck disable=SC2206 # flags is a list of words
	args=(-addr "127.0.0.1:$port" -n "$n" -k "$k" -seconds "$secs" -opus $flags
		-server-pid "$server_pid" -label "$server" -scenario "$label" -name-prefix "st$num-" -json "$json")
	if [[ $server == plenum ]]; then
		args+=(-server-metrics "http://127.0.0.1:$admin_port/metrics")
	fi
	commands+=("taskset -c 1 plenum-loadgen ${args[*]//$tmp\//}   # channel: ${keys:-plain}")
	if taskset -c 1 "$tmp/plenum-loadgen" "${args[@]}" >"$tmp/result-$num.txt" 2>"$tmp/loadgen-$num.log"; then
		results+=("$json")
	else
		log "run failed:"; cat "$tmp/loadgen-$num.log" >&2
		echo "(run failed: $(tail -1 "$tmp/loadgen-$num.log"))" >"$tmp/result-$num.txt"
	fi
	cat "$tmp/result-$num.txt" >&2
	stop_server
	sleep 1
done
[[ ${#results[@]} -gt 0 ]] || { echo "no run succeeded" >&2; exit 1; }

rev=$(cd "$repo" && git rev-parse --short HEAD)$(cd "$repo" && [[ -n $(git status --porcelain -- . ":!docs") ]] && echo ' with uncommitted changes' || true)
{
	echo "# Benchmarks: shaping 100 simultaneous speakers"
	echo
	echo "Measured by \`scripts/bench-stage.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), Plenum built from commit $rev,"
	echo "Murmur: Debian mumble-server $(dpkg-query -W -f='${Version}' mumble-server 2>/dev/null || true)."
	echo "Rerunning the script replaces this file. See [STAGE.md](STAGE.md) for what the settings do."
	echo
	hv=$(lscpu | sed -n 's/^Hypervisor vendor: *//p' | head -1)
	echo "- Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores${hv:+ (virtual machine, $hv)}, $(uname -sr)."
	echo "- Server on core 0, generator on core 1; a fresh server per run; ${secs} s of speech per run."
	echo "- Speakers send real Opus (\`-opus\`): 20 ms CBR frames of a tone each, loudness spread over 28 dB,"
	echo "  about 100 bytes, the generator's header in the Opus padding."
	echo "- *Expected* depends on the channel: forwarding, every packet to the N−1 others; loudest-8, eight"
	echo "  streams to everyone (N−1 copies of 8/K of what was sent); mixing, one mixed packet per 20 ms per"
	echo "  client, and the loss counts the frames missing between those received (a mix has no send time,"
	echo "  so its latency column is empty or only covers the few direct packets around mode changes)."
	echo
	"$tmp/plenum-loadgen" table "${results[@]}"
	echo
	echo "## Commands"
	echo
	echo '```'
	echo "scripts/bench-stage.sh   # BENCH_SECONDS=$secs"
	printf '%s\n' "${commands[@]}" | sed -E 's/-addr 127\.0\.0\.1:[0-9]+/-addr 127.0.0.1:PORT/; s/-server-pid [0-9]+/-server-pid PID/; s/-server-metrics [^ ]+/-server-metrics URL/'
	echo '```'
	echo
	loadgen_reports
} >"$out.tmp"
mv "$out.tmp" "$out"
log "wrote $out"
