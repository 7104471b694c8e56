# Helpers shared by the scripts (sourced, not run).

# ensure_go makes sure a Go toolchain new enough for go.mod is on PATH.
ensure_go() {
	if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
		export PATH="/usr/local/go/bin:$PATH"
	fi
	if ! command -v go >/dev/null 2>&1; then
		echo "Plenum needs Go 1.26 or newer: install it to /usr/local/go (https://go.dev/doc/install)" >&2
		exit 1
	fi
}

# ensure_deb COMMAND PACKAGE installs a Debian package when COMMAND is
# missing, if we are root and apt-get exists. Fails (status 1) otherwise.
ensure_deb() {
	local cmd=$1 pkg=$2
	if command -v "$cmd" >/dev/null 2>&1 || [[ -x "/usr/sbin/$cmd" ]]; then
		return 0
	fi
	install_deb "$pkg"
}

# install_deb PACKAGE... installs Debian packages if we are root and apt-get
# exists, without starting any service they bring. Fails (status 1) otherwise.
install_deb() {
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		return 1
	fi
	echo "installing $* ..."
	# policy-rc.d keeps a package from starting its own service.
	local policy=/usr/sbin/policy-rc.d created=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
	fi
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >/dev/null 2>&1
	local status=$?
	[[ -n $created ]] && rm -f "$policy"
	return $status
}

# ensure_opus makes sure the C libraries github.com/hraban/opus builds
# against are there: libopus, and libopusfile, which the package links for
# reading Ogg Opus. Installs Debian's -dev packages when they are missing
# and we may; fails with what to install otherwise.
ensure_opus() {
	if pkg-config --exists opus opusfile 2>/dev/null; then
		return 0
	fi
	install_deb pkg-config libopus-dev libopusfile-dev || true
	if ! pkg-config --exists opus opusfile 2>/dev/null; then
		echo "Plenum needs libopus and libopusfile to build: apt-get install pkg-config libopus-dev libopusfile-dev" >&2
		exit 1
	fi
}

# stop_gracefully PID: SIGTERM, up to 3 s to exit, then SIGKILL; waits for it.
stop_gracefully() {
	local pid=$1
	kill -TERM "$pid" 2>/dev/null
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.3
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

# free_port prints a loopback port free for both TCP and UDP (Mumble servers
# use one number for both), or fails.
free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 40000))
		if [[ -z $(ss -Htuln "sport = :$p") ]]; then
			echo "$p"
			return 0
		fi
	done
	echo "no free port found" >&2
	return 1
}

# --- for the desktop-client-*.sh wrappers that run their own server -------

# scratch_run NAME: OUTDIR made absolute; WORK, a scratch directory; PIDS,
# the processes to stop. On exit they are stopped, WORK's plenum.log and
# loadgen.log are copied to OUTDIR, and WORK is removed.
scratch_run() {
	mkdir -p "$OUTDIR"
	OUTDIR=$(cd "$OUTDIR" && pwd)
	WORK=$(mktemp -d "/tmp/$1.XXXXXX")
	PIDS=()
	trap scratch_cleanup EXIT
	trap 'exit 130' INT TERM
}

scratch_cleanup() {
	local rc=$?
	set +e
	for p in "${PIDS[@]}"; do stop_gracefully "$p"; done
	cp "$WORK/plenum.log" "$WORK/loadgen.log" "$OUTDIR/" 2>/dev/null
	rm -rf "$WORK"
	exit "$rc"
}

# build_tools DIR builds plenum, plenum-loadgen and wavlevels into DIR.
build_tools() {
	(cd "$(dirname "${BASH_SOURCE[0]}")/.." && go build -o "$1/plenum" ./cmd/plenum &&
		go build -o "$1/plenum-loadgen" ./cmd/plenum-loadgen && go build -o "$1/wavlevels" ./scripts/wavlevels)
}

# wait_listening PORT waits up to 10 s for a TCP listener on PORT.
wait_listening() {
	for _ in $(seq 1 50); do
		[[ -n $(ss -Htln "sport = :$1") ]] && return 0
		sleep 0.2
	done
	echo "nothing listens on port $1" >&2
	return 1
}

# wait_talking LOG waits up to 20 s for the load generator writing LOG to
# have its speakers talking; on failure it shows the log.
wait_talking() {
	for _ in $(seq 1 100); do
		grep -q "speakers talking" "$1" && return 0
		sleep 0.2
	done
	cat "$1" >&2
	return 1
}
