#!/usr/bin/env bash
# Prints the absolute directory holding the envtest control plane binaries,
# kube-apiserver and etcd: what KUBEBUILDER_ASSETS must point at for
# sigs.k8s.io/controller-runtime/pkg/envtest. It also holds a
# kube-controller-manager, whose garbage collector the tests and `tasker dev`
# run beside envtest (internal/kubeenv). Builds them first from Go modules
# (the hack/envtest module) when they are missing, since setup-envtest needs a
# download site that is not always reachable; only the Go module proxy is.
#
#   export KUBEBUILDER_ASSETS="$(hack/envtest.sh)"
#
# The binaries are cached per version, shared by every clone on the machine:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/tasker/envtest/k8s-<kubernetes>-etcd-<etcd>/
# where the versions are those hack/envtest/go.mod requires. TASKER_ENVTEST_DIR
# replaces that whole path. When the build changes without a version bump
# (e.g. a new go.sum), delete the directory to rebuild.
#
# Only the directory goes to stdout; progress and errors go to stderr.
set -euo pipefail

log() { echo "envtest: $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

module="$(cd "$(dirname "${BASH_SOURCE[0]}")/envtest" && pwd)"

# modver prints the version hack/envtest/go.mod requires for module $1.
modver() {
	awk -v m="$1" '$1 == m && $2 ~ /^v[0-9]/ { print $2; exit }' "$module/go.mod"
}
k8s_version="$(modver k8s.io/kubernetes)"
etcd_version="$(modver go.etcd.io/etcd/server/v3)"
[[ -n "$k8s_version" && -n "$etcd_version" ]] ||
	die "cannot read the k8s.io/kubernetes and go.etcd.io/etcd/server/v3 versions from $module/go.mod"

dir="${TASKER_ENVTEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/tasker/envtest/k8s-${k8s_version#v}-etcd-${etcd_version#v}}"

binaries=(kube-apiserver etcd kube-controller-manager)

# ready succeeds when every binary is in place. They are only ever moved in
# whole (rename within one directory), so present means complete.
ready() {
	local bin
	for bin in "${binaries[@]}"; do
		[[ -x "$dir/$bin" ]] || return 1
	done
}

if ready; then
	(cd "$dir" && pwd)
	exit 0
fi

mkdir -p "$dir" || die "cannot create $dir"
dir="$(cd "$dir" && pwd)"

# One build at a time per directory: a second run waits, then finds the
# binaries the first one built.
exec 9>"$dir/.lock"
if command -v flock >/dev/null 2>&1; then
	if ! flock -n 9; then
		log "another build is running; waiting for $dir/.lock"
		flock 9
	fi
	if ready; then
		echo "$dir"
		exit 0
	fi
	# Leftovers of builds that were killed; nobody else builds while we hold the lock.
	rm -rf "$dir"/.build.*
else
	log "flock not found; building without a lock"
fi

command -v go >/dev/null 2>&1 || die "go not found in PATH; it is needed to build kube-apiserver, etcd and kube-controller-manager"

tmp="$(mktemp -d "$dir/.build.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# Stamp the Kubernetes version as upstream's hack/lib/version.sh does, so that
# /version and --version report v1.x.y rather than v0.0.0-master.
k8s_minor="${k8s_version#v1.}"
k8s_minor="${k8s_minor%%.*}"
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$k8s_minor -X $pkg.gitTreeState=clean"
done

log "building kube-apiserver and kube-controller-manager $k8s_version, and etcd $etcd_version, into $dir"
log "(several minutes the first time on a cold Go build cache; later runs reuse them)"
start=$SECONDS
# The build runs as a background job in a process group of its own (set -m)
# so that a signal to this script stops it and its compilers at once: bash
# runs traps only between commands, but wait is interruptible, and go build
# alone ignores a SIGINT that its compilers do not also get.
build=""
stop_build() {
	if [[ -n "$build" ]]; then
		kill -TERM -- "-$build" 2>/dev/null || true
		wait "$build" 2>/dev/null || true
	fi
}
trap 'stop_build; exit 130' INT
trap 'stop_build; exit 143' TERM
cd "$module"
set -m
CGO_ENABLED=0 GOWORK=off go build -mod=readonly -trimpath -buildvcs=false \
	-ldflags "$ldflags" -o "$tmp/" "${binaries[@]/#/./}" >&2 &
build=$!
set +m
if ! wait "$build"; then
	die "building ${binaries[*]} in $module failed (go output above); nothing was installed in $dir"
fi
trap 'exit 130' INT
trap 'exit 143' TERM

# Each must at least start before it is installed.
for bin in "${binaries[@]}"; do
	out="$("$tmp/$bin" --version 2>&1)" || die "the freshly built $bin does not run: $out"
	log "$bin: $(echo "$out" | head -n 1)"
done

for bin in "${binaries[@]}"; do
	mv -f "$tmp/$bin" "$dir/$bin"
done
log "built in $((SECONDS - start))s"
echo "$dir"
