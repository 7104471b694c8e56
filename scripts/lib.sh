# Helpers shared by the scripts (sourced, not run).

# ensure_go makes sure a Go toolchain at least as new as go.mod's go line
# is on PATH, or says in one sentence what is missing. (A toolchain line,
# if go.mod ever gets one, is only a preference: any Go at or above the go
# line builds Plenum.)
ensure_go() {
	if ! command -v go >/dev/null 2>&1 && [[ -x /usr/local/go/bin/go ]]; then
		export PATH="/usr/local/go/bin:$PATH"
	fi
	local want have
	want=$(sed -n 's/^go \([0-9][0-9.]*\).*/\1/p' "$(dirname "${BASH_SOURCE[0]}")/../go.mod")
	if ! command -v go >/dev/null 2>&1; then
		echo "Plenum needs Go $want or newer (go.mod) and there is no go command: install it to /usr/local/go (https://go.dev/doc/install)" >&2
		exit 1
	fi
	# Outside the module, so that Go reports its own version instead of
	# switching to the one go.mod asks for first.
	have=$(cd / && GOTOOLCHAIN=local go env GOVERSION)
	have=${have#go}
	have=${have%%[!0-9.]*}
	if [[ -n $have ]] && ! version_at_least "$have" "$want"; then
		case $(cd / && go env GOTOOLCHAIN) in
		auto | *+auto) ;; # go downloads the Go that go.mod asks for, and says so
		*)
			echo "Plenum needs Go $want or newer (go.mod) but $(command -v go) is Go $have: install a newer Go to /usr/local/go (https://go.dev/doc/install), or set GOTOOLCHAIN=auto to let Go fetch it" >&2
			exit 1
			;;
		esac
	fi
}

# ensure_puppeteer installs puppeteer-core (PUPPETEER_CORE_VERSION) with
# npm into a cache directory when it is not there, without downloading a
# browser: the join page's Firefox tests (web/browsertest) drive Debian's
# firefox-esr with it over WebDriver BiDi. Fails (status 1) without npm.
# Version 24 is the last that runs on Debian 12's Node.js 18 (25 needs
# 22.12 and is ESM only).
PUPPETEER_CORE_VERSION=24.43.1
ensure_puppeteer() {
	local dir=${XDG_CACHE_HOME:-$HOME/.cache}/plenum-puppeteer
	[[ -f $dir/node_modules/puppeteer-core/package.json ]] &&
		grep -q "\"version\": \"$PUPPETEER_CORE_VERSION\"" "$dir/node_modules/puppeteer-core/package.json" && return 0
	command -v npm >/dev/null 2>&1 || return 1
	echo "installing puppeteer-core $PUPPETEER_CORE_VERSION into $dir ..."
	mkdir -p "$dir" &&
		(cd "$dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm install --no-audit --no-fund --silent "puppeteer-core@$PUPPETEER_CORE_VERSION" >/dev/null)
}

# version_at_least HAVE WANT: whether the dotted version HAVE is WANT or newer.
version_at_least() {
	[[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1) == "$2" ]]
}

# ensure_modules downloads the Go modules that Plenum's packages and tests
# need when some are not in the module cache yet, saying so first: on a
# fresh machine that takes a while, mostly in silence.
ensure_modules() {
	local root
	root=$(dirname "${BASH_SOURCE[0]}")/..
	if (cd "$root" && GOPROXY=off go list -deps -test ./...) >/dev/null 2>&1; then
		return 0
	fi
	echo "downloading Go modules ..."
	(cd "$root" && go list -deps -test ./... >/dev/null)
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

# install_deb PACKAGE... installs Debian packages (without their
# recommendations) if we are root and apt-get exists, without starting any
# service they bring, now or at boot. Fails (status 1) otherwise, after
# showing apt's error.
install_deb() {
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		return 1
	fi
	# policy-rc.d keeps a package from starting its own service.
	local policy=/usr/sbin/policy-rc.d created= status=0
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
	fi
	apt_update_once
	echo "installing $* ..."
	apt_quietly install -y --no-install-recommends "$@" || status=$?
	[[ -n $created ]] && rm -f "$policy"
	((status == 0)) || return $status
	local pkg
	for pkg in "$@"; do
		if [[ -e /etc/init.d/$pkg || -e /lib/systemd/system/$pkg.service ]]; then
			keep_from_boot "$pkg"
		fi
	done
}

# apt_update_once updates the package lists the first time a script (or a
# script it runs) installs something. A failed update is shown and not
# retried; the install then tries with the lists there are.
apt_update_once() {
	[[ -z ${PLENUM_APT_UPDATED:-} ]] || return 0
	export PLENUM_APT_UPDATED=1
	echo "updating the package lists ..."
	apt_quietly update || true
}

# apt_quietly ARGS... runs apt-get ARGS with its output kept aside, waiting
# for another apt or dpkg to finish rather than failing on its lock; if it
# fails, the end of that output (apt's own error) is shown.
apt_quietly() {
	local out
	out=$(mktemp)
	if DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 "$@" >"$out" 2>&1; then
		rm -f "$out"
		return 0
	fi
	echo "apt-get $* failed:" >&2
	tail -n 15 "$out" | sed 's/^/    /' >&2
	rm -f "$out"
	return 1
}

# keep_from_boot SERVICE keeps an installed package's service from starting
# at boot and stops it if it runs: Debian enables the service of every
# package it installs, and Murmur's would take port 64738 from Plenum on the
# next boot. Works offline, in a chroot too: it edits the links that
# systemd and SysV init start services from.
keep_from_boot() {
	local s=$1
	if [[ -x /etc/init.d/$s ]]; then
		update-rc.d "$s" disable >/dev/null 2>&1 || true
	fi
	if command -v deb-systemd-helper >/dev/null 2>&1; then
		deb-systemd-helper disable "$s.service" >/dev/null 2>&1 || true
	fi
	if command -v systemctl >/dev/null 2>&1; then
		systemctl disable --quiet "$s" >/dev/null 2>&1 || true
	fi
	if [[ -d /run/systemd/system ]]; then
		systemctl stop "$s" 2>/dev/null || true
	elif [[ -x /etc/init.d/$s ]] && "/etc/init.d/$s" status >/dev/null 2>&1; then
		"/etc/init.d/$s" stop >/dev/null 2>&1 || true
	fi
	if compgen -G "/etc/rc[2-5].d/S??$s" >/dev/null || [[ -e /etc/systemd/system/multi-user.target.wants/$s.service ]]; then
		echo "note: $s still starts at boot (update-rc.d $s disable; systemctl disable $s)" >&2
	fi
}

# ensure_opus makes sure cgo works and the C libraries github.com/hraban/opus
# builds against are there: a C compiler with the C library's headers (cgo;
# Go quietly turns it off without a compiler, and the Opus package then fails
# with "undefined: Stream"), pkg-config, libopus, and libopusfile, which the
# package links for reading Ogg Opus. Installs the missing Debian packages
# when we are root; says in one sentence what is missing otherwise.
ensure_opus() {
	local missing=()
	c_compiles || missing+=(gcc libc6-dev)
	command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
	pkg-config --exists opus 2>/dev/null || missing+=(libopus-dev)
	pkg-config --exists opusfile 2>/dev/null || missing+=(libopusfile-dev)
	if ((${#missing[@]})); then
		install_deb "${missing[@]}" || true
		if ! c_compiles || ! pkg-config --exists opus opusfile 2>/dev/null; then
			echo "Plenum's Opus codec is C, so building it needs ${missing[*]}: as root, run apt-get install ${missing[*]}" >&2
			exit 1
		fi
	fi
	if [[ $(go env CGO_ENABLED) != 1 ]]; then
		if [[ ${CGO_ENABLED:-} == 0 ]]; then
			echo "Plenum's Opus codec needs cgo, which CGO_ENABLED=0 in the environment turns off: unset CGO_ENABLED" >&2
		else
			echo "Plenum's Opus codec needs cgo, which go env CGO_ENABLED says is off: go env -u CGO_ENABLED" >&2
		fi
		exit 1
	fi
}

# c_compiles reports whether Go's C compiler (go env CC) builds a program
# that includes a C library header.
c_compiles() {
	local cc
	cc=$(go env CC 2>/dev/null)
	command -v "${cc:-gcc}" >/dev/null 2>&1 &&
		printf '#include <stdlib.h>\nint main(void) { return 0; }\n' |
		"${cc:-gcc}" -x c - -o /dev/null >/dev/null 2>&1
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
