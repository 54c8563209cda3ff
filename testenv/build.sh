#!/usr/bin/env bash
# testenv/build.sh — build (once) the real components that Berth's tests and
# local runs need, from the Go module proxy and Debian packages.
#
# Every Go component is pinned by a small wrapper module under
# testenv/modules/<name>/ (go.mod + go.sum, checked in). Binaries go to a cache
# OUTSIDE the repository, keyed by name and version:
#
#   ${BERTH_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-testenv}/<name>-<version>/bin/
#
# If a component's binaries already exist there, it is not rebuilt, so a second
# run does nothing but a few file checks. Debian packages that are missing
# (docker-registry, apache2-utils for htpasswd, openssl, curl) are installed
# with apt-get.
#
# Usage: testenv/build.sh [--print-env] [crane|etcd|kwok|dex|metallb|kubernetes]...
#   --print-env  print shell assignments of the binary paths (used by testenv/run)
#   components   build only these (default: all)
#
# Maintainer commands (not needed for normal use):
#   testenv/build.sh gen-k8s-mod v1.35.4   regenerate modules/kubernetes for a release
set -euo pipefail

TESTENV_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MODULES=$TESTENV_SRC/modules
CACHE=${BERTH_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-testenv}

log() { echo "testenv: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- pinned versions ---------------------------------------------------------
# Read from the wrapper modules' go.mod files, so the version lives in one place.
# Handles both "require m v" and a "m v" line inside a require block.
modver() { # modver <wrapper-dir> <module-path>
    awk -v m="$2" '{ if ($1 == "require") { $1 = "" ; $0 = $0 } }
                   $1 == m { print $2; exit }' "$MODULES/$1/go.mod"
}
K8S_VERSION=$(modver kubernetes k8s.io/kubernetes)
ETCD_VERSION=$(modver etcd go.etcd.io/etcd/server/v3)
KWOK_VERSION=$(modver kwok sigs.k8s.io/kwok)
DEX_VERSION=$(modver dex github.com/dexidp/dex)
CRANE_VERSION=$(modver crane github.com/google/go-containerregistry)
METALLB_VERSION=$(modver metallb go.universe.tf/metallb)
for v in K8S_VERSION ETCD_VERSION KWOK_VERSION DEX_VERSION CRANE_VERSION METALLB_VERSION; do
    [[ -n ${!v} ]] || die "could not read $v from $MODULES/*/go.mod"
done

K8S_DIR=$CACHE/kubernetes-$K8S_VERSION
ETCD_DIR=$CACHE/etcd-$ETCD_VERSION
KWOK_DIR=$CACHE/kwok-$KWOK_VERSION
DEX_DIR=$CACHE/dex-$DEX_VERSION
CRANE_DIR=$CACHE/crane-$CRANE_VERSION
METALLB_DIR=$CACHE/metallb-$METALLB_VERSION

# --- Go toolchain ------------------------------------------------------------
find_go() {
    local g
    g=$(command -v go 2>/dev/null || true)
    [[ -n $g ]] || { [[ -x /usr/local/go/bin/go ]] && g=/usr/local/go/bin/go; }
    if [[ -z $g ]]; then
        die "Go toolchain not found (need Go >= 1.26 on PATH or at /usr/local/go/bin/go) — cannot build testenv components"
    fi
    GO=$g
    # Never let go.mod "go"/"toolchain" lines trigger a toolchain download:
    # only the proxy is reachable, and the local Go (1.26) satisfies every pin.
    export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:-} -mod=readonly"
    # The checksum database has no entry for the Dex pseudo-versions the proxy
    # serves (404); the hashes committed in modules/dex/go.sum pin them instead.
    export GONOSUMDB="${GONOSUMDB:+$GONOSUMDB,}github.com/dexidp/dex"
}

# go_fetch <wrapper> <module@version>: make sure the module is in the module
# cache; the single, clear message when the proxy cannot be reached.
go_fetch() {
    if ! (cd "$MODULES/$1" && "$GO" mod download "$2") >/dev/null 2>"$CACHE/.fetch.err"; then
        cat "$CACHE/.fetch.err" >&2
        die "cannot download $2 from the Go module proxy (GOPROXY=$("$GO" env GOPROXY)); is it reachable?"
    fi
}

# build_go <name> <dir> <wrapper> <module@version> <ldflags> "<binary>..." <pkg>...
# Builds all packages in ONE go build (they share most compiled packages),
# into a temporary dir, then moves them into <dir>/bin: an interrupted build
# never leaves a half-written binary that would be taken as "already built".
build_go() {
    local name=$1 dir=$2 wrapper=$3 modver=$4 ldflags=$5 bins=$6
    shift 6
    local b missing=0
    for b in $bins; do [[ -x $dir/bin/$b ]] || missing=1; done
    ((missing)) || return 0

    [[ -n ${GO:-} ]] || find_go
    mkdir -p "$dir"
    rm -rf "$dir"/bin.tmp.* # left by an interrupted build (we hold the lock)
    go_fetch "$wrapper" "$modver"
    log "building $name ($modver) — first time only, this can take a while…"
    local start tmp out
    start=$(date +%s)
    tmp=$(mktemp -d "$dir/bin.tmp.XXXXXX")
    # One package: name the binary explicitly (etcd's package path ends in /v3).
    out=$tmp/
    (($# > 1)) || out=$tmp/$bins
    # -p 2: the machine has 2 cores and is shared. CGO off (static binaries)
    # unless the caller sets CGO=1.
    if ! (cd "$MODULES/$wrapper" &&
        CGO_ENABLED=${CGO:-0} "$GO" build -p 2 -trimpath -ldflags "$ldflags" -o "$out" "$@") \
        >"$dir/build.log" 2>&1; then
        tail -n 30 "$dir/build.log" >&2
        rm -rf "$tmp"
        die "building $name failed (full log: $dir/build.log)"
    fi
    mkdir -p "$dir/bin"
    for b in $bins; do mv "$tmp/$b" "$dir/bin/$b"; done
    rm -rf "$tmp"
    local secs=$(($(date +%s) - start))
    echo "$secs" >"$dir/build-seconds"
    log "built $name $modver in ${secs}s → $dir/bin"
}

build_kubernetes() {
    # Version ldflags as Kubernetes' own hack/lib/version.sh sets them, so that
    # /version and `kubectl version` report the real release.
    local v=$K8S_VERSION minor ld="-s -w" pkg date
    minor=${v#v1.}
    minor=${minor%%.*}
    date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    for pkg in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
        ld+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
        ld+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
    done
    build_go kubernetes "$K8S_DIR" kubernetes "k8s.io/kubernetes@$v" "$ld" \
        "kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy" \
        k8s.io/kubernetes/cmd/kube-apiserver \
        k8s.io/kubernetes/cmd/kube-controller-manager \
        k8s.io/kubernetes/cmd/kube-scheduler \
        k8s.io/kubernetes/cmd/kubectl \
        k8s.io/kubernetes/cmd/kubelet \
        k8s.io/kubernetes/cmd/kube-proxy
}

build_etcd() {
    # The module's root package is etcd's main; it needs a wrapper module
    # because its own go.mod has replace directives (go install @v refuses).
    build_go etcd "$ETCD_DIR" etcd "go.etcd.io/etcd/server/v3@$ETCD_VERSION" "-s -w" \
        etcd go.etcd.io/etcd/server/v3
}

build_kwok() {
    build_go kwok "$KWOK_DIR" kwok "sigs.k8s.io/kwok@$KWOK_VERSION" "-s -w" \
        kwok sigs.k8s.io/kwok/cmd/kwok
    # The kwok binary has no built-in Stages (kwokctl injects them); without
    # any it exits with "no stages found". Assemble the same defaults kwokctl
    # uses (node init + lease heartbeat + pod ready/complete/delete) from the
    # kwok module source into one --config file.
    local stages=$KWOK_DIR/stages.yaml
    if [[ ! -s $stages ]]; then
        [[ -n ${GO:-} ]] || find_go
        go_fetch kwok "sigs.k8s.io/kwok@$KWOK_VERSION"
        local src f tmp
        src=$(cd "$MODULES/kwok" && "$GO" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
        tmp=$(mktemp "$stages.XXXXXX")
        for f in node/fast/node-initialize.yaml \
            node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
            pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
            echo "---" >>"$tmp"
            cat "$src/kustomize/stage/$f" >>"$tmp"
        done
        mv "$tmp" "$stages"
    fi
}

build_dex() {
    # Dex v2.41 does not compile without cgo (cmd/dex refers to its sqlite3
    # storage type, which only exists with cgo); we use its memory storage.
    CGO=1 build_go dex "$DEX_DIR" dex "github.com/dexidp/dex@$DEX_VERSION" \
        "-s -w -X main.version=$DEX_VERSION" \
        dex github.com/dexidp/dex/cmd/dex
    # Dex embeds its web assets (login templates, themes): nothing else to copy.
}

build_crane() {
    build_go crane "$CRANE_DIR" crane "github.com/google/go-containerregistry@$CRANE_VERSION" \
        "-s -w" crane github.com/google/go-containerregistry/cmd/crane
}

build_metallb() {
    # Only the controller (it assigns addresses; kube-proxy on the real node
    # answers for them, so no speaker is needed). Its CRDs come from the same
    # module: config/crd/bases is plain controller-gen output (the Helm and
    # "native" manifests add a conversion webhook we do not run).
    build_go metallb "$METALLB_DIR" metallb "go.universe.tf/metallb@$METALLB_VERSION" "-s -w" \
        metallb-controller go.universe.tf/metallb/controller
    if [[ ! -s $METALLB_DIR/crds.yaml ]]; then
        [[ -n ${GO:-} ]] || find_go
        go_fetch metallb "go.universe.tf/metallb@$METALLB_VERSION"
        local src f tmp
        src=$(cd "$MODULES/metallb" && "$GO" list -m -f '{{.Dir}}' go.universe.tf/metallb)
        tmp=$(mktemp "$METALLB_DIR/crds.yaml.XXXXXX")
        for f in "$src"/config/crd/bases/*.yaml; do
            echo "---" >>"$tmp"
            cat "$f" >>"$tmp"
        done
        mv "$tmp" "$METALLB_DIR/crds.yaml"
    fi
}

# --- Debian packages ---------------------------------------------------------
# command (or absolute file path) → package providing it
APT_NEEDS=(
    "gcc:gcc"                          # cgo, for Dex
    "/usr/include/stdio.h:libc6-dev"   # cgo, for Dex
    "/usr/bin/docker-registry:docker-registry"
    "htpasswd:apache2-utils"
    "openssl:openssl"
    "curl:curl"
    "setsid:util-linux"
    # The real node (testenv/node.sh) and its images (testenv/images.sh).
    "containerd:containerd"
    "ctr:containerd"
    "runc:runc"
    "/usr/lib/cni/bridge:containernetworking-plugins"
    "iptables:iptables"
    "conntrack:conntrack"
    "ip:iproute2"
    "socat:socat"
    "nsenter:util-linux"
    "/bin/busybox:busybox-static"
    "/usr/lib/x86_64-linux-gnu/libc.a:libc6-dev"
)
install_apt_packages() {
    local entry cmd pkg missing=()
    for entry in "${APT_NEEDS[@]}"; do
        cmd=${entry%%:*} pkg=${entry##*:}
        if [[ $cmd == /* ]]; then
            [[ -e $cmd ]] || missing+=("$pkg")
        else
            command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
        fi
    done
    ((${#missing[@]})) || return 0
    local sudo=()
    ((EUID == 0)) || sudo=(sudo)
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Try without an index refresh first (fast when lists are current).
    if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
        "${sudo[@]}" apt-get update -qq
        "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# --- maintainer: regenerate the Kubernetes wrapper module ------------------
# The release's own go.mod replaces each staging module with a local path
# (k8s.io/X => ./staging/src/k8s.io/X); from outside that tree each must be
# replaced by the published k8s.io/X v0.<minor>.<patch> instead.
gen_k8s_mod() {
    local v=$1 gomod dir=$MODULES/kubernetes
    find_go
    export GOFLAGS=-mod=mod
    gomod=$(cd /tmp && "$GO" mod download -json "k8s.io/kubernetes@$v" | awk -F'"' '/"GoMod"/ {print $4}')
    mkdir -p "$dir"
    {
        echo "// Wrapper module: builds Kubernetes $v binaries from the Go module proxy."
        echo "// Generated by 'testenv/build.sh gen-k8s-mod $v' from k8s.io/kubernetes@$v's own"
        echo "// go.mod: every './staging/src/k8s.io/X' replace becomes 'k8s.io/X => k8s.io/X v0.${v#v1.}'."
        echo "module berth.local/testenv/kubernetes"
        echo
        grep -E '^go ' "$gomod"
        grep -E '^godebug ' "$gomod" || true
        echo
        echo "require k8s.io/kubernetes $v"
        echo
        echo "replace ("
        awk -v r="v0.${v#v1.}" '$2 == "=>" && $3 ~ /^\.\/staging\/src\// { print "\t" $1 " => " $1 " " r }' "$gomod"
        echo ")"
    } >"$dir/go.mod"
    rm -f "$dir/go.sum"
    (cd "$dir" && "$GO" get "k8s.io/kubernetes/cmd/kube-apiserver@$v" "k8s.io/kubernetes/cmd/kube-controller-manager@$v" \
        "k8s.io/kubernetes/cmd/kube-scheduler@$v" "k8s.io/kubernetes/cmd/kubectl@$v" \
        "k8s.io/kubernetes/cmd/kubelet@$v" "k8s.io/kubernetes/cmd/kube-proxy@$v")
    log "regenerated $dir/go.mod and go.sum for $v"
}

print_env() {
    local kv
    for kv in \
        "TESTENV_K8S_BIN=$K8S_DIR/bin" "TESTENV_K8S_VERSION=$K8S_VERSION" \
        "TESTENV_ETCD=$ETCD_DIR/bin/etcd" "TESTENV_ETCD_VERSION=$ETCD_VERSION" \
        "TESTENV_KWOK=$KWOK_DIR/bin/kwok" "TESTENV_KWOK_STAGES=$KWOK_DIR/stages.yaml" \
        "TESTENV_KWOK_VERSION=$KWOK_VERSION" \
        "TESTENV_DEX=$DEX_DIR/bin/dex" "TESTENV_DEX_VERSION=$DEX_VERSION" \
        "TESTENV_CRANE=$CRANE_DIR/bin/crane" "TESTENV_CRANE_VERSION=$CRANE_VERSION" \
        "TESTENV_METALLB=$METALLB_DIR/bin/metallb-controller" "TESTENV_METALLB_CRDS=$METALLB_DIR/crds.yaml" \
        "TESTENV_METALLB_VERSION=$METALLB_VERSION" \
        "TESTENV_REGISTRY_BIN=$(command -v docker-registry || echo /usr/bin/docker-registry)"; do
        printf '%s=%q\n' "${kv%%=*}" "${kv#*=}"
    done
}

main() {
    local print=0 parts=()
    while (($#)); do
        case "$1" in
        gen-k8s-mod)
            gen_k8s_mod "${2:?usage: build.sh gen-k8s-mod vX.Y.Z}"
            return
            ;;
        --print-env) print=1 ;;
        crane | etcd | kwok | dex | metallb | kubernetes) parts+=("$1") ;;
        *) die "unknown argument: $1 (usage: build.sh [--print-env] [crane|etcd|kwok|dex|metallb|kubernetes]...)" ;;
        esac
        shift
    done
    # Small ones first: a broken proxy shows up in seconds, not after Kubernetes.
    ((${#parts[@]})) || parts=(crane etcd kwok dex metallb kubernetes)
    mkdir -p "$CACHE"
    # One build at a time per cache (two test runs starting on a fresh machine).
    exec 9>"$CACHE/.lock"
    if ! flock -n 9; then
        log "waiting for another testenv build to finish…"
        flock 9
    fi
    install_apt_packages
    local p
    for p in "${parts[@]}"; do "build_$p"; done
    ((print == 0)) || print_env
}

main "$@"
