#!/usr/bin/env bash
# package-check.sh [-keep] [DIR]
#
# Installs, upgrades, removes and purges the Debian package in a fresh
# Debian 12 chroot (DIR, default /var/tmp/plenum-package-check: the
# minbase tree of fresh-machine-check.sh, from the same cache) and checks
# each step, as an admin would see it:
#
#   1. scripts/package builds two packages of this commit, an older and a
#      newer version (VERSION~1 and VERSION).
#   2. apt install ./plenum_OLD.deb: the files are where they should be,
#      the system user plenum exists, /var/lib/plenum does not yet.
#   3. The admin edits /etc/plenum/plenum.toml (listen and admin_listen on
#      free loopback ports, a server name). The server is started with the
#      unit's ExecStart as the unit's user (see below); a Mumble client
#      logs in and gets a UDP answer. SuperUser's password is set with
#      `plenum supw` as the user plenum, and SuperUser creates a channel,
#      which the server writes back into /etc/plenum/plenum.toml.
#   4. apt install ./plenum_NEW.deb: the admin's and the client's edits,
#      the certificate and the database are kept; the server starts again
#      on them and a client sees the channel.
#   5. apt remove: the binary is gone, configuration and data stay.
#   6. apt purge: /etc/plenum and /var/lib/plenum are gone; apt autoremove
#      takes the Opus libraries again.
#   7. Under systemd: systemd is installed into the tree, which is booted
#      with systemd-nspawn (Debian's systemd-container; installed on the
#      host if missing, else this part is skipped and says so), sharing the
#      host's network. There the admin's commands are run as the README
#      has them (apt install, edit, systemctl enable --now) and the real
#      plenum.service is checked: READY and STATUS, the journal without
#      times, user, capabilities and system call filter, systemctl reload,
#      a client's edit written back through the sandbox, the upgrade
#      restarting the running service, remove stopping it, purge.
#
# It prints the package's size and the time from `apt install` to the
# first client connected. Fails if any check fails.
#
# Steps 2 to 6 run in a plain chroot, where systemd does not run: the
# package is installed with a policy-rc.d that forbids starting services,
# and the check does by hand what plenum.service has systemd do: make
# /var/lib/plenum for the user (StateDirectory=), and run ExecStart as
# User=plenum with no capabilities, no new privileges and umask 077, in a
# mount namespace where the whole tree is read-only but /etc/plenum and
# /var/lib/plenum (ProtectSystem=strict, ReadWritePaths=) and /tmp is
# private (PrivateTmp=).
#
# Not run in CI: needs root (chroot, mount) and Debian's mirror (the
# package's dependencies); with the minbase tarball cached it takes about
# half a minute on the 2-core machine. The chroot is removed at
# the end unless -keep is given.
#
# Environment: MIRROR (for a new minbase tarball), FRESH_CACHE (default
# /var/cache/plenum-fresh, shared with fresh-machine-check.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
source scripts/chroot-lib.sh

KEEP=
while [[ ${1:-} == -* ]]; do
	case $1 in
	-keep) KEEP=1 ;;
	*)
		echo "usage: $0 [-keep] [DIR]" >&2
		exit 2
		;;
	esac
	shift
done
ROOT=$(realpath -m "${1:-/var/tmp/plenum-package-check}")
CACHE=${FRESH_CACHE:-/var/cache/plenum-fresh}
BASE=$CACHE/bookworm-minbase-git.tar
MARK=.plenum-package-check
CHROOT_ENV=(env -i HOME=/root TERM="${TERM:-dumb}" SHELL=/bin/bash USER=root LOGNAME=root
	PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive)
UNIT=/lib/systemd/system/plenum.service
CONFIG=/etc/plenum/plenum.toml
DATA=/var/lib/plenum
SUPW=a-long-package-check-password

log() { echo "package-check: $*" >&2; }
die() {
	log "FAILED: $*"
	exit 1
}
ok() { log "ok: $*"; }

# in_root CMD runs a bash command line in the chroot as root.
in_root() {
	chroot "$ROOT" "${CHROOT_ENV[@]}" /bin/bash -c "$1"
}

# check WHAT CMD: CMD (a bash command line run in the chroot) must succeed.
check() {
	in_root "$2" >/dev/null 2>&1 || die "$1 (in the chroot: $2)"
	ok "$1"
}

# apt_in ARGS... runs apt-get in the chroot; its output goes to a log,
# whose end is shown if it fails.
apt_in() {
	in_root "apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $*" >>"$WORK/apt.log" 2>&1 ||
		{
			tail -n 20 "$WORK/apt.log" >&2
			die "apt-get $*"
		}
}

cleanup() {
	local rc=$? p
	set +e
	[[ -n ${SERVER_PID:-} ]] && stop_gracefully "$SERVER_PID"
	[[ -n ${NSPAWN_PID:-} ]] && poweroff
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
	[[ -n ${WORK:-} ]] && rm -rf "$WORK"
	exit "$rc"
}

# build_packages builds the two packages and the client into WORK.
build_packages() {
	local new
	new=$(scripts/package -out "$WORK/new")
	NEW_VERSION=$(dpkg-deb --field "$new" Version)
	OLD_VERSION="$NEW_VERSION~1"
	scripts/package -version "$OLD_VERSION" -out "$WORK/old" >/dev/null
	dpkg --compare-versions "$OLD_VERSION" lt "$NEW_VERSION" || die "$OLD_VERSION is not older than $NEW_VERSION"
	NEW_DEB=$(basename "$new")
	OLD_DEB=$(basename "$WORK"/old/*.deb)
	CGO_ENABLED=0 go build -o "$WORK/mumbleprobe" ./scripts/mumbleprobe
	log "packages: $OLD_DEB and $NEW_DEB ($(stat -c %s "$new") bytes, $(du -h "$new" | cut -f1)); installed size $(dpkg-deb --field "$new" Installed-Size) KiB"
}

prepare() {
	if [[ -e $ROOT ]]; then
		[[ -f $ROOT/$MARK || -z $(ls -A "$ROOT") ]] || die "$ROOT exists and is not a tree of this script; name another DIR"
		remove_tree "$ROOT"
	fi
	OWNED=1
	unpack_base "$ROOT" "$MARK"
	mount_binds "$ROOT"
	# Services may not start: there is no systemd to start them, and the
	# host's must not be disturbed.
	printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
	chmod +x "$ROOT/usr/sbin/policy-rc.d"
	cp "$WORK/old/$OLD_DEB" "$WORK/new/$NEW_DEB" "$WORK/mumbleprobe" "$ROOT/root/"
	log "updating the package lists in the chroot ..."
	apt_in update
}

# start_server runs the unit's ExecStart as systemd would (see the top),
# logging to /root/server.log in the chroot, and waits until it listens.
start_server() {
	local exec
	exec=$(sed -n 's/^ExecStart=//p' "$ROOT$UNIT")
	[[ -n $exec ]] || die "no ExecStart in $UNIT"
	# StateDirectory=plenum, StateDirectoryMode=0700
	in_root "install -d -o plenum -g plenum -m 0700 $DATA"
	: >"$ROOT/root/server.log"
	unshare --mount --propagation private -- /bin/sh -c '
		set -e
		root=$1
		shift
		mount --rbind "$root" "$root"
		for d in etc/plenum var/lib/plenum; do mount --bind "$root/$d" "$root/$d"; done
		mount -o remount,bind,ro "$root"
		mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"
		umask 077
		exec chroot "$root" setpriv --reuid=plenum --regid=plenum --init-groups \
			--no-new-privs --inh-caps=-all --bounding-set=-all -- "$@"
	' sh "$ROOT" $exec 2>>"$ROOT/root/server.log" &
	SERVER_PID=$!
	for _ in $(seq 1 100); do
		grep -q 'plenum listening' "$ROOT/root/server.log" && return 0
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	cat "$ROOT/root/server.log" >&2
	die "the server started with \"$exec\" did not listen"
}

stop_server() {
	kill -TERM "$SERVER_PID"
	local status=0
	wait "$SERVER_PID" || status=$?
	SERVER_PID=
	((status == 0)) || {
		cat "$ROOT/root/server.log" >&2
		die "the server exited with status $status on SIGTERM"
	}
	grep -q 'plenum stopped' "$ROOT/root/server.log" || die "the server did not log that it stopped"
}

# probe ARGS... runs the Mumble client against the server.
probe() {
	"$WORK/mumbleprobe" "$@" "127.0.0.1:$PORT" >>"$WORK/probe.log" 2>&1 || {
		cat "$WORK/probe.log" "$ROOT/root/server.log" >&2
		die "the Mumble client: mumbleprobe $*"
	}
}

step_install() {
	log "apt install ./$OLD_DEB ..."
	INSTALL_START=$(date +%s.%N)
	apt_in install "/root/$OLD_DEB"
	check "version $OLD_VERSION installed" "dpkg-query -W -f='\${Status} \${Version}' plenum | grep -qx 'install ok installed $OLD_VERSION'"
	check "/usr/bin/plenum runs" "/usr/bin/plenum -print-default-config | grep -q '^listen'"
	check "$CONFIG is a conffile" "dpkg-query -W -f='\${Conffiles}' plenum | grep -q '^ $CONFIG '"
	check "$CONFIG is root:plenum 0640" "[[ \$(stat -c '%U:%G %a' $CONFIG) == 'root:plenum 640' ]]"
	check "/etc/plenum is root:plenum 0770" "[[ \$(stat -c '%U:%G %a' /etc/plenum) == 'root:plenum 770' ]]"
	check "$CONFIG names data_dir $DATA" "grep -qx 'data_dir = \"$DATA\"' $CONFIG"
	check "the unit is installed" "grep -q '^ExecStart=/usr/bin/plenum -config $CONFIG' $UNIT"
	check "the documentation is installed" "[[ -f /usr/share/doc/plenum/README.md && -f /usr/share/doc/plenum/README.Debian && -f /usr/share/doc/plenum/examples/plenary.toml ]]"
	check "libopus and libopusfile came as dependencies" "dpkg-query -W libopus0 libopusfile0 && ! ldd /usr/bin/plenum | grep -q 'not found'"
	check "the system user plenum exists" "id plenum && [[ \$(id -u plenum) -lt 1000 && \$(getent passwd plenum | cut -d: -f6,7) == $DATA:/usr/sbin/nologin ]]"
	check "nothing in $DATA before the first start" "[[ ! -e $DATA ]]"
	check "the service is not enabled at boot" "[[ ! -e /etc/systemd/system/multi-user.target.wants/plenum.service ]]"
}

# edit_config makes the admin's edit: free loopback ports, a name.
edit_config() {
	PORT=$(free_port)
	ADMIN_PORT=$(free_port)
	sed -i -e "s|^listen = .*|listen = \"127.0.0.1:$PORT\"|" \
		-e "s|^admin_listen = .*|admin_listen = \"127.0.0.1:$ADMIN_PORT\"|" \
		-e 's|^name = "Root"|name = "Package check"|' "$ROOT$CONFIG"
	grep -q 'name = "Package check"' "$ROOT$CONFIG" || die "the admin's edit did not take"
}

step_first_start() {
	edit_config
	start_server
	probe -user admin-check
	CONNECTED=$(date +%s.%N)
	ok "a Mumble client logged in and got a UDP answer, $(awk -v s="$INSTALL_START" -v e="$CONNECTED" 'BEGIN { printf "%.1f", e - s }') s after apt install began"
	check "the server made its state in $DATA, owned by plenum" "[[ \$(stat -c %U $DATA $DATA/cert.pem $DATA/key.pem $DATA/plenum.db $DATA/admin_token | sort -u) == plenum ]]"
	check "nobody else may read the key or the database" "[[ \$(stat -c %a $DATA $DATA/key.pem $DATA/plenum.db $DATA/admin_token | sort -u | xargs) == '600 700' ]]"
	check "supw works as the user plenum while the server runs" "setpriv --reuid=plenum --regid=plenum --init-groups /usr/bin/plenum supw -config $CONFIG $SUPW"
	probe -user SuperUser -password "$SUPW" -make-channel Packaged
	check "the client's edit is in $CONFIG" "grep -qx 'name = \"Packaged\"' $CONFIG && grep -qx 'name = \"Package check\"' $CONFIG"
	check "the version before is kept as plenum.toml.bak" "grep -qx 'name = \"Package check\"' $CONFIG.bak"
	stop_server
	ok "the server stopped cleanly on SIGTERM"
	CERT_SUM=$(sha256sum <"$ROOT$DATA/cert.pem")
	CONFIG_SUM=$(sha256sum <"$ROOT$CONFIG")
}

step_upgrade() {
	log "apt install ./$NEW_DEB (upgrade) ..."
	apt_in install "/root/$NEW_DEB"
	check "version $NEW_VERSION installed" "dpkg-query -W -f='\${Version}' plenum | grep -qx '$NEW_VERSION'"
	[[ $(sha256sum <"$ROOT$CONFIG") == "$CONFIG_SUM" ]] || die "the upgrade changed $CONFIG"
	ok "the upgrade kept $CONFIG as it was (the admin's and the client's edits)"
	check "no .dpkg-dist beside it (the package's default did not change)" "[[ ! -e $CONFIG.dpkg-dist ]]"
	[[ $(sha256sum <"$ROOT$DATA/cert.pem") == "$CERT_SUM" ]] || die "the upgrade changed the certificate"
	ok "the upgrade kept the certificate and $DATA"
	check "/etc/plenum is still root:plenum 0770" "[[ \$(stat -c '%U:%G %a' /etc/plenum) == 'root:plenum 770' ]]"
	start_server
	probe -user SuperUser -password "$SUPW"
	grep -q '10 channels' "$WORK/probe.log" || die "after the upgrade the client does not see the channel made before it: $(tail -n 3 "$WORK/probe.log")"
	ok "after the upgrade the server runs on the kept configuration, password and channel"
	stop_server
}

step_remove() {
	log "apt remove plenum ..."
	apt_in remove plenum
	check "the binary is gone" "[[ ! -e /usr/bin/plenum && ! -e $UNIT ]]"
	check "remove keeps the configuration" "[[ \$(sha256sum <$CONFIG) == '$CONFIG_SUM' ]]"
	check "remove keeps $DATA" "[[ -f $DATA/cert.pem && -f $DATA/plenum.db ]]"
	check "dpkg keeps the package as removed, config files left" "dpkg-query -W -f='\${Status}' plenum | grep -qx 'deinstall ok config-files'"
}

step_purge() {
	log "apt purge plenum ..."
	apt_in purge plenum
	check "purge removes /etc/plenum" "[[ ! -e /etc/plenum ]]"
	check "purge removes $DATA" "[[ ! -e $DATA ]]"
	check "purge removes the statoverrides" "! dpkg-statoverride --list | grep -q /etc/plenum"
	check "dpkg has forgotten the package" "! dpkg-query -W -f='\${Status}' plenum 2>/dev/null | grep -q ."
	check "the system user stays, as on Debian" "id plenum"
	apt_in autoremove --purge
	check "apt autoremove takes the libraries it brought" "! dpkg-query -W -f='\${Status}' libopusfile0 2>/dev/null | grep -q installed"
}

# --- the same under systemd ------------------------------------------------

# boot starts the tree as a container whose init is systemd (sharing the
# host's network, so that the client reaches the server on loopback) and
# waits until it has booted.
boot() {
	unmount_all "$ROOT" || die "cannot unmount inside $ROOT before booting it"
	systemd-nspawn -D "$ROOT" -b --register=no --keep-unit --console=pipe </dev/null >"$WORK/boot.log" 2>&1 &
	NSPAWN_PID=$!
	local state=
	for _ in $(seq 1 150); do
		LEADER=$(pgrep -P "$NSPAWN_PID" | head -n1) || true
		if [[ -n $LEADER ]]; then
			state=$(in_boot 'systemctl is-system-running' 2>/dev/null) || true
			[[ $state == running || $state == degraded ]] && return 0
		fi
		kill -0 "$NSPAWN_PID" 2>/dev/null || break
		sleep 0.2
	done
	cat "$WORK/boot.log" >&2
	die "the container did not boot (state: ${state:-none})"
}

# in_boot CMD runs a bash command line inside the booted container.
in_boot() {
	nsenter -t "$LEADER" -a "${CHROOT_ENV[@]}" /bin/bash -c "$1"
}

# check_boot WHAT CMD: CMD must succeed inside the booted container.
check_boot() {
	in_boot "$2" >/dev/null 2>&1 || {
		in_boot 'journalctl -u plenum --no-pager -n 20' >&2 || true
		die "$1 (under systemd: $2)"
	}
	ok "$1"
}

apt_boot() {
	in_boot "apt-get -q -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $*" >>"$WORK/apt.log" 2>&1 ||
		{
			tail -n 20 "$WORK/apt.log" >&2
			die "apt-get $* (under systemd)"
		}
}

main_pid() { in_boot 'systemctl show -p MainPID --value plenum'; }

step_systemd() {
	if ! command -v systemd-nspawn >/dev/null 2>&1 && ! install_deb systemd-container; then
		log "note: no systemd-nspawn (Debian's systemd-container): the unit was not run under systemd"
		return 0
	fi
	log "installing systemd into the tree and booting it ..."
	apt_in install --no-install-recommends systemd systemd-sysv dbus
	rm -f "$ROOT/usr/sbin/policy-rc.d" # systemd may now start and restart services
	boot
	ok "the tree boots with systemd $(in_boot 'systemctl --version | head -n1 | cut -d" " -f2')"

	log "the admin's commands: apt install, edit, systemctl enable --now ..."
	BOOT_START=$(date +%s.%N)
	apt_boot install "/root/$OLD_DEB"
	edit_config
	check_boot "systemctl enable --now plenum (Type=notify: it returns once the server is ready)" 'systemctl enable --now plenum'
	probe -user booted
	BOOT_CONNECTED=$(date +%s.%N)
	ok "a Mumble client logged in and got a UDP answer, $(awk -v s="$BOOT_START" -v e="$BOOT_CONNECTED" 'BEGIN { printf "%.1f", e - s }') s after apt install began"
	check_boot "systemd shows the server's status" "[[ \$(systemctl show -p StatusText --value plenum) == 'listening on 127.0.0.1:$PORT' ]]"
	check_boot "the journal has the log, without times of its own" "journalctl -u plenum -o cat | grep -q '^level=INFO msg=\"plenum listening\"' && ! journalctl -u plenum -o cat | grep -qE '(^| )time='"
	check_boot "the server runs as plenum, without capabilities, with the system call filter" "pid=\$(systemctl show -p MainPID --value plenum); [[ \$(stat -c %U /proc/\$pid) == plenum ]] && grep -q '^CapEff:\s*0*$' /proc/\$pid/status && grep -q '^Seccomp:\s*2' /proc/\$pid/status"
	check_boot "systemctl reload plenum reloads the configuration" 'systemctl reload plenum && journalctl -u plenum -o cat | grep -q "configuration reloaded"'
	check_boot "supw as plenum" "runuser -u plenum -- plenum supw -config $CONFIG $SUPW"
	probe -user SuperUser -password "$SUPW" -make-channel Booted
	check_boot "the sandboxed server wrote the client's edit into $CONFIG" "grep -qx 'name = \"Booted\"' $CONFIG"

	local before after
	before=$(main_pid)
	log "apt install ./$NEW_DEB (upgrade, the service running) ..."
	apt_boot install "/root/$NEW_DEB"
	after=$(main_pid)
	[[ $after != 0 && $after != "$before" ]] || die "the upgrade did not restart the service (main PID $before, then $after)"
	ok "the upgrade restarted the service (main PID $before, then $after)"
	probe -user SuperUser -password "$SUPW"
	check_boot "after the upgrade it runs on the kept configuration" "grep -qx 'name = \"Booted\"' $CONFIG && systemctl is-active -q plenum"

	log "apt remove, apt purge ..."
	apt_boot remove plenum
	check_boot "remove stops the service and keeps configuration and data" "! systemctl is-active -q plenum && [[ -f $CONFIG && -f $DATA/cert.pem ]]"
	apt_boot purge plenum
	check_boot "purge deletes them and the unit" "[[ ! -e /etc/plenum && ! -e $DATA && ! -e /etc/systemd/system/multi-user.target.wants/plenum.service ]] && [[ \$(systemctl show -p LoadState --value plenum) == not-found ]]"
	poweroff
}

# poweroff shuts the container down (systemd-nspawn passes SIGTERM on as
# a clean shutdown) and waits for it, at most 30 s.
poweroff() {
	kill -TERM "$NSPAWN_PID" 2>/dev/null
	for _ in $(seq 1 150); do
		kill -0 "$NSPAWN_PID" 2>/dev/null || break
		sleep 0.2
	done
	kill -KILL "$NSPAWN_PID" 2>/dev/null && log "the container did not shut down within 30 s"
	wait "$NSPAWN_PID" 2>/dev/null
	NSPAWN_PID=
}

[[ $(id -u) == 0 ]] || die "needs root"
OWNED= SERVER_PID= NSPAWN_PID=
WORK=$(mktemp -d /tmp/plenum-package-check.XXXXXX)
trap cleanup EXIT
trap 'exit 130' INT TERM
START=$SECONDS
build_packages
prepare
log "fresh Debian $(cat "$ROOT/etc/debian_version") minbase in $ROOT; machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
step_install
step_first_start
step_upgrade
step_remove
step_purge
step_systemd
log "passed in $((SECONDS - START)) s: package $NEW_DEB, $(stat -c %s "$WORK/new/$NEW_DEB") bytes; apt install to a client connected: $(awk -v s="$INSTALL_START" -v e="$CONNECTED" 'BEGIN { printf "%.1f", e - s }') s by hand${BOOT_CONNECTED:+, $(awk -v s="$BOOT_START" -v e="$BOOT_CONNECTED" 'BEGIN { printf "%.1f", e - s }') s under systemd}"
