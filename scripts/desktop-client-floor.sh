#!/usr/bin/env bash
# desktop-client-floor.sh member|chair OUTDIR
#
# Floor control as the real Mumble desktop client sees it, as a member or
# as the chair. Plenum runs with a default channel "Hall" that is a
# floor-controlled hall (speaking_time 1m, floor_minutes); the desktop
# client (scripts/desktop-client.sh) joins it, transmits a 523 Hz tone, and
# types floor commands into its chat bar with xdotool while screenshots and
# /api/status snapshots are taken. Then the run is checked:
#
#   member  The client is suppressed; it writes !hand and is queued; the
#           chair (the admin API) gives it the floor with "next": it is
#           unsuppressed and its voice reaches the server and is routed
#           ("talking"); it is warned 30 s before the end and the floor is
#           revoked after 1 minute; the minutes hold the turn.
#   chair   The client's certificate is the chair (floor_groups and
#           MuteDeafen in the hall name its hash). Two generator members
#           in the hall talk all the time (plenum-loadgen -opus: tone-0000
#           a quiet 200 Hz, tone-0001 a loud 238 Hz) and are suppressed.
#           The client writes !queue, !give tone-0001, !give tone-0000,
#           !revoke and !muteall; what it plays is recorded and measured
#           per phase (scripts/wavlevels): nothing before the first !give,
#           then 238 Hz, then 200 Hz without 238 Hz, then nothing. (While
#           238 Hz is heard, its leakage hides a 200 Hz at 0.02, so that
#           phase relies on /api/status for tone-0000 not talking.)
#
#   OUTDIR/status-*.json    /api/status at each step
#   OUTDIR/ROLE-*.png       screenshots at each step
#   OUTDIR/heard.wav, phases.txt  (chair) what the client played, measured
#   OUTDIR/checks.txt       every check with its result (also printed)
#   OUTDIR/desktop-client*.png, mumble.log, plenum.log as the other scripts
#
# MUMBLE_CHROOT=DIR runs Mumble 1.5 from a chroot (see desktop-client.sh).
# Prerequisites: those of desktop-client.sh, plus Go, libopus, curl and jq.
# Not run in CI.
set -euo pipefail

if [[ $# -ne 2 || ($1 != member && $1 != chair) ]]; then
	echo "usage: $0 member|chair OUTDIR" >&2
	exit 2
fi
ROLE=$1
OUTDIR=$2
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
ensure_go
ensure_opus
for tool in curl jq openssl; do
	command -v "$tool" >/dev/null || { echo "desktop-client-floor: missing tool: $tool" >&2; exit 2; }
done
scratch_run desktop-client-floor
build_tools "$WORK"

# The desktop client's certificate, made here so the configuration can
# name the chair by its hash, as Mumble does ("$" and the SHA-1 of the DER).
USER_NAME=desk$ROLE
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$USER_NAME" \
	-keyout "$WORK/desk.key" -out "$WORK/desk.crt" 2>/dev/null
HASH=$(openssl x509 -in "$WORK/desk.crt" -outform DER | sha1sum | cut -d' ' -f1)
CHAIR='#chair' # an access token nobody has: the member run has no chair in the hall
[[ $ROLE == chair ]] && CHAIR="\$$HASH"

TOKEN=$(openssl rand -hex 16)
"$WORK/plenum" -print-default-config |
	sed -e 's/^default_channel = .*/default_channel = "Hall"/' -e "s/^admin_token = .*/admin_token = \"$TOKEN\"/" >"$WORK/plenum.toml"
cat >>"$WORK/plenum.toml" <<EOF

[[channel]]
name = "Hall"
description = "The hall. Write <b>!hand</b> to ask for the floor."
floor = true
floor_groups = ["$CHAIR"]
speaking_time = "1m"
floor_minutes = true

  [[channel.acl]]
  group = "$CHAIR"
  allow = ["MuteDeafen"]
EOF
PORT=$(free_port)
APORT=$(free_port)
"$WORK/plenum" -config "$WORK/plenum.toml" -listen "127.0.0.1:$PORT" -data "$WORK/data" \
	-admin-listen "127.0.0.1:$APORT" >"$WORK/plenum.log" 2>&1 &
PIDS+=($!)
wait_listening "$APORT"
export TOKEN APORT OUTDIR

if [[ $ROLE == chair ]]; then
	TALK_SECONDS=25
	# The members: two talking all the time, a third listening.
	"$WORK/plenum-loadgen" -addr "127.0.0.1:$PORT" -n 3 -k 2 -opus -seconds $((TALK_SECONDS + 60)) \
		-name-prefix tone- >"$WORK/loadgen.log" 2>&1 &
	PIDS+=($!)
	wait_talking "$WORK/loadgen.log"
else
	TALK_SECONDS=72
fi

# The steps, at fixed seconds after the client starts transmitting (and
# recording), so that the recording can be cut into phases.
cat >"$WORK/steps.sh" <<'EOF'
start=$(date +%s%3N)
at() { while [ $(($(date +%s%3N) - start)) -lt $(($1 * 1000)) ]; do sleep 0.05; done; }
status() { curl -s -m 5 -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$APORT/api/status" >"$OUTDIR/status-$1.json"; }
api() {
	curl -s -m 5 -H "Authorization: Bearer $TOKEN" -d "{\"channel\":\"Hall\",\"action\":\"$1\"}" \
		"http://127.0.0.1:$APORT/api/floor" >>"$OUTDIR/api.log"
	echo >>"$OUTDIR/api.log"
}
metric() { curl -s -m 5 "http://127.0.0.1:$APORT/metrics" | grep "^$1" >"$OUTDIR/metric-$2.txt"; }
# say TEXT types TEXT into the chat bar and notes when it was sent.
say() { $DESKTOP_SAY "$1"; echo "$(($(date +%s%3N) - start)) $1" >>"$OUTDIR/said.txt"; }
EOF
if [[ $ROLE == member ]]; then
	cat >>"$WORK/steps.sh" <<'EOF'
at 2; status 0-start; metric plenum_voice_dropped_total 0; $DESKTOP_SHOT member-0-suppressed
at 4; say '!hand'
at 5; xdotool mousemove 306 93 # over "Hall": its tooltip is the description, the queue below it
at 7; status 1-queued; $DESKTOP_SHOT member-1-queued
at 8; api next
at 10; status 2-floor; metric plenum_voice_dropped_total 2; $DESKTOP_SHOT member-2-floor
at 40; status 3-warned; $DESKTOP_SHOT member-3-warned
at 70; status 4-over; $DESKTOP_SHOT member-4-over
EOF
else
	cat >>"$WORK/steps.sh" <<'EOF'
at 1; status 0-start; $DESKTOP_SHOT chair-0-start
at 2; say '!queue'
at 5; say '!give tone-0001'
at 9; status 1-first
at 12; say '!give tone-0000'
at 16; status 2-second; $DESKTOP_SHOT chair-1-second
at 19; say '!revoke'
at 21; say '!muteall'
at 23; status 3-end; $DESKTOP_SHOT chair-2-end
EOF
fi

: >"$OUTDIR/said.txt" # a rerun into the same OUTDIR starts afresh
rc=0
CLIENT_CERT=$WORK/desk CLIENT_USER=$USER_NAME MIC_TONE=523 TALK_SECONDS=$TALK_SECONDS \
	RECORD_OUTPUT=$([[ $ROLE == chair ]] && echo "$OUTDIR/heard.wav") DURING_TALK="sh $WORK/steps.sh" \
	"$HERE/desktop-client.sh" "127.0.0.1:$PORT" "$OUTDIR" || rc=$?

# check WHAT JQ-FILTER FILE: the filter must give true on the file.
: >"$OUTDIR/checks.txt"
check() {
	local verdict=FAIL
	if [[ $(jq -r "$2" "$OUTDIR/$3" 2>/dev/null) == true ]]; then verdict=ok; else rc=1; fi
	echo "$verdict: $1" | tee -a "$OUTDIR/checks.txt"
}
me=".channels[] | select(.path == \"Hall\") | .users[] | select(.name == \"$USER_NAME\")"
hall='.channels[] | select(.path == "Hall")'
if [[ $ROLE == member ]]; then
	check "suppressed before asking" "[$me | .silenced and (.talking | not)] == [true]" status-0-start.json
	check "queued after !hand" "[$hall | .floor.queue] == [[\"$USER_NAME\"]]" status-1-queued.json
	check "holds the floor and is heard after next" "[$hall | .floor.holder == \"$USER_NAME\"] == [true] and [$me | .talking and (.silenced | not)] == [true]" status-2-floor.json
	check "still holds the floor at 40 s (speaking time 1m)" "[$hall | .floor.holder == \"$USER_NAME\" and .floor.left_s < 30] == [true]" status-3-warned.json
	check "floor revoked after a minute, suppressed again" "[$hall | .floor.holder == null] == [true] and [$me | .silenced and (.talking | not)] == [true]" status-4-over.json
	check "the minutes hold the turn, 60 s" "[$hall | .floor.minutes | length == 1 and .[0].name == \"$USER_NAME\" and (.[0].seconds | round) == 60] == [true]" status-4-over.json
	echo "voice dropped as silenced before the floor: $(cat "$OUTDIR/metric-0.txt" | grep silenced) -> $(cat "$OUTDIR/metric-2.txt" | grep silenced)" | tee -a "$OUTDIR/checks.txt"
else
	tone() { echo ".channels[] | select(.path == \"Hall\") | .users[] | select(.name == \"$1\")"; }
	check "members suppressed at the start" "[$(tone tone-0000) | .silenced] == [true] and [$(tone tone-0001) | .silenced] == [true]" status-0-start.json
	check "tone-0001 holds the floor after !give" "[$hall | .floor.holder] == [\"tone-0001\"] and [$(tone tone-0001) | .talking] == [true] and [$(tone tone-0000) | .talking] == [false]" status-1-first.json
	check "tone-0000 holds it after the second !give" "[$hall | .floor.holder] == [\"tone-0000\"] and [$(tone tone-0000) | .talking] == [true] and [$(tone tone-0001) | .talking] == [false]" status-2-second.json
	check "revoked, everyone muted, two turns in the minutes" "[$hall | .floor.holder == null and .floor.mute_all and (.floor.minutes | map(.name)) == [\"tone-0001\", \"tone-0000\"]] == [true]" status-3-end.json
	# The recording starts with the steps. Typing a command takes about
	# 1.5 s (two clicks, 40 ms a key), so each phase starts 2.5 s after its
	# command is due; said.txt shows when each was actually sent.
	phases=(
		"nothing before the first !give|-skip 0.5s -length 4s -absent 200,238"
		"tone-0001 (238 Hz) after !give tone-0001|-skip 7.5s -length 4s -present 238"
		"tone-0000 (200 Hz) and not tone-0001 after !give tone-0000|-skip 14.5s -length 4s -present 200 -absent 238"
		"nothing after !revoke|-skip 21.5s -length 3s -absent 200,238"
	)
	{ echo "== commands sent (ms after the start)"; cat "$OUTDIR/said.txt"; } >"$OUTDIR/phases.txt"
	for p in "${phases[@]}"; do
		what=${p%%|*}
		echo "== $what" >>"$OUTDIR/phases.txt"
		# shellcheck disable=SC2086 # the flags are words
		if "$WORK/wavlevels" ${p#*|} "$OUTDIR/heard.wav" 523 >>"$OUTDIR/phases.txt" 2>&1; then
			echo "ok: heard $what" | tee -a "$OUTDIR/checks.txt"
		else
			echo "FAIL: heard $what" | tee -a "$OUTDIR/checks.txt"
			rc=1
		fi
	done
	cat "$OUTDIR/phases.txt"
fi
exit "$rc"
