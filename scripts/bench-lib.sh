# Shared by bench-compare.sh and bench-stage.sh (sourced, not run): start
# and stop Plenum and Debian's Murmur on loopback with equivalent settings,
# each pinned to core 0. The caller sets tmp (a temp dir holding the built
# plenum binary) and murmurd (the Murmur binary); server_pid and admin_port
# are set here.

server_pid=
admin_port=

stop_server() {
	if [[ -n $server_pid ]]; then
		kill -TERM "$server_pid" 2>/dev/null || true
		for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=
	fi
}

log() { echo "$(date +%T) $*" >&2; }

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 30000))
		if ! ss -Hltun "sport = :$p" | grep -q .; then echo "$p"; return; fi
	done
}

wait_tcp() { # port
	for _ in $(seq 300); do
		if timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; then return 0; fi
		kill -0 "$server_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# write_plenum_config FILE: Plenum's default configuration with Murmur's
# limits where they differ.
write_plenum_config() {
	mkdir -p "$tmp/plenum-data" "$tmp/murmur"
	"$tmp/plenum" -print-default-config |
		sed -e 's/^max_users = .*/max_users = 2000/' \
			-e 's/^timeout = .*/timeout = "60s"/' \
			-e 's/^message_limit = .*/message_limit = 100000/' \
			-e 's/^message_burst = .*/message_burst = 100000/' >"$1"
}

start_plenum() { # port [config]
	admin_port=$(free_port)
	taskset -c 0 "$tmp/plenum" -config "${2:-$tmp/plenum.toml}" -listen "127.0.0.1:$1" -data "$tmp/plenum-data" \
		-admin-listen "127.0.0.1:$admin_port" >>"$tmp/plenum.log" 2>&1 &
	server_pid=$!
	wait_tcp "$1" || { cat "$tmp/plenum.log" >&2; echo "plenum did not start" >&2; exit 1; }
}

start_murmur() { # port
	mkdir -p "$tmp/murmur"
	cat >"$tmp/murmur/murmur.ini" <<INI
host=127.0.0.1
port=$1
database=$tmp/murmur/murmur.sqlite
logfile=
pidfile=$tmp/murmur/murmur.pid
welcometext=
users=2000
usersperchannel=0
bandwidth=558000
messagelimit=100000
messageburst=100000
autobanAttempts=0
timeout=60
allowping=true
bonjour=false
registerName=
INI
	# As root, Debian's murmurd otherwise switches to mumble-server, which
	# cannot open a database in our temp dir.
	if [[ $(id -u) == 0 ]]; then echo "uname=root" >>"$tmp/murmur/murmur.ini"; fi
	(cd "$tmp/murmur" && exec taskset -c 0 "$murmurd" -fg -ini "$tmp/murmur/murmur.ini" >>"$tmp/murmur.log" 2>&1) &
	server_pid=$!
	wait_tcp "$1" || { cat "$tmp/murmur.log" >&2; echo "murmurd did not start" >&2; exit 1; }
}

# loadgen_reports prints every run's plenum-loadgen report ($tmp/result-*.txt)
# as one folded block of Markdown, for the end of a script's output.
loadgen_reports() {
	echo "<details><summary>plenum-loadgen output per run</summary>"
	echo
	echo '```'
	for f in "$tmp"/result-*.txt; do cat "$f"; echo; done
	echo '```'
	echo
	echo "</details>"
}
