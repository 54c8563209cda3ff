#!/usr/bin/env bash
# Installs axe-core (pinned) from the npm registry into a cache folder outside
# the repository, once, and prints the path of axe.min.js. The browser tests
# call it; node_modules never lands in the checkout.
set -euo pipefail
VERSION=4.14.1
CACHE=${BERTH_AXE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/berth-axe}
DIR=$CACHE/axe-core-$VERSION
FILE=$DIR/node_modules/axe-core/axe.min.js
if [[ ! -s $FILE ]]; then
    mkdir -p "$DIR"
    # A lock, so tests running side by side install it once.
    exec 9>"$DIR.lock"
    flock 9
    if [[ ! -s $FILE ]]; then
        npm install --prefix "$DIR" --no-save --no-audit --no-fund --loglevel=error \
            "axe-core@$VERSION" >&2
    fi
fi
printf '%s\n' "$FILE"
