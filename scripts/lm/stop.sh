#!/usr/bin/env bash
# Copied from the promptcast workspace's shared/lm/stop.sh (the local-model kit this project is
# developed against) so that a checkout alone can set up and start the model; behaviour unchanged.
# Stops the server that start.sh started on PORT (default 8765).
home=${PROMPTCAST_LM_HOME:-$HOME/.cache/promptcast-lm}
pidfile="$home/server-${1:-8765}.pid"
[ -f "$pidfile" ] || exit 0
kill "$(cat "$pidfile")" 2>/dev/null || true
rm -f "$pidfile"
