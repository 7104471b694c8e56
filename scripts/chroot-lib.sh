# Helpers for the scripts that check Plenum on a fresh Debian 12 chroot
# (fresh-machine-check.sh, package-check.sh); sourced, not run. The caller
# defines log and die, and sets CACHE (where the minbase tarball is kept)
# and BASE (the tarball) before calling make_base or unpack_base.
#
# The minbase tree is made once (debootstrap --variant=minbase bookworm,
# plus git and ca-certificates) and kept as a tarball; every run unpacks it
# into an empty directory. Nothing is ever deleted while something is
# mounted inside it: rm would go through a bind mount into the host.

# host_mirror prints the host's Debian mirror.
host_mirror() {
	local m
	m=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list |
		grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n1 | tr -d ' ')
	echo "${m:-http://deb.debian.org/debian}"
}

# mounts_under DIR prints the mount points at or below DIR, deepest first.
mounts_under() {
	findmnt -rn -o TARGET | awk -v d="$1" '$0 == d || index($0, d "/") == 1' | sort -r
}

# unmount_all DIR unmounts everything at or below DIR (ours: the binds,
# debootstrap's /proc, anything a test left), and fails if it cannot.
unmount_all() {
	local m
	while read -r m; do
		[[ -n $m ]] && { umount "$m" 2>/dev/null || umount -l "$m"; }
	done < <(mounts_under "$1")
	[[ -z $(mounts_under "$1") ]]
}

# remove_tree DIR deletes a tree this script made, never while something is
# mounted inside it (rm would go through a bind mount into the host).
remove_tree() {
	[[ -e $1 ]] || return 0
	unmount_all "$1" || die "something is still mounted under $1; not removing it"
	rm -rf --one-file-system "$1"
}

# processes_in DIR prints the processes whose root directory is DIR.
processes_in() {
	local p
	for p in /proc/[0-9]*; do
		[[ $(readlink "$p/root" 2>/dev/null) == "$1" ]] && echo "${p#/proc/}"
	done
	return 0
}

# make_base writes the minbase tarball: debootstrap, git and ca-certificates,
# Debian's usual three sources, nothing else.
make_base() {
	local mirror build
	mirror=${MIRROR:-$(host_mirror)}
	command -v debootstrap >/dev/null || install_deb debootstrap || die "needs debootstrap"
	mkdir -p "$CACHE"
	build=$CACHE/build
	remove_tree "$build"
	log "debootstrap --variant=minbase bookworm from $mirror (once; kept as $BASE) ..."
	debootstrap --variant=minbase --include=git,ca-certificates bookworm "$build" "$mirror" >"$CACHE/debootstrap.log" 2>&1 ||
		{
			tail -n 20 "$CACHE/debootstrap.log" >&2
			unmount_all "$build"
			die "debootstrap failed (log: $CACHE/debootstrap.log)"
		}
	cat >"$build/etc/apt/sources.list" <<EOF
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian*}/debian-security bookworm-security main
EOF
	chroot "$build" apt-get clean
	unmount_all "$build" || die "cannot unmount inside $build"
	tar -C "$build" -cf "$BASE.new" . && mv "$BASE.new" "$BASE"
	remove_tree "$build"
}

# local_cas prints the CA certificates the host's administrator added
# (Debian's place for them).
local_cas() {
	local f
	for f in /usr/local/share/ca-certificates/*.crt /usr/local/share/ca-certificates/*/*.crt; do
		[[ -f $f ]] && echo "$f"
	done
	return 0
}

BINDS=(proc sys dev dev/pts dev/shm)

# mount_binds DIR binds the host's /proc, /sys and /dev into the tree DIR,
# after binding DIR onto itself: its / is then a mount point, as a
# machine's is, which "ip netns" needs (it remounts / as a slave).
mount_binds() {
	local d
	mount --bind "$1" "$1"
	for d in "${BINDS[@]}"; do
		mkdir -p "$1/$d"
		mount --bind "/$d" "$1/$d"
	done
}

# unpack_base DIR MARK makes the empty directory DIR a fresh minbase tree
# (making the tarball first if there is none), marked with the file MARK,
# with the host's name resolution and the local certificate authorities
# the host's administrator added: on a network whose HTTPS goes through an
# inspecting proxy, nothing could be downloaded without them.
unpack_base() {
	local dir=$1 mark=$2
	[[ -f $BASE ]] || make_base
	mkdir -p "$dir"
	touch "$dir/$mark"
	tar -C "$dir" -xf "$BASE"
	cp /etc/resolv.conf /etc/hosts "$dir/etc/" 2>/dev/null || true
	local ca n=0
	while read -r ca; do
		mkdir -p "$dir/usr/local/share/ca-certificates"
		cp "$ca" "$dir/usr/local/share/ca-certificates/host-local-$n.crt"
		log "trusting the host's local CA $ca inside too"
		n=$((n + 1))
	done < <(local_cas)
	((n == 0)) || chroot "$dir" update-ca-certificates >/dev/null 2>&1 || die "update-ca-certificates failed in $dir"
}
