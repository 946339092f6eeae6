#!/usr/bin/env bash
# Makes sure PostgreSQL server binaries (initdb and postgres) are installed, for
# the throwaway clusters of internal/pgcluster (tests, `make test`, `tasker dev`).
# Prints where they are and does nothing else when they are already there;
# otherwise installs the distribution's postgresql package with apt-get.
# The package may create and start a cluster of its own; tasker never uses it.
set -euo pipefail

# find_bindir prints the first directory holding both initdb and postgres.
find_bindir() {
	local dir candidates=()
	if command -v pg_config >/dev/null 2>&1; then
		candidates+=("$(pg_config --bindir 2>/dev/null || true)")
	fi
	# Newest major version first.
	while IFS= read -r dir; do
		candidates+=("$dir")
	done < <(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -rn)
	for dir in "${candidates[@]}"; do
		if [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/postgres" ]]; then
			echo "$dir"
			return 0
		fi
	done
	return 1
}

if dir="$(find_bindir)"; then
	echo "PostgreSQL server binaries found in $dir"
	exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-postgres: no PostgreSQL server binaries found and no apt-get;" \
		"install the PostgreSQL server with your package manager" >&2
	exit 1
fi

# as_root runs a command as root, through sudo when not root already.
as_root() {
	if [[ "$(id -u)" -eq 0 ]]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		echo "install-postgres: need root or sudo to install postgresql" >&2
		return 1
	fi
}

echo "install-postgres: installing postgresql with apt-get"
as_root apt-get update -qq
as_root env DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends postgresql >/dev/null

if ! dir="$(find_bindir)"; then
	echo "install-postgres: postgresql installed but initdb/postgres not found" >&2
	exit 1
fi
echo "PostgreSQL server binaries installed in $dir"
