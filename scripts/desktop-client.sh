#!/usr/bin/env bash
# desktop-client.sh HOST:PORT OUTDIR
#
# Drives Debian's real Mumble desktop client (1.3.x; with MUMBLE_CHROOT, 1.5.x
# from a Debian 13 chroot) headless against a Mumble server (Plenum or Murmur)
# and collects evidence that it works end to end:
#
#   OUTDIR/desktop-client.png   screenshot of the client window (channel tree)
#   OUTDIR/desktop-client-mid.png  the same, halfway through transmitting
#   OUTDIR/udp.txt              tcpdump decode of the UDP traffic on the server port
#   OUTDIR/mumble.log           the client's own console log
#   OUTDIR/summary.txt          the one-line verdict also printed on stdout
#   OUTDIR/client-udp-port.txt  the client's local UDP port (to tell clients
#                               apart in udp.txt when several share a server)
#
# How it works: a private Xvfb display, a private PulseAudio daemon whose
# null sink "mic" carries a looping espeak-ng + sox test signal (Mumble records
# from mic.monitor), a throw-away HOME holding a pre-written Mumble.conf
# (continuous transmission, no audio wizard, no TTS, no update checks, no
# overlay) and a pre-made client certificate (so no certificate wizard), and
# the server's certificate digest pre-seeded into the client's database (so no
# "accept this certificate?" dialog; if one shows up anyway it is answered
# with xdotool). tcpdump counts the UDP datagrams between client and server.
#
# Exit status: 0 if the client connected and sent voice-sized UDP datagrams
# to the server (and, with REQUIRE_HEARD=1, received voice-sized UDP datagrams
# from it, i.e. heard someone else over UDP), non-zero otherwise. The whole
# run is bounded (~1 minute).
#
# Prerequisites (Debian 12; needs root for tcpdump):
#   apt-get install mumble mumble-server xvfb pulseaudio pulseaudio-utils sox \
#       espeak-ng xdotool imagemagick tcpdump openssl sqlite3
#
# Not run in CI. See scripts/desktop-client-murmur.sh for a run against Murmur.
#
# Environment knobs:
#   TALK_SECONDS   how long the client transmits after connecting (default 10)
#   CLIENT_USER    the username the client connects with (default deskuser)
#   CONNECT_SECONDS how long to wait for the server's first UDP answer (default 30)
#   PRESEED_CERT=0 do not pre-accept the server certificate; answer the dialog instead
#   KEEP_WORKDIR=1 keep the temporary directory for debugging
#   REQUIRE_HEARD=1 also fail unless the server sent this client voice over UDP
#   MIC_TONE=HZ    feed the client's microphone a pure tone of HZ instead of
#                  speech and a 440 Hz tone (to tell its own voice apart in
#                  what it hears)
#   RECORD_OUTPUT=FILE record what the client plays (its speakers) to the
#                  WAV FILE (48 kHz mono) while it transmits
#   CLIENT_CERT=PREFIX use the client certificate PREFIX.crt with its key
#                  PREFIX.key (PEM) instead of a fresh one, so that a server
#                  configuration can name it by its hash ("$<sha1>")
#   DURING_TALK=CMD run the shell command CMD while the client transmits,
#                  started with the recording; the talk lasts at least
#                  TALK_SECONDS and waits for CMD (at most 10 s more). CMD
#                  sees DESKTOP_SAY, a command that types its argument into
#                  the client's chat bar and sends it (a message to the
#                  channel the client is in), and DESKTOP_SHOT, a command
#                  that saves a screenshot as OUTDIR/ARG.png
#   MUMBLE_CHROOT=DIR run the client from the Debian 13 chroot DIR made by
#                  scripts/trixie-chroot.sh (Mumble 1.5). Only mumble itself
#                  runs inside; Xvfb, PulseAudio and tcpdump run on the host and
#                  reach it through the chroot's bind-mounted /tmp (which this
#                  script mounts if needed and unmounts again). Mumble 1.5 still
#                  reads the 1.3-style Mumble.conf written here (it migrates it
#                  to mumble_settings.json) and keeps the same mumble.sqlite.
set -euo pipefail

if [[ $# -ne 2 || "$1" != *:* ]]; then
	echo "usage: $0 HOST:PORT OUTDIR" >&2
	exit 2
fi
HOST=${1%:*}
PORT=${1##*:}
OUTDIR=$2
TALK_SECONDS=${TALK_SECONDS:-10}
CLIENT_USER=${CLIENT_USER:-deskuser}

MUMBLE_CHROOT=${MUMBLE_CHROOT:-}
HERE=$(cd "$(dirname "$0")" && pwd)
tools=(Xvfb pulseaudio pactl paplay xdotool import tcpdump sox espeak-ng openssl sqlite3 ss timeout)
if [[ -n $MUMBLE_CHROOT ]]; then
	[[ -x $MUMBLE_CHROOT/usr/bin/mumble ]] || {
		echo "desktop-client: no $MUMBLE_CHROOT/usr/bin/mumble (run scripts/trixie-chroot.sh)" >&2
		exit 2
	}
else
	tools+=(mumble)
fi
for tool in "${tools[@]}"; do
	command -v "$tool" >/dev/null || { echo "desktop-client: missing tool: $tool" >&2; exit 2; }
done

mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)
WORK=$(mktemp -d /tmp/desktop-client.XXXXXX)
PIDS=()
MOUNTED=() # bind mounts this run made in MUMBLE_CHROOT

log() { echo "desktop-client: $*" >&2; }

cleanup() {
	local rc=$?
	set +e
	# Stop what we started, newest first, politely then firmly.
	local i
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		kill -TERM "${PIDS[i]}" 2>/dev/null
	done
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		local alive=0
		for p in "${PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.3
	done
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	if ((${#MOUNTED[@]})); then
		TRIXIE_ROOT=$MUMBLE_CHROOT "$HERE/trixie-chroot.sh" umount "${MOUNTED[@]}"
	fi
	if [[ "${KEEP_WORKDIR:-0}" == 1 ]]; then
		log "work directory kept: $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for SECONDS COMMAND... : poll COMMAND every 0.2 s until it succeeds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		((SECONDS < deadline)) || return 1
		sleep 0.2
	done
}

# Everything the client and the sound server see lives under $WORK.
export HOME=$WORK/home
export XDG_CONFIG_HOME=$HOME/.config
export XDG_DATA_HOME=$HOME/.local/share
export XDG_CACHE_HOME=$HOME/.cache
export XDG_RUNTIME_DIR=$WORK/run
export PULSE_RUNTIME_PATH=$WORK/run/pulse
export PULSE_STATE_PATH=$WORK/pulse-state
export PULSE_SERVER=unix:$PULSE_RUNTIME_PATH/native
# Keep Mumble's JACK backend from trying to start a JACK server.
export JACK_NO_START_SERVER=1
unset DBUS_SESSION_BUS_ADDRESS WAYLAND_DISPLAY
mkdir -p "$XDG_CONFIG_HOME/Mumble" "$XDG_DATA_HOME" "$HOME/Documents" "$PULSE_RUNTIME_PATH" "$PULSE_STATE_PATH"
chmod 700 "$XDG_RUNTIME_DIR"

# --- 1. X server ---------------------------------------------------------
# -displayfd makes Xvfb pick a free display itself and report its number,
# so concurrent runs cannot race for the same one.
Xvfb -displayfd 3 -screen 0 1024x768x24 -nolisten tcp -noreset 3>"$WORK/display" >"$WORK/xvfb.log" 2>&1 &
PIDS+=($!)
wait_for 10 grep -q '[0-9]' "$WORK/display" || { log "Xvfb did not start"; cat "$WORK/xvfb.log" >&2; exit 1; }
export DISPLAY=:$(tr -dc '0-9' <"$WORK/display")
wait_for 10 xdotool getdisplaygeometry || { log "Xvfb on $DISPLAY does not answer"; cat "$WORK/xvfb.log" >&2; exit 1; }
log "Xvfb on $DISPLAY"

# --- 2. sound server with a fake microphone -------------------------------
# Mumble captures from mic.monitor; paplay plays the test signal into mic.
# Whatever Mumble plays back goes to the speakers null sink.
cat >"$WORK/pulse.pa" <<'EOF'
load-module module-native-protocol-unix
load-module module-null-sink sink_name=mic sink_properties=device.description=FakeMicrophone
load-module module-null-sink sink_name=speakers sink_properties=device.description=FakeSpeakers
set-default-sink speakers
set-default-source mic.monitor
EOF
# -n: ignore the system default.pa; root needs no --system with a private runtime path.
pulseaudio -n --daemonize=no --exit-idle-time=-1 --use-pid-file=no --disallow-exit \
	--disable-shm=yes -F "$WORK/pulse.pa" >"$WORK/pulse.log" 2>&1 &
PIDS+=($!)
wait_for 10 pactl info || { log "PulseAudio did not start"; cat "$WORK/pulse.log" >&2; exit 1; }
log "PulseAudio at $PULSE_SERVER"

# A spoken sentence followed by a tone, repeated for longer than the run lasts.
espeak-ng -w "$WORK/speech.wav" "This is the Mumble desktop client talking to the server under test. One, two, three, four, five." 2>/dev/null
sox "$WORK/speech.wav" -r 48000 -c 1 "$WORK/speech48.wav"
sox -n -r 48000 -c 1 "$WORK/tone.wav" synth 1.5 sine 440 vol 0.5
sox "$WORK/speech48.wav" "$WORK/tone.wav" "$WORK/signal.wav" repeat 30
if [[ -n ${MIC_TONE:-} ]]; then
	sox -n -r 48000 -c 1 "$WORK/signal.wav" synth 600 sine "$MIC_TONE" vol 0.3
fi
paplay --device=mic "$WORK/signal.wav" >"$WORK/paplay.log" 2>&1 &
PIDS+=($!)

# --- 3. packet capture on the server port ----------------------------------
tcpdump -i any -n -U -w "$WORK/udp.pcap" "udp port $PORT" >"$WORK/tcpdump.log" 2>&1 &
TCPDUMP_PID=$!
PIDS+=($TCPDUMP_PID)
wait_for 10 grep -q "listening on" "$WORK/tcpdump.log" || { log "tcpdump did not start"; cat "$WORK/tcpdump.log" >&2; exit 1; }

# --- 4. client configuration ---------------------------------------------------
# A client certificate, so Mumble does not open its certificate wizard. Mumble
# imports ~/Documents/MumbleAutomaticCertificateBackup.p12 when it has none.
if [[ -n ${CLIENT_CERT:-} ]]; then
	cp "$CLIENT_CERT.key" "$WORK/client.key"
	cp "$CLIENT_CERT.crt" "$WORK/client.crt"
else
	openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=$CLIENT_USER" \
		-keyout "$WORK/client.key" -out "$WORK/client.crt" 2>/dev/null
fi
openssl pkcs12 -export -passout pass: -inkey "$WORK/client.key" -in "$WORK/client.crt" \
	-out "$HOME/Documents/MumbleAutomaticCertificateBackup.p12"

# The server's certificate digest, stored as if the user had already accepted it.
if [[ ${PRESEED_CERT:-1} == 1 ]] && digest=$(timeout 10 openssl s_client -connect "$HOST:$PORT" </dev/null 2>/dev/null |
	openssl x509 -outform DER 2>/dev/null | sha1sum | cut -d' ' -f1) &&
	[[ $digest != da39a3ee5e6b4b0d3255bfef95601890afd80709 ]]; then
	mkdir -p "$XDG_DATA_HOME/Mumble/Mumble"
	sqlite3 "$XDG_DATA_HOME/Mumble/Mumble/mumble.sqlite" \
		"CREATE TABLE IF NOT EXISTS cert (id INTEGER PRIMARY KEY AUTOINCREMENT, hostname TEXT, port INTEGER, digest TEXT);
		 CREATE UNIQUE INDEX IF NOT EXISTS cert_host_port ON cert(hostname, port);
		 INSERT OR REPLACE INTO cert (hostname, port, digest) VALUES ('$HOST', $PORT, '$digest');"
	log "server certificate sha1 $digest pre-accepted"
else
	log "server certificate not pre-accepted; will answer the dialog instead"
fi

# Settings keys as Mumble 1.3 reads them (see its Settings.cpp).
# lastupdate=2 marks the config as current, which skips the audio wizard.
# audio/transmit=0 is Continuous.
cat >"$XDG_CONFIG_HOME/Mumble/Mumble.conf" <<EOF
[General]
lastupdate=2

[audio]
transmit=0
input=PulseAudio
output=PulseAudio
quality=40000
framesperpacket=2
pushclick=false
attenuateothers=false

[pulseaudio]
input=mic.monitor
output=speakers

[tts]
enable=false

[overlay]
enable=false

[ui]
username=$CLIENT_USER
updatecheck=false
plugincheck=false
usage=false
askonquit=false
hidetray=false
WindowLayout=0

[net]
reconnect=false
autoconnect=false
EOF

# --- 5. run the client ------------------------------------------------------
# Mumble 1.3 accepts mumble://[user[:password]@]host[:port][/channel...][?version=x.y.z];
# without version=1.2.0 or later it would not treat the URL as its own.
URL="mumble://$CLIENT_USER@$HOST:$PORT/?version=1.3.0"
MUMBLE=(mumble)
# Main window title: "Mumble -- 1.3.4" in 1.3; just "Mumble" in 1.5, the
# same as its message boxes.
MAIN_WINDOW='^Mumble -- '
if [[ -n $MUMBLE_CHROOT ]]; then
	# The chroot needs /tmp (our $WORK, the X and PulseAudio sockets), /dev and /proc.
	mapfile -t MOUNTED < <(TRIXIE_ROOT=$MUMBLE_CHROOT "$HERE/trixie-chroot.sh" mount)
	# chroot execs mumble, so $! is mumble's own pid; the environment passes through.
	MUMBLE=(chroot "$MUMBLE_CHROOT" /usr/bin/mumble)
	MAIN_WINDOW='^Mumble$'
fi
log "launching ${MUMBLE[*]} $URL"
"${MUMBLE[@]}" --multiple "$URL" >"$WORK/mumble.log" 2>&1 &
MUMBLE_PID=$!
PIDS+=($MUMBLE_PID)

# tcp_up: the client holds an established TCP connection to the server.
tcp_up() {
	ss -Htnp state established dst "$HOST_IP:$PORT" 2>/dev/null | grep -q "pid=$MUMBLE_PID,"
}
# udp_answered: the server has sent UDP to the client. A Mumble server only
# does that (echoing the client's UDP pings) after TLS, authentication and
# CryptSetup, so it is a server-independent sign of a completed handshake.
udp_answered() {
	tcpdump -r "$WORK/udp.pcap" -n "udp src port $PORT" 2>/dev/null | grep -q .
}
HOST_IP=$(getent ahostsv4 "$HOST" | awk 'NR == 1 {print $1}')
HOST_IP=${HOST_IP:-$HOST}

# Wait up to CONNECT_SECONDS for the UDP answer, answering any certificate
# question (a message box titled just "Mumble") with Yes on the way.
deadline=$((SECONDS + ${CONNECT_SECONDS:-30}))
answered=0
while ((SECONDS < deadline)); do
	kill -0 "$MUMBLE_PID" 2>/dev/null || { log "mumble exited early"; break; }
	for w in $(xdotool search --onlyvisible --name '^Mumble$' 2>/dev/null); do
		# In 1.5 that is the main window too; it is only a dialog when the
		# certificate was not pre-accepted.
		[[ -n $MUMBLE_CHROOT && -n ${digest:-} ]] && break
		log "answering dialog '$(xdotool getwindowname "$w" 2>/dev/null)' with Yes"
		xdotool windowfocus --sync "$w" key y 2>/dev/null || true
	done
	if udp_answered; then
		answered=1
		break
	fi
	sleep 0.5
done
# Fill the screen with the main window so the screenshots show the log and
# the channel tree at a readable size.
fill_screen() {
	for w in $(xdotool search --onlyvisible --name "$MAIN_WINDOW" 2>/dev/null); do
		xdotool windowmove "$w" 0 0 windowsize "$w" 1024 768 2>/dev/null || true
	done
}
# Helpers for DURING_TALK: typing into the chat bar, which sits at the
# bottom of the log pane, on the left of the full-screen window (1.3 and
# 1.5 alike), and a screenshot.
cat >"$WORK/say" <<'SAY'
#!/bin/sh
# A question the client asks (Mumble 1.5 asks once whether to keep the mute
# cue when a suppressed user speaks) is modal and would take the typing:
# answer it with its default button. It is the visible window that does not
# fill the screen.
for w in $(xdotool search --onlyvisible --name '^Mumble' 2>/dev/null); do
	width=$(xdotool getwindowgeometry "$w" | awk '/Geometry/ { split($2, g, "x"); print g[1] }')
	if [ "${width:-1024}" -lt 900 ]; then
		echo "desktop-client: answering dialog $w with Return" >&2
		xdotool windowfocus --sync "$w" key Return 2>/dev/null || true
		sleep 0.3
	fi
done
height=$(xdotool getdisplaygeometry | cut -d' ' -f2)
# Two clicks: the first one can be taken for activating the window.
xdotool mousemove 120 $((height - 20)) click 1 sleep 0.5 click 1 sleep 0.3 type --delay 40 "$1"
xdotool key Return
SAY
printf '#!/bin/sh\ntimeout 20 import -window root "%s/$1.png"\n' "$OUTDIR" >"$WORK/shot"
chmod +x "$WORK/say" "$WORK/shot"
export DESKTOP_SAY=$WORK/say DESKTOP_SHOT=$WORK/shot

# talk: transmit for TALK_SECONDS, with a screenshot halfway through, and
# DURING_TALK alongside.
talk() {
	local half=$((TALK_SECONDS / 2)) rec= hook=
	fill_screen
	if [[ -n ${RECORD_OUTPUT:-} ]]; then
		parecord --device=speakers.monitor --rate=48000 --channels=1 --format=s16le --file-format=wav "$RECORD_OUTPUT" &
		rec=$!
	fi
	if [[ -n ${DURING_TALK:-} ]]; then
		timeout $((TALK_SECONDS + 10)) sh -c "$DURING_TALK" &
		hook=$!
	fi
	sleep "$half"
	timeout 20 import -window root "$OUTDIR/desktop-client-mid.png" || log "screenshot failed"
	sleep $((TALK_SECONDS - half))
	if [[ -n $hook ]]; then
		wait "$hook" || log "DURING_TALK ended with status $?"
	fi
	if [[ -n $rec ]]; then
		kill -INT "$rec" 2>/dev/null || true
		wait "$rec" 2>/dev/null || true
	fi
}
if ((answered)); then
	log "server answered over UDP; transmitting for ${TALK_SECONDS}s"
	talk
elif tcp_up; then
	log "no UDP answer from the server within ${CONNECT_SECONDS:-30}s but TCP is up; transmitting anyway for ${TALK_SECONDS}s"
	talk
else
	log "not connected to the server after ${CONNECT_SECONDS:-30}s"
fi

# The client's UDP sockets ("0.0.0.0:40000", "[::]:40000"); the one that
# talked to the server is picked from the capture below.
CLIENT_UDP_PORTS=$(ss -Hunap 2>/dev/null | awk -v pid="pid=$MUMBLE_PID," 'index($0, pid) { n = split($4, a, ":"); print a[n] }')

# Still connected after talking? (A rejected client is disconnected by then.)
connected=0
tcp_up && connected=1

fill_screen
sleep 1
timeout 20 import -window root "$OUTDIR/desktop-client.png" || log "screenshot failed"
xdotool search --name . getwindowname %@ >"$OUTDIR/windows.txt" 2>/dev/null || true

# --- 6. evidence ---------------------------------------------------------------
kill -INT "$TCPDUMP_PID" 2>/dev/null || true # flush and stop the capture
for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$TCPDUMP_PID" 2>/dev/null || break; sleep 0.2; done
tcpdump -r "$WORK/udp.pcap" -n -tt >"$OUTDIR/udp.txt" 2>/dev/null || true
cp "$WORK/mumble.log" "$OUTDIR/mumble.log"

# Lines look like "<time> lo In IP 127.0.0.1.40000 > 127.0.0.1.64738: UDP, length 107".
# To the server: destination port is PORT. Encrypted UDP pings are ~8-12 bytes,
# Opus voice packets (40 kbit/s, 20 ms) ~100 bytes; 40 bytes separates them.
# With CLIENT_PORT, only datagrams from or to that client port count.
count_udp() { # count_udp to|from MIN_LENGTH [CLIENT_PORT]
	awk -v dir="$1" -v min="$2" -v port="$PORT" -v cport="${3:-}" '
		/ UDP, length / {
			for (i = 1; i <= NF; i++) if ($i == ">") { src = $(i - 1); dst = $(i + 1) }
			sub(/:$/, "", dst)
			sp = src; sub(/.*\./, "", sp)
			dp = dst; sub(/.*\./, "", dp)
			if ((dir == "to" && dp == port && (cport == "" || sp == cport)) ||
				(dir == "from" && sp == port && (cport == "" || dp == cport)))
				if ($NF + 0 > min) n++
		}
		END { print n + 0 }' "$OUTDIR/udp.txt"
}
cport=
for p in $CLIENT_UDP_PORTS; do
	if (($(count_udp to 0 "$p") > 0)); then cport=$p; break; fi
done
echo "${cport:-unknown}" >"$OUTDIR/client-udp-port.txt"
to_server=$(count_udp to 0 "$cport")
voice=$(count_udp to 40 "$cport")
from_server=$(count_udp from 0 "$cport")
heard=$(count_udp from 40 "$cport")

if ((connected)); then state=connected; else state="NOT connected"; fi
if [[ -n $MUMBLE_CHROOT ]]; then
	version=$(chroot "$MUMBLE_CHROOT" dpkg-query -W -f '${Version}' mumble 2>/dev/null || true)
	version="${version:-?} (chroot)"
else
	version=$(dpkg-query -W -f '${Version}' mumble 2>/dev/null || echo "?")
fi
summary="desktop client mumble $version ($CLIENT_USER, UDP port ${cport:-?}): $state, $to_server UDP datagrams to server ($voice voice-sized), $from_server UDP datagrams from server ($heard voice-sized), screenshot $OUTDIR/desktop-client.png"
echo "$summary" | tee "$OUTDIR/summary.txt"

((connected)) && ((voice > 0)) && { [[ ${REQUIRE_HEARD:-0} != 1 ]] || ((heard > 0)); }
