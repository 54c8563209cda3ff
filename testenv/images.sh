# shellcheck shell=bash disable=SC2034  # (variables are read by testenv/run)
# testenv/images.sh — real images for the real node, without a Docker engine;
# sourced by testenv/run.
#
# Each image is a static binary (and a few files) appended as one layer onto
# an empty base with crane, given its platform, entrypoint and user, and
# pushed to the test registry, where every pull needs credentials:
#
#   cs101/add-two:1.0   the demo service from add-two/, built here with a
#                       statically linked glibc (no base image needed)
#   cs101/tools:1.0     Debian's static busybox (sh, echo, httpd, …), for
#                       command overrides and volumes
#   cs101/jupyter:1.0   the tools image with a `start-notebook.py` stand-in that serves
#                       --ServerApp.root_dir over HTTP on 8888, the shape of
#                       Berth's JupyterLab preset
#   testenv/pause:1     the node's sandbox image (testenv/images/pause.c),
#                       imported into containerd rather than pulled
#
# They are pushed with the Harbor-style robot account `robot$cs101+ci`, whose
# token is random per run.

# shellcheck disable=SC2016 # a literal `$`: Harbor's robot accounts are named so
ROBOT_NAME='robot$cs101+ci'

# images_build_add_two: start the static build of add-two in the background
# (cargo, in the workspace's target dir under its own target triple, so the
# normal builds are untouched); images_push waits for it.
images_build_add_two() {
    local triple
    triple=$(rustc -vV | awk '/^host:/ {print $2}')
    ADD_TWO_BIN=${CARGO_TARGET_DIR:-$TESTENV_SRC/../target}/$triple/release/add-two
    (
        cd "$TESTENV_SRC/.." || exit
        export "CARGO_TARGET_$(echo "$triple" | tr 'a-z-' 'A-Z_')_RUSTFLAGS=-C target-feature=+crt-static"
        CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --quiet --release --locked -p add-two --target "$triple"
    ) >"$D/logs/add-two-build.log" 2>&1 &
    ADD_TWO_BUILD_PID=$!
}

# layer <dir> <tar>: a reproducible layer of everything under <dir>.
layer() {
    tar -C "$1" --owner=0 --group=0 --mtime=@0 --sort=name -cf "$2" .
}

# image <ref> <layer.tar> <crane mutate args>...
image() {
    local ref=$1 tar=$2
    shift 2
    if ! DOCKER_CONFIG=$D/docker "$TESTENV_CRANE" append --insecure -f "$tar" -t "$ref" >>"$D/logs/crane.log" 2>&1 ||
        ! DOCKER_CONFIG=$D/docker "$TESTENV_CRANE" mutate --insecure --set-platform linux/amd64 "$@" \
            -t "$ref" "$ref" >>"$D/logs/crane.log" 2>&1; then
        tail -n 20 "$D/logs/crane.log" >&2
        die "building image $ref failed"
    fi
}

images_push() {
    local R=$REGISTRY I=$D/image
    mkdir -p "$I/pause/bin" "$I/tools/bin" "$I/tools/usr/local/bin" "$I/tools/etc" "$I/add-two/usr/local/bin" "$I/add-two/etc"
    # pause
    gcc -static -Os -s -o "$I/pause/bin/pause" "$TESTENV_SRC/images/pause.c" 2>>"$D/logs/images.log" ||
        die "compiling the pause image failed (log: $D/logs/images.log)"
    layer "$I/pause" "$I/pause.tar.layer"
    image "$R/testenv/pause:1" "$I/pause.tar.layer" --entrypoint /bin/pause --user 65535:65535
    # A tarball for the node's containerd (named by its reference, which is
    # the node's sandbox_image), imported rather than pulled: the registry
    # wants credentials, which containerd has only for the images Pods name.
    PAUSE_IMAGE=$R/testenv/pause:1
    DOCKER_CONFIG=$D/docker "$TESTENV_CRANE" pull --insecure "$PAUSE_IMAGE" "$I/pause.tar" >>"$D/logs/crane.log" 2>&1 ||
        die "pulling the pause image back failed (log: $D/logs/crane.log)"
    # tools + jupyter stand-in
    cp /bin/busybox "$I/tools/bin/busybox"
    local a
    for a in sh echo cat ls sleep date httpd mkdir touch wc head tail env id printf test true false wget nc ip; do
        ln -sf busybox "$I/tools/bin/$a"
    done
    printf 'root:x:0:0:root:/:/bin/sh\nnonroot:x:65532:65532:nonroot:/:/bin/sh\n' >"$I/tools/etc/passwd"
    cat >"$I/tools/usr/local/bin/start-notebook.py" <<'EOF'
#!/bin/sh
# Stand-in for JupyterLab's start-notebook.py in Berth's test world: serves the notebook root
# (--ServerApp.root_dir) over HTTP on 8888, like JupyterLab would.
root=/
for a in "$@"; do
    case $a in --ServerApp.root_dir=*) root=${a#*=} ;; esac
done
echo "jupyter stand-in: serving $root on :8888"
exec httpd -f -v -p 8888 -h "$root"
EOF
    chmod 0755 "$I/tools/usr/local/bin/start-notebook.py"
    layer "$I/tools" "$I/tools.tar.layer"
    image "$R/cs101/tools:1.0" "$I/tools.tar.layer" --user 65532:65532 --cmd /bin/sh \
        --env PATH=/usr/local/bin:/bin
    image "$R/cs101/jupyter:1.0" "$I/tools.tar.layer" --user 65532:65532 --entrypoint start-notebook.py \
        --env PATH=/usr/local/bin:/bin --exposed-ports 8888
    # add-two
    wait "$ADD_TWO_BUILD_PID" || { cat "$D/logs/add-two-build.log" >&2; die "building add-two (static) failed"; }
    cp "$ADD_TWO_BIN" "$I/add-two/usr/local/bin/add-two"
    printf 'nonroot:x:65532:65532:nonroot:/:/sbin/nologin\n' >"$I/add-two/etc/passwd"
    layer "$I/add-two" "$I/add-two.tar.layer"
    image "$R/cs101/add-two:1.0" "$I/add-two.tar.layer" --entrypoint /usr/local/bin/add-two \
        --user 65532:65532 --exposed-ports 5000
    REAL_IMAGE=$R/cs101/add-two:1.0
    REAL_IMAGE_DIGEST=$(DOCKER_CONFIG=$D/docker "$TESTENV_CRANE" digest --insecure "$REAL_IMAGE" 2>>"$D/logs/crane.log")
    TOOLS_IMAGE=$R/cs101/tools:1.0
    JUPYTER_IMAGE=$R/cs101/jupyter:1.0
}
