#!/usr/bin/env bash
# desktop-client-murmur.sh OUTDIR
#
# Reference run for scripts/desktop-client.sh: starts Debian's Murmur
# (mumble-server 1.3.x) by hand on 127.0.0.1 and a free port, with its own ini,
# database and log in a temporary directory (never through systemd), then points
# the real Mumble desktop client at it. Murmur's log (its console
# output: with -fg it does not use the ini's logfile) is copied to OUTDIR/murmur.log.
#
# Prerequisites: those of desktop-client.sh plus `apt-get install mumble-server`.
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
MURMURD=${MURMURD:-/usr/sbin/murmurd}
command -v "$MURMURD" >/dev/null || { echo "missing $MURMURD (apt-get install mumble-server)" >&2; exit 2; }

mkdir -p "$OUTDIR"
WORK=$(mktemp -d /tmp/desktop-client-murmur.XXXXXX)
MURMUR_PID=

cleanup() {
	local rc=$?
	set +e
	if [[ -n $MURMUR_PID ]]; then
		stop_gracefully "$MURMUR_PID"
	fi
	# With -fg murmurd logs to its stderr rather than to the ini's logfile.
	cat "$WORK/murmurd.out" "$WORK/murmur.log" >"$OUTDIR/murmur.log" 2>/dev/null
	rm -rf "$WORK"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PORT=$(free_port) || exit 1

cat >"$WORK/murmur.ini" <<EOF
host=127.0.0.1
port=$PORT
database=$WORK/murmur.sqlite
logfile=$WORK/murmur.log
pidfile=
welcometext="desktop-client test server (Murmur)"
registerName=Murmur desktop-client test
users=10
bonjour=false
allowping=true
EOF

# Debian's murmurd, started as root, switches to the mumble-server user
# (its built-in default uname), so that user must own the work directory.
if [[ $EUID -eq 0 ]] && id mumble-server >/dev/null 2>&1; then
	chown mumble-server: "$WORK"
fi

"$MURMURD" -fg -ini "$WORK/murmur.ini" >"$WORK/murmurd.out" 2>&1 &
MURMUR_PID=$!

# Ready when it listens on the TCP port.
for _ in $(seq 1 50); do
	[[ -n $(ss -Htln "sport = :$PORT") ]] && break
	kill -0 "$MURMUR_PID" 2>/dev/null || { cat "$WORK/murmurd.out" "$WORK/murmur.log" >&2; exit 1; }
	sleep 0.2
done
[[ -n $(ss -Htln "sport = :$PORT") ]] || { echo "murmurd did not listen on $PORT" >&2; exit 1; }
echo "desktop-client-murmur: murmurd (pid $MURMUR_PID) on 127.0.0.1:$PORT" >&2

rc=0
"$HERE/desktop-client.sh" "127.0.0.1:$PORT" "$OUTDIR" || rc=$?

# Murmur's own view of the session.
grep -hE "New connection|Authenticated|Connection closed" "$WORK/murmurd.out" "$WORK/murmur.log" >&2 2>/dev/null || true
exit "$rc"
