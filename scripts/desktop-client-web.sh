#!/usr/bin/env bash
# desktop-client-web.sh OUTDIR
#
# The real Mumble desktop client and a browser on the join page in one
# channel hear each other. Plenum runs with its web listener on loopback
# and "Plenary" as the default channel; the desktop client
# (scripts/desktop-client.sh) joins it and transmits a 523 Hz tone
# (MIC_TONE), recording what it plays; meanwhile headless Chromium (the
# test TestDesktopPeer in web/browsertest, its fake microphone a 1000 Hz
# tone) opens http://127.0.0.1:PORT/?channel=Plenary, joins, and measures
# what it receives with WebAudio. Then scripts/wavlevels measures the
# desktop client's recording (from 4 s to 12 s, while the browser talks):
# the browser's 1000 Hz must be there, its own
# 523 Hz must not.
#
#   OUTDIR/heard.wav, levels.txt  what the desktop client played, measured
#   OUTDIR/browser.txt, browser.png  what the browser heard, and the page
#   OUTDIR/desktop-client*.png, mumble.log, plenum.log as the other scripts
#   OUTDIR/checks.txt  the verdicts (also printed)
#
# MUMBLE_CHROOT=DIR runs Mumble 1.5 from a chroot (see desktop-client.sh).
# Prerequisites: those of desktop-client.sh, plus Go, libopus and chromium.
# Not run in CI.
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
command -v chromium >/dev/null || { echo "desktop-client-web: missing chromium (apt-get install chromium)" >&2; exit 2; }
scratch_run desktop-client-web
TALK_SECONDS=${TALK_SECONDS:-20}
build_tools "$WORK"
(cd "$HERE/.." && go test -c -o "$WORK/browsertest" ./web/browsertest)

PORT=$(free_port)
WPORT=$(free_port)
RTCPORT=$(free_port)
"$WORK/plenum" -print-default-config |
	sed -e 's/^default_channel = .*/default_channel = "Plenary"/' \
		-e "s/^web_listen = .*/web_listen = \"127.0.0.1:$WPORT\"/" \
		-e "s/^web_udp_port = .*/web_udp_port = $RTCPORT/" \
		-e "s/^web_tcp_port = .*/web_tcp_port = $RTCPORT/" >"$WORK/plenum.toml"
"$WORK/plenum" -config "$WORK/plenum.toml" -listen "127.0.0.1:$PORT" -data "$WORK/data" -admin-listen off >"$WORK/plenum.log" 2>&1 &
PIDS+=($!)
wait_listening "$PORT"
wait_listening "$WPORT"

# The browser, while the desktop client transmits: it must be done
# within TALK_SECONDS plus the 10 s desktop-client.sh waits for it.
cat >"$WORK/browser.sh" <<BROWSER
cd "$HERE/../web/browsertest" && PLENUM_WEB_PEER_URL="http://localhost:$WPORT/?channel=Plenary" \
	PLENUM_WEB_PEER_OUT="$OUTDIR" PLENUM_WEB_PEER_TONE=1000 PLENUM_WEB_PEER_HEAR=523 \
	PLENUM_WEB_PEER_SECONDS=$((TALK_SECONDS - 8)) "$WORK/browsertest" -test.run '^TestDesktopPeer\$' -test.v >"$OUTDIR/browser.log" 2>&1
BROWSER

rc=0
MIC_TONE=523 RECORD_OUTPUT="$OUTDIR/heard.wav" TALK_SECONDS=$TALK_SECONDS CLIENT_USER=deskweb \
	DURING_TALK="sh $WORK/browser.sh" "$HERE/desktop-client.sh" "127.0.0.1:$PORT" "$OUTDIR" || rc=$?

: >"$OUTDIR/checks.txt"
check() { # check WHAT COMMAND...
	if "${@:2}" >>"$OUTDIR/checks.txt" 2>&1; then
		echo "ok    $1" | tee -a "$OUTDIR/checks.txt"
	else
		echo "FAIL  $1" | tee -a "$OUTDIR/checks.txt"
		rc=1
	fi
}
check "the browser heard the desktop client's 523 Hz (browser.txt)" grep -q '^browser: heard 523 Hz' "$OUTDIR/browser.txt"
"$WORK/wavlevels" -skip 4s -length 8s -present 1000 -absent 523 "$OUTDIR/heard.wav" >"$OUTDIR/levels.txt" 2>&1 || true
check "the desktop client heard the browser's 1000 Hz and not its own 523 Hz (levels.txt)" \
	"$WORK/wavlevels" -skip 4s -length 8s -present 1000 -absent 523 "$OUTDIR/heard.wav"
cat "$OUTDIR/browser.txt" "$OUTDIR/levels.txt" 2>/dev/null || true
exit "$rc"
