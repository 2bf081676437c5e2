#!/usr/bin/env bash
# Starts or stops a three-node local Strata cluster of bin/kvnode processes.
#
#   scripts/cluster.sh start   # nodes 1-3 on 127.0.0.1:7370-7373, 7380-7383, 7390-7393
#   scripts/cluster.sh stop    # SIGTERM, SIGKILL after $STOP_TIMEOUT s; removes the data
#
# Data, logs and pid files go to a folder made by mktemp, whose path is kept
# in bin/cluster.dir while the cluster runs.
set -euo pipefail
cd "$(dirname "$0")/.."

KVNODE=${KVNODE:-bin/kvnode}
STATE=bin/cluster.dir
STOP_TIMEOUT=${STOP_TIMEOUT:-10}
IDS=(1 2 3)
base() { echo $((7360 + 10 * $1)); } # node 1: 7370, node 2: 7380, node 3: 7390

start() {
  if [[ -f $STATE ]]; then
    echo "a cluster is already running in $(cat "$STATE"); run 'make cluster-stop' first" >&2
    exit 1
  fi
  [[ -x $KVNODE ]] || { echo "$KVNODE not built; run 'make build'" >&2; exit 1; }
  local dir initial="" endpoints=""
  dir=$(mktemp -d -t strata-cluster.XXXXXX)
  echo "$dir" > "$STATE"
  for id in "${IDS[@]}"; do
    initial+="${initial:+,}$id=127.0.0.1:$(( $(base "$id") + 1 ))"
    endpoints+="${endpoints:+,}127.0.0.1:$(base "$id")"
  done
  for id in "${IDS[@]}"; do
    local b
    b=$(base "$id")
    "$KVNODE" start --id "$id" --data-dir "$dir/node$id" \
      --client-addr "127.0.0.1:$b" --peer-addr "127.0.0.1:$((b + 1))" \
      --gossip-addr "127.0.0.1:$((b + 2))" --http-addr "127.0.0.1:$((b + 3))" \
      --initial-cluster "$initial" >"$dir/node$id.log" 2>&1 &
    echo $! > "$dir/node$id.pid"
  done
  # Wait until every node is ready (or one died).
  for id in "${IDS[@]}"; do
    local b ok=""
    b=$(base "$id")
    for _ in $(seq 1 150); do
      if curl -fs "http://127.0.0.1:$((b + 3))/readyz" >/dev/null 2>&1; then ok=1; break; fi
      kill -0 "$(cat "$dir/node$id.pid")" 2>/dev/null || break
      sleep 0.2
    done
    if [[ -z $ok ]]; then
      echo "node $id is not ready; its log, $dir/node$id.log, ends with:" >&2
      tail -n 20 "$dir/node$id.log" >&2
      exit 1
    fi
  done
  echo "cluster of 3 nodes ready; data, logs and pids in $dir"
  for id in "${IDS[@]}"; do
    local b
    b=$(base "$id")
    echo "  node $id: client 127.0.0.1:$b  http http://127.0.0.1:$((b + 3))/metrics  pid $(cat "$dir/node$id.pid")"
  done
  echo "try: $KVNODE --endpoints $endpoints put k v"
  echo "     $KVNODE --endpoints $endpoints status"
  echo "stop: make cluster-stop"
}

stop() {
  if [[ ! -f $STATE ]]; then
    echo "no cluster running (no $STATE)"
    return 0
  fi
  local dir pids=()
  dir=$(cat "$STATE")
  for f in "$dir"/node*.pid; do
    [[ -f $f ]] || continue
    local pid
    pid=$(cat "$f")
    if kill -TERM "$pid" 2>/dev/null; then pids+=("$pid"); fi
  done
  for _ in $(seq 1 $((STOP_TIMEOUT * 10))); do
    local alive=()
    for pid in ${pids[@]+"${pids[@]}"}; do
      kill -0 "$pid" 2>/dev/null && alive+=("$pid")
    done
    pids=(${alive[@]+"${alive[@]}"})
    [[ ${#pids[@]} -eq 0 ]] && break
    sleep 0.1
  done
  for pid in ${pids[@]+"${pids[@]}"}; do
    echo "node pid $pid did not stop within ${STOP_TIMEOUT}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$dir" "$STATE"
  echo "cluster stopped; removed $dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
