#!/usr/bin/env bash
# desktop-client-mix.sh OUTDIR
#
# What the real Mumble desktop client hears in a mixed channel. Plenum runs
# with a default channel "Hall" that has mix = true; two generator clients
# (plenum-loadgen -opus) talk there, one a quiet 200 Hz tone and one a loud
# 238 Hz tone; then the desktop client (scripts/desktop-client.sh) joins,
# transmits a 523 Hz tone of its own (MIC_TONE) and records what it plays
# (RECORD_OUTPUT). scripts/wavlevels then measures the recording: the two
# generator tones must be there and the client's own tone must not (the
# mix it gets leaves its own voice out), with dropouts and the worst click.
#
#   OUTDIR/heard.wav     what the client played
#   OUTDIR/levels.txt    the measurement (also printed)
#   OUTDIR/desktop-client*.png, mumble.log, ... as desktop-client.sh leaves them
#
# MUMBLE_CHROOT=DIR runs Mumble 1.5 from a chroot (see desktop-client.sh).
# RECORD=1 also records the channel (record = true): the screenshots then
# show how the client displays it, and the recording is checked with
# opusinfo and copied to OUTDIR/recording.opus.
# TALK_SECONDS (default 20) is how long the client transmits and records.
# Prerequisites: those of desktop-client.sh, plus Go and libopus (scripts/run
# installs them). Not run in CI.
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
OUTDIR=$1
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
ensure_go
ensure_opus
scratch_run desktop-client-mix
TALK_SECONDS=${TALK_SECONDS:-20}
build_tools "$WORK"

"$WORK/plenum" -print-default-config | sed 's/^default_channel = .*/default_channel = "Hall"/' >"$WORK/plenum.toml"
printf '\n[[channel]]\nname = "Hall"\ndescription = "Mixed: everyone hears one stream."\nmix = true\n' >>"$WORK/plenum.toml"
if [[ -n ${RECORD:-} ]]; then
	sed -i 's/^allow_recording = .*/allow_recording = true/' "$WORK/plenum.toml"
	echo "record = true" >>"$WORK/plenum.toml"
fi
PORT=$(free_port)
"$WORK/plenum" -config "$WORK/plenum.toml" -listen "127.0.0.1:$PORT" -data "$WORK/data" -admin-listen off >"$WORK/plenum.log" 2>&1 &
PIDS+=($!)
wait_listening "$PORT"

# Two speakers, a third generator client listening; they talk for longer
# than the desktop client needs to connect and record.
"$WORK/plenum-loadgen" -addr "127.0.0.1:$PORT" -n 3 -k 2 -opus -mixed -seconds $((TALK_SECONDS + 45)) \
	-name-prefix tone- >"$WORK/loadgen.log" 2>&1 &
PIDS+=($!)
wait_talking "$WORK/loadgen.log"

rc=0
MIC_TONE=523 RECORD_OUTPUT="$OUTDIR/heard.wav" TALK_SECONDS=$TALK_SECONDS CLIENT_USER=deskmix \
	"$HERE/desktop-client.sh" "127.0.0.1:$PORT" "$OUTDIR" || rc=$?
if [[ -n ${RECORD:-} ]]; then
	stop_gracefully "${PIDS[0]}" || true # the server closes the recording on the way out
	rec=$(ls "$WORK"/data/recordings/*.opus | head -1)
	cp "$rec" "$OUTDIR/recording.opus"
	opusinfo "$OUTDIR/recording.opus" | tee "$OUTDIR/recording.txt" || rc=1
fi
"$WORK/wavlevels" -skip 3s -present 238 -absent 523 "$OUTDIR/heard.wav" 200 440 | tee "$OUTDIR/levels.txt" || rc=1
exit "$rc"
