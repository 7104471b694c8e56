# Helpers shared by scripts/run and scripts/test (sourced, not run).

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
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		return 1
	fi
	echo "installing $pkg ..."
	# policy-rc.d keeps the package from starting its own service.
	local policy=/usr/sbin/policy-rc.d created=
	if [[ ! -e $policy ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created=1
	fi
	{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg"; } >/dev/null 2>&1
	local status=$?
	[[ -n $created ]] && rm -f "$policy"
	return $status
}
