#!/usr/bin/env bash
# status-page-1000.sh: the status page of a server with 1000 participants.
#
#   scripts/status-page-1000.sh            1000 clients; screenshots into docs/img
#
# Environment:
#   CLIENTS     clients of the load generator (default 1000)
#   SPEAKERS    of them speaking (default 4; one holds the floor)
#   HISTORY     how long to let the history fill before the check (default 90s)
#   SHOTS       where the screenshots go (default docs/img)
#   KEEP        keep the temp dir (binaries, config, logs) if set
#
# It runs Plenum on loopback with a hall that has floor control, fills it with plenum-loadgen's clients (real TLS and UDP,
# speakers sending Opus), gives the floor to the first speaker through the
# admin API, starts recording the hall (a live reload), lets the history
# fill, and then checks the status page in
# headless Chromium (internal/statuspagetest, TestARunningServer): the
# header's counts against /api/status, the filter finding lg-0917 alone,
# the hall listed in order once opened, the page's size and render time
# within their limits, and the event streams' bytes over 10 s. It writes
# the screenshots status-page-1000-{laptop,tablet,de,open}.png and prints
# the numbers. Not run by CI: it takes a few minutes and both cores.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/scripts/lib.sh"
ensure_go
ensure_opus
ensure_deb chromium chromium
if [[ ${1:-} == -h || ${1:-} == --help ]]; then sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0; fi

clients=${CLIENTS:-1000}
speakers=${SPEAKERS:-4}
history=${HISTORY:-90s}
shots=${SHOTS:-$repo/docs/img}
tmp=$(mktemp -d /tmp/status-page.XXXXXX)

server_pid=
loadgen_pid=
cleanup() {
	if [[ -n $loadgen_pid ]]; then kill -TERM "$loadgen_pid" 2>/dev/null || true; wait "$loadgen_pid" 2>/dev/null || true; fi
	if [[ -n $server_pid ]]; then stop_gracefully "$server_pid" || true; fi
	if [[ -z ${KEEP:-} ]]; then rm -rf "$tmp"; else echo "kept $tmp" >&2; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "$(date +%T) $*" >&2; }

log "building plenum and plenum-loadgen"
(cd "$repo" && go build -o "$tmp/plenum" ./cmd/plenum && go build -o "$tmp/plenum-loadgen" ./cmd/plenum-loadgen)

port=$(free_port)
admin_port=$(free_port)
while [[ $admin_port == "$port" ]]; do admin_port=$(free_port); done
token=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
admin=http://127.0.0.1:$admin_port

cat >"$tmp/plenary.toml" <<EOF
[server]
name = "Convention"
max_users = $((clients + 10))
default_channel = "Plenary"
admin_listen = "127.0.0.1:$admin_port"
admin_token = "$token"
allow_recording = true

[[channel]]
name = "Plenary"
floor = true
record = false

[[channel]]
name = "Press"

[[channel]]
name = "Tech desk"
EOF
"$tmp/plenum" check "$tmp/plenary.toml" >/dev/null

log "starting plenum on 127.0.0.1:$port (status page $admin)"
"$tmp/plenum" -config "$tmp/plenary.toml" -listen "127.0.0.1:$port" -data "$tmp/data" >"$tmp/plenum.log" 2>&1 &
server_pid=$!
wait_listening "$admin_port"

# Long enough for the clients to connect, the history to fill and the
# check to run; the script stops the generator when it is done.
log "connecting $clients clients, $speakers speaking (log: $tmp/loadgen.log)"
"$tmp/plenum-loadgen" -addr "127.0.0.1:$port" -n "$clients" -k "$speakers" -opus -seconds 3600 \
	>"$tmp/loadgen.txt" 2>"$tmp/loadgen.log" &
loadgen_pid=$!
for _ in $(seq 1 600); do
	grep -q "speakers talking" "$tmp/loadgen.log" && break
	kill -0 "$loadgen_pid" 2>/dev/null || { cat "$tmp/loadgen.log" >&2; exit 1; }
	sleep 0.5
done
grep -q "speakers talking" "$tmp/loadgen.log" || { cat "$tmp/loadgen.log" >&2; echo "the clients never spoke" >&2; exit 1; }

curl -sf -H "Authorization: Bearer $token" -d '{"channel":"Plenary","action":"give","arg":"lg-0000"}' "$admin/api/floor" >/dev/null
# Recording starts now, by a live reload: its virtual user would have
# made the generator's clients wait for one user more than it started.
sed -i 's/^record = false$/record = true/' "$tmp/plenary.toml"
log "lg-0000 has the floor, the hall records; letting the history fill for $history"
sleep "$history"

mkdir -p "$shots"
log "checking the page in Chromium"
(cd "$repo" && PLENUM_STATUS_PAGE=$admin PLENUM_ADMIN_TOKEN=$token PLENUM_FIND_ONE=lg-0917 PLENUM_SCREENSHOTS=$shots \
	go test -count=1 -v -run TestARunningServer ./internal/statuspagetest) | tee "$tmp/check.log"
grep -q -- '--- PASS: TestARunningServer' "$tmp/check.log"

echo
echo "Machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; $(uname -sr); $(chromium --version)"
echo "Server: $(grep -o 'VmRSS:.*' /proc/$server_pid/status)"
grep -o '[0-9]* participants:.*' "$tmp/check.log"
ls -1 "$shots"/status-page-1000-*.png
