#!/usr/bin/env bash
# bench/callgrind-doors.sh: instructions per request through the Gemini door and through the
# OpenAI door, for the same ~1 KB request with two tools (written by bench/run's
# write_openai_bodies into bench/out/tmp/), against skiff sim, under callgrind. Independent of
# the machine's load. Each figure is the difference between two runs that differ by 100
# requests of one kind, so start-up and shutdown cancel out.
#   bench/callgrind-doors.sh            (after a make bench, or at least make build)
set -euo pipefail
BENCH=$(cd "$(dirname "$0")" && pwd)
SKIFF=${SKIFF:-$(dirname "$BENCH")/build/skiff}
IN=${IN:-$BENCH/out/tmp}
W=$(mktemp -d)
PORT=${PORT:-27611}
run() { # NG NO -> total Ir
    "$SKIFF" sim --listen 127.0.0.1:$PORT --rpm unlimited --tpm unlimited --rpd unlimited >/dev/null 2>&1 &
    local simp=$!
    printf 'listen: 127.0.0.1:%s\nworkers: 1\nupstreams: {gemini: {base_url: http://127.0.0.1:%s, keys: [AIzaSyBench0000000000000000000000000001]}}\nstorage: {sqlite: ""}\ncatalog: {refresh_s: 0}\n' $((PORT + 1)) $PORT >"$W/s.yaml"
    SKIFF_LOG_LEVEL=warn valgrind --tool=callgrind --callgrind-out-file="$W/cg.out" "$SKIFF" serve --config "$W/s.yaml" >/dev/null 2>&1 &
    local vp=$! i
    for i in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$((PORT + 1))/healthz" && break; sleep 0.3; done
    for i in $(seq 1 "$1"); do curl -s -o /dev/null -XPOST -H 'content-type: application/json' --data-binary @"$IN/req-g1k.json" "http://127.0.0.1:$((PORT + 1))/v1beta/models/gemini-2.5-flash:generateContent"; done
    for i in $(seq 1 "$2"); do curl -s -o /dev/null -XPOST -H 'content-type: application/json' --data-binary @"$IN/req-oai1k.json" "http://127.0.0.1:$((PORT + 1))/v1/chat/completions"; done
    kill $vp; wait $vp || true
    kill $simp; wait $simp || true
    awk '/^totals:/{print $2}' "$W/cg.out"
}
a=$(run 20 0); b=$(run 120 0); c=$(run 20 100)
echo "gemini door: $(((b - a) / 100)) instructions/request"
echo "openai door: $(((c - a) / 100)) instructions/request"
rm -rf "$W"
