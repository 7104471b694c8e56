#!/usr/bin/env bash
# desktop-client-plenum.sh OUTDIR
#
# Builds cmd/plenum into a temporary directory, starts it on 127.0.0.1 and a
# free port with a throw-away data directory, and points the real Mumble
# desktop client at it (scripts/desktop-client.sh). Plenum's log is copied to
# OUTDIR/plenum.log.
#
# Prerequisites: Go, plus those of desktop-client.sh. Not run in CI.
# PLENUM_BIN=/path/to/plenum skips the build; extra plenum flags can be given
# in PLENUM_ARGS (e.g. PLENUM_ARGS="-debug"). MUMBLE_CHROOT=DIR (see
# desktop-client.sh) runs Mumble 1.5 from a chroot made by trixie-chroot.sh.
#
# PAIR_CHROOT=DIR instead runs two clients at once in the same channel, both
# transmitting: the host's Mumble 1.3.4 (OUTDIR/1.3, user desk13) and Mumble
# 1.5 from the chroot DIR (OUTDIR/1.5, user desk15). It passes only if each
# client sent voice over UDP and was sent voice over UDP by the server, i.e.
# each heard the other (Plenum translating between the legacy and protobuf
# UDP formats). TALK_SECONDS defaults to 20 then, and the screenshots taken
# halfway (desktop-client-mid.png) show both clients connected and talking.
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
OUTDIR=$1
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
source "$HERE/lib.sh"
scratch_run desktop-client-plenum

BIN=${PLENUM_BIN:-}
if [[ -z $BIN ]]; then
	(cd "$HERE/.." && go build -o "$WORK/plenum" ./cmd/plenum)
	BIN=$WORK/plenum
fi

PORT=$(free_port) || exit 1

mkdir -p "$WORK/data"
# shellcheck disable=SC2086 # PLENUM_ARGS is a list of flags
"$BIN" -listen "127.0.0.1:$PORT" -data "$WORK/data" ${PLENUM_ARGS:-} >"$WORK/plenum.log" 2>&1 &
PLENUM_PID=$!
PIDS+=("$PLENUM_PID")
wait_listening "$PORT" || { cat "$WORK/plenum.log" >&2; exit 1; }
echo "desktop-client-plenum: plenum (pid $PLENUM_PID) on 127.0.0.1:$PORT" >&2

rc=0
if [[ -n ${PAIR_CHROOT:-} ]]; then
	export TALK_SECONDS=${TALK_SECONDS:-20} REQUIRE_HEARD=1
	CLIENT_USER=desk13 MUMBLE_CHROOT= "$HERE/desktop-client.sh" "127.0.0.1:$PORT" "$OUTDIR/1.3" &
	PAIR_PIDS=($!)
	CLIENT_USER=desk15 MUMBLE_CHROOT=$PAIR_CHROOT "$HERE/desktop-client.sh" "127.0.0.1:$PORT" "$OUTDIR/1.5" &
	PAIR_PIDS+=($!)
	for p in "${PAIR_PIDS[@]}"; do wait "$p" || rc=$?; done
else
	"$HERE/desktop-client.sh" "127.0.0.1:$PORT" "$OUTDIR" || rc=$?
fi
grep -hE "user joined|user left|ERROR|WARN" "$WORK/plenum.log" >&2 || true
exit "$rc"
