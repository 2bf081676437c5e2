#!/usr/bin/env bash
# Runs a command while busy loops keep every core of the machine busy, to show
# that a suite stays green under load: a test that fails when the machine is
# busy is a bug in the test or the code. BURNERS sets the number of loops
# (default: one per core).
#
#   scripts/with-cpu-burner.sh make test
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: $0 COMMAND [ARG...]   (e.g. $0 make test)" >&2
  exit 2
fi
n=${BURNERS:-$(nproc)}
pids=()
stop() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null || true; }
trap stop EXIT INT TERM
for _ in $(seq "$n"); do
  # A low-priority loop would leave the tests the cores; these run at the
  # tests' own priority.
  ( while :; do :; done ) &
  pids+=($!)
done
echo "with-cpu-burner: $n busy loops running; $*"
"$@"
