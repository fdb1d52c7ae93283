#!/usr/bin/env bash
# Times the README main job (tnmat fit alloys with its defaults) on a fresh alloy cache and a fresh numba
# cache (the first run on a new machine), then a rerun on the cached alloys.  Usage: OUT=/tmp/x bash benchmarks/main_job.sh
set -u
mkdir -p "${OUT:-/tmp/mainjob}"
cd "$(dirname "$0")/.." && . .venv/bin/activate
export TNMAT_CACHE=${OUT:-/tmp/mainjob}/cache NUMBA_CACHE_DIR=${OUT:-/tmp/mainjob}/numba
echo "## first run $(date -u +%H:%M:%S) load: $(cat /proc/loadavg)"
/usr/bin/time -f "wall %e s, user %U s, sys %S s, maxrss %M kB" tnmat fit alloys -o ${OUT:-/tmp/mainjob}/alloys_ttn.tnmat 2>&1 | grep -v "^\s*[0-9]*%|" | tr '\r' '\n' | grep -v "it/s\]$" | tail -25
echo "## rerun $(date -u +%H:%M:%S) load: $(cat /proc/loadavg)"
/usr/bin/time -f "wall %e s, user %U s, sys %S s, maxrss %M kB" tnmat fit alloys -o ${OUT:-/tmp/mainjob}/alloys_ttn2.tnmat 2>&1 | tr '\r' '\n' | grep -v "it/s\]$" | tail -15
echo "## done $(date -u +%H:%M:%S)"
