#!/usr/bin/env bash
# trixie-chroot.sh [create|mount|umount|run CMD...]
#
# A Debian 13 (trixie) chroot with the Mumble 1.5 desktop client and Murmur
# 1.5 (Debian's mumble / mumble-server), for checking Plenum's protobuf UDP
# path against real 1.5 software on a Debian 12 host:
#
#   scripts/trixie-chroot.sh                        # create (or reuse) it
#   MUMBLE_CHROOT=/var/tmp/plenum-trixie scripts/desktop-client-plenum.sh OUT
#   PAIR_CHROOT=/var/tmp/plenum-trixie scripts/desktop-client-plenum.sh OUT
#   PLENUM_MURMUR_CMD="$PWD/scripts/trixie-chroot.sh run /usr/bin/mumble-server" \
#       PLENUM_MURMUR_VERSION=1.5.735 go test -run Murmur ./client/
#
# Not run in CI. Needs root (debootstrap, chroot, mount) and Debian's package
# registry (the mirror of the host's own apt sources). Creating the chroot
# takes about 1-5 minutes, depending on the mirror (70 s here), and ~820 MB
# under /var/tmp; later runs reuse it and return at once.
#
# Commands:
#   create   (default) debootstrap the chroot if missing, install the packages
#            (idempotent; nothing stays mounted afterwards)
#   mount    bind-mount /proc, /sys, /dev, /dev/pts, /dev/shm and /tmp into it
#            (so programs inside share the host's /tmp: X11 and PulseAudio
#            sockets, temporary directories; a chroot already shares the
#            host's network namespace, so loopback works both ways); prints
#            the ones it mounted (those not mounted already), one a line
#   umount [NAME...]  undo mount, or only the named ones (as mount printed them)
#   run CMD  mount, run CMD inside the chroot, then undo the mounts it made
#
# Environment: TRIXIE_ROOT (default /var/tmp/plenum-trixie), MIRROR (default:
# the host's Debian mirror from /etc/apt/sources.list{,.d/*}).
set -euo pipefail

ROOT=${TRIXIE_ROOT:-/var/tmp/plenum-trixie}
PACKAGES=(mumble mumble-server xvfb pulseaudio pulseaudio-utils sox espeak-ng
	xdotool imagemagick openssl sqlite3 fonts-dejavu-core procps iproute2)
BINDS=(proc sys dev dev/pts dev/shm tmp)

log() { echo "trixie-chroot: $*" >&2; }

host_mirror() {
	local m
	m=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list |
		grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ')
	echo "${m:-http://deb.debian.org/debian}"
}

do_mount() {
	local d
	for d in "${BINDS[@]}"; do
		mkdir -p "$ROOT/$d"
		mountpoint -q "$ROOT/$d" && continue
		mount --bind "/$d" "$ROOT/$d"
		echo "$d"
	done
}

# do_umount [NAME...]: the named binds, or all, innermost first.
do_umount() {
	local i d names=("$@")
	((${#names[@]})) || names=("${BINDS[@]}")
	for ((i = ${#BINDS[@]} - 1; i >= 0; i--)); do
		[[ " ${names[*]} " == *" ${BINDS[i]} "* ]] || continue
		d=$ROOT/${BINDS[i]}
		if mountpoint -q "$d"; then
			umount "$d" || umount -l "$d"
		fi
	done
}

create() {
	[[ -f $ROOT/.plenum-ready ]] && { log "reusing $ROOT"; return 0; }
	local mirror=${MIRROR:-$(host_mirror)}
	command -v debootstrap >/dev/null || apt-get install -y debootstrap
	# A debootstrap that was interrupted leaves $ROOT/debootstrap behind;
	# start that one over (only if nothing is mounted inside).
	if [[ -d $ROOT/debootstrap ]]; then
		do_umount
		log "removing unfinished chroot $ROOT"
		rm -rf --one-file-system "$ROOT"
	fi
	if [[ ! -x $ROOT/usr/bin/apt-get ]]; then
		log "debootstrap trixie from $mirror into $ROOT"
		debootstrap --variant=minbase --include=ca-certificates,apt-utils \
			trixie "$ROOT" "$mirror"
	fi
	cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $mirror trixie main
deb $mirror trixie-updates main
deb ${mirror%/debian*}/debian-security trixie-security main
EOF
	# Keep package scripts from starting services (mumble-server) in the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
	chmod 755 "$ROOT/usr/sbin/policy-rc.d"
	trap do_umount EXIT
	do_mount >/dev/null
	chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get update
	chroot "$ROOT" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
		--no-install-recommends "${PACKAGES[@]}"
	chroot "$ROOT" apt-get clean
	do_umount
	trap - EXIT
	chroot "$ROOT" dpkg-query -W mumble mumble-server >&2
	touch "$ROOT/.plenum-ready"
	log "ready: $ROOT"
}

[[ $(id -u) == 0 ]] || { log "needs root"; exit 2; }
case ${1:-create} in
create) create ;;
mount) do_mount ;;
umount)
	shift
	do_umount "$@"
	;;
run)
	shift
	[[ -f $ROOT/.plenum-ready ]] || { log "$ROOT is not ready; run $0 first"; exit 2; }
	# Undo only the mounts this call made, so concurrent users are not cut off.
	MADE=()
	trap '((${#MADE[@]} == 0)) || do_umount "${MADE[@]}"' EXIT
	mapfile -t MADE < <(do_mount)
	rc=0
	chroot "$ROOT" "$@" || rc=$?
	exit "$rc"
	;;
*)
	echo "usage: $0 [create|mount|umount|run CMD...]" >&2
	exit 2
	;;
esac
