#!/usr/bin/env bash
# fresh-machine-check.sh [-run-only] [-keep] [DIR]
#
# Shows that the README's two set-up commands work on a fresh Debian 12 and
# times them. DIR (default /var/tmp/plenum-fresh) becomes a new minimal
# Debian 12 chroot (debootstrap --variant=minbase bookworm, plus git and
# ca-certificates: the README's "fresh Debian machine"), with the host's Go
# copied to /usr/local/go (the README's one prerequisite) and this
# repository cloned at its current commit to /root/plenum. Inside it, as
# root with a login's environment:
#
#   1. scripts/run -listen 127.0.0.1:PORT, until it logs "plenum listening"
#      (then it is stopped);
#   2. scripts/test (not with -run-only);
#
# and prints the minutes each took, counted from the fresh chroot. Then it
# checks that Murmur is kept from starting at boot and that nothing the
# scripts started is still running. It fails if any of that fails.
#
# Not run in CI. Needs root (debootstrap, chroot, mount) and the network
# (Debian's mirror, the Go module proxy). It changes nothing on the host but
# DIR and the cache (and installs debootstrap if it is missing): the
# packages the scripts install go into the chroot. The chroot is removed at
# the end unless -keep is given; about 3 GB while it exists.
#
# The minbase tree is made once and kept as a tarball (FRESH_CACHE, default
# /var/cache/plenum-fresh; remove it to start from a newer Debian); each run
# unpacks it into an empty DIR, so every run starts from the same fresh tree.
# The clock starts once the tree is there.
#
# Environment: MIRROR (default: the host's Debian mirror), FRESH_CACHE,
# GO_ROOT (the Go to copy, default /usr/local/go). Certificate authorities
# the host's administrator added (in /usr/local/share/ca-certificates) are
# trusted inside too: on a network whose HTTPS goes through an inspecting
# proxy, nothing could be downloaded without them.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
source scripts/lib.sh
source scripts/chroot-lib.sh

RUN_ONLY= KEEP=
while [[ ${1:-} == -* ]]; do
	case $1 in
	-run-only) RUN_ONLY=1 ;;
	-keep) KEEP=1 ;;
	*)
		echo "usage: $0 [-run-only] [-keep] [DIR]" >&2
		exit 2
		;;
	esac
	shift
done
ROOT=$(realpath -m "${1:-/var/tmp/plenum-fresh}")
CACHE=${FRESH_CACHE:-/var/cache/plenum-fresh}
BASE=$CACHE/bookworm-minbase-git.tar
GO_ROOT=${GO_ROOT:-/usr/local/go}
MARK=.plenum-fresh-machine
# The environment of a root login on a fresh Debian: nothing of ours.
CHROOT_ENV=(env -i HOME=/root TERM="${TERM:-dumb}" SHELL=/bin/bash USER=root LOGNAME=root
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin)
SERVER_TIMEOUT=1800 # s for scripts/run to get to "plenum listening"

log() { echo "fresh-machine-check: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# prepare makes ROOT a fresh minbase tree with Go and the repository.
prepare() {
	[[ -f $BASE ]] || make_base
	if [[ -e $ROOT ]]; then
		[[ -f $ROOT/$MARK || -z $(ls -A "$ROOT") ]] || die "$ROOT exists and is not a tree of this script; name another DIR"
		log "removing the previous tree in $ROOT"
		remove_tree "$ROOT"
	fi
	OWNED=1
	unpack_base "$ROOT" "$MARK"
	[[ -x $GO_ROOT/bin/go ]] || die "no Go in $GO_ROOT (set GO_ROOT)"
	cp -a "$GO_ROOT" "$ROOT/usr/local/go"
	COMMIT=$(git -C "$REPO" rev-parse HEAD)
	[[ -z $(git -C "$REPO" status --porcelain --untracked-files=no) ]] ||
		log "note: $REPO has uncommitted changes; the check uses commit $COMMIT without them"
	git clone --quiet --no-checkout "$REPO" "$ROOT/root/plenum"
	git -C "$ROOT/root/plenum" checkout --quiet --detach "$COMMIT"
}


# cleanup stops whatever still runs in the chroot, unmounts and (without
# -keep) removes it.
cleanup() {
	local rc=$? p
	set +e
	[[ -n ${TAIL_PID:-} ]] && kill "$TAIL_PID" 2>/dev/null
	if [[ -n ${OWNED:-} && -d $ROOT ]]; then
		for p in $(processes_in "$ROOT"); do kill -KILL "$p" 2>/dev/null; done
		sleep 0.5
		unmount_all "$ROOT" || log "could not unmount everything under $ROOT"
		if [[ -z $KEEP ]]; then
			remove_tree "$ROOT"
		else
			log "the chroot stays in $ROOT (remove it with: rm -rf --one-file-system $ROOT)"
		fi
	fi
	exit "$rc"
}

# in_chroot CMD runs a bash command line in the repository inside the chroot
# with a login's environment.
in_chroot() {
	chroot "$ROOT" "${CHROOT_ENV[@]}" /bin/bash -c "cd /root/plenum && $1"
}

# shown shows each line it reads as it comes, after the seconds since the
# first one, so that one sees how long each stage took.
shown() {
	local line start=$SECONDS
	while IFS= read -r line; do
		printf '  %5ds | %s\n' $((SECONDS - start)) "$line" >&2
	done
}

minutes() { awk -v s="$1" -v e="$2" 'BEGIN { printf "%.1f", (e - s) / 60 }'; }

# time_server prints the minutes from now until scripts/run in the chroot
# logs "plenum listening", stopping it then; its output is shown as it goes.
time_server() {
	local port start pid out
	port=$(free_port)
	out=$ROOT/root/run.log
	: >"$out"
	start=$(date +%s.%N)
	# Its own process group, so that stopping it stops a build under way too.
	setsid chroot "$ROOT" "${CHROOT_ENV[@]}" /bin/bash -c "cd /root/plenum && exec scripts/run -listen 127.0.0.1:$port" >"$out" 2>&1 &
	pid=$!
	tail -n +1 -f --pid="$pid" "$out" | shown &
	TAIL_PID=$!
	while ! grep -q 'plenum listening' "$out"; do
		kill -0 "$pid" 2>/dev/null || die "scripts/run ended before plenum listened"
		(($(date +%s) - ${start%.*} < SERVER_TIMEOUT)) || die "scripts/run did not listen within $SERVER_TIMEOUT s"
		sleep 0.2
	done
	RUN_MINUTES=$(minutes "$start" "$(date +%s.%N)")
	kill -TERM -- "-$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || true
	wait "$TAIL_PID" 2>/dev/null || true
	TAIL_PID=
}

# check_not_at_boot fails if Murmur would start at the chroot's next boot.
check_not_at_boot() {
	local links
	links=$(cd "$ROOT" && ls -d etc/rc[2-5].d/S*mumble-server etc/systemd/system/*.wants/mumble-server.service 2>/dev/null || true)
	[[ -z $links ]] || die "mumble-server would start at boot: $links"
	chroot "$ROOT" dpkg-query -W mumble-server >/dev/null 2>&1 || die "scripts/test did not install mumble-server"
	log "mumble-server installed and kept from starting at boot ($(cd "$ROOT" && ls -d etc/rc2.d/K*mumble-server 2>/dev/null || echo 'no start link'))"
}

[[ $(id -u) == 0 ]] || die "needs root"
OWNED=
trap cleanup EXIT
trap 'exit 130' INT TERM
prepare
mount_binds "$ROOT"
log "fresh Debian $(cat "$ROOT/etc/debian_version") minbase in $ROOT with git, ca-certificates, $("$ROOT/usr/local/go/bin/go" version | cut -d' ' -f3) and Plenum at ${COMMIT:0:10}"
log "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"

START=$(date +%s.%N)
log "scripts/run, until plenum listening:"
time_server
log "scripts/run: plenum listening after $RUN_MINUTES min"
[[ -z $(processes_in "$ROOT") ]] || die "processes left in the chroot after stopping plenum: $(processes_in "$ROOT")"

if [[ -z $RUN_ONLY ]]; then
	log "scripts/test:"
	TEST_START=$(date +%s.%N)
	status=0
	in_chroot 'scripts/test' 2>&1 | shown || status=$?
	END=$(date +%s.%N)
	((status == 0)) || die "scripts/test failed after $(minutes "$TEST_START" "$END") min (load now $(cut -d' ' -f1-3 /proc/loadavg))"
	check_not_at_boot
	left=$(processes_in "$ROOT")
	[[ -z $left ]] || die "scripts/test left processes running in the chroot: $(ps -o pid=,args= -p "${left//$'\n'/,}")"
	log "scripts/test passed after $(minutes "$TEST_START" "$END") min more"
	log "fresh chroot to plenum listening: $RUN_MINUTES min; to a passing scripts/test: $(minutes "$START" "$END") min (load now $(cut -d' ' -f1-3 /proc/loadavg))"
fi
