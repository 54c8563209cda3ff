#!/usr/bin/env bash
# Installs the browser packages pinned in web/package-lock.json (the
# terminal, @xterm/xterm) into a cache folder outside the repository, once per
# lockfile, and prints the folder Berth's build embeds from (BERTH_VENDOR_DIR).
# node_modules never lands in the checkout; nothing third-party is committed.
#
#   BERTH_VENDOR_DIR=$(web/install.sh) cargo build -p berth
#
# Without it the build still works; the workload page then says the terminal
# is unavailable and shows the kubectl command.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
KEY=$(sha256sum "$HERE/package-lock.json" | cut -c1-16)
CACHE=${BERTH_WEB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-web}
DIR=$CACHE/$KEY
OUT=$DIR/vendor
if [[ ! -s $OUT/xterm/xterm.js ]]; then
    mkdir -p "$DIR"
    # A lock, so builds and tests running side by side install it once.
    exec 9>"$DIR.lock"
    flock 9
    if [[ ! -s $OUT/xterm/xterm.js ]]; then
        cp "$HERE/package.json" "$HERE/package-lock.json" "$DIR/"
        # `npm ci`: exactly the lockfile's versions and integrity hashes.
        (cd "$DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
        mkdir -p "$OUT/xterm.tmp"
        cp "$DIR/node_modules/@xterm/xterm/lib/xterm.js" \
            "$DIR/node_modules/@xterm/xterm/css/xterm.css" \
            "$DIR/node_modules/@xterm/xterm/LICENSE" "$OUT/xterm.tmp/"
        rm -rf "$OUT/xterm"
        mv "$OUT/xterm.tmp" "$OUT/xterm"
    fi
fi
printf '%s\n' "$OUT"
