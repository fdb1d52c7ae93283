#!/usr/bin/env bash
# Runs a `tnmat learning-curve` command in chunks on the shared machine: each chunk holds the CPU lock
# (flock /work/coord/cpu.lock, or $LOCK) for at most $CHUNK seconds (default 420), every finished fit is stored in
# the --results file, and the next chunk resumes from it; stops when a chunk fitted everything (exit 0) or after
# $MAX_CHUNKS chunks.  The learning-curve arguments follow the script name, e.g.
#   bash benchmarks/sweep_lc_chunks.sh nmd18 --preset paper --r-cut 8 --n-max 8 --l-max 6 --models ttn ...
set -u
cd "$(dirname "$0")/.." && . .venv/bin/activate
LOCK=${LOCK:-/work/coord/cpu.lock}
for i in $(seq 1 "${MAX_CHUNKS:-40}"); do
    echo "## chunk $i $(date -u +%H:%M:%S) load: $(cat /proc/loadavg)"
    flock "$LOCK" timeout "${CHUNK:-420}" tnmat learning-curve "$@" -q
    rc=$?
    [ $rc -eq 0 ] && { echo "## finished $(date -u +%H:%M:%S)"; exit 0; }
    [ $rc -ne 124 ] && { echo "## stopped: exit $rc"; exit $rc; }
    sleep "${PAUSE:-15}"  # let the other jobs take the lock
done
echo "## not finished after ${MAX_CHUNKS:-40} chunks"
