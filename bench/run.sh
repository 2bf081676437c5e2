#!/usr/bin/env bash
# The Strata vs etcd benchmark suite (`make bench`).
#
# Starts a local 3-node Strata cluster (bin/kvnode) and, if an etcd binary is
# on PATH or named by ETCD_BIN, a 3-node etcd cluster, both with fsync on and
# data on the same disk (a folder made by mktemp under $BENCH_TMP). Runs each
# workload against each system in turn, A B A B ($REPEATS times), then an
# open-loop put sweep on both, then Strata's put throughput with 1, 2, 4 and 8
# user shards. Writes bench/results/<date>.json and <date>.md. Everything it
# starts it stops, on success, failure or Ctrl-C.
#
# Knobs (environment):
#   DURATION=10s        one measured run
#   REPEATS=3           repeats of each workload on each system
#   KEYS=100000         key space (loaded once per cluster before the runs)
#   CLIENTS=100         clients of the throughput workloads
#   SHARDS=4            user shards of the main Strata cluster
#   SWEEP_RATES="..."   offered ops/s of the open-loop put sweep ("" skips it)
#   SWEEP_DURATION=5s   one sweep step
#   SHARD_CURVE="1 2 4 8"  shard counts of the curve ("" skips it)
#   SHARD_CURVE_REPEATS=2  runs of each shard count, each on a fresh cluster
#   WORKLOADS="..."     labels of the workloads to run (default: all, see below)
#   ETCD_BIN=/usr/bin/etcd  etcd to compare with (default: `etcd` on PATH)
#   BASE_PORT=27000     Strata uses BASE_PORT+10..+33, etcd BASE_PORT+110..+132
#   BENCH_TMP=/var/tmp  where the clusters' data goes (must be a real disk)
#   KEEP=1              keep the data and logs folder
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${DURATION:-10s}
REPEATS=${REPEATS:-3}
KEYS=${KEYS:-100000}
CLIENTS=${CLIENTS:-100}
SHARDS=${SHARDS:-4}
SWEEP_RATES=${SWEEP_RATES-1000 2000 4000 6000 8000 12000 16000 20000}
SWEEP_DURATION=${SWEEP_DURATION:-5s}
SHARD_CURVE=${SHARD_CURVE-1 2 4 8}
SHARD_CURVE_REPEATS=${SHARD_CURVE_REPEATS:-2}
BASE_PORT=${BASE_PORT:-27000}
BENCH_TMP=${BENCH_TMP:-/var/tmp}
KVNODE=$ROOT/bin/kvnode
KVBENCH=$ROOT/bin/kvbench
ETCD_BIN=${ETCD_BIN:-$(command -v etcd || true)}

# The workloads: label, then kvbench flags. A label starting with "etcd:" runs
# on etcd only (Strata has no such level).
ALL_WORKLOADS=(
  "put-${CLIENTS}c|--workload put --clients $CLIENTS --conns 8"
  "put-1c|--workload put --clients 1"
  "get-linearizable|--workload get --clients $CLIENTS --conns 8"
  "get-serializable|--workload get --read serializable --clients $CLIENTS --conns 8"
  "ycsb-a|--workload mixed --read-ratio 0.5 --dist zipfian --clients $CLIENTS --conns 8"
  "ycsb-b|--workload mixed --read-ratio 0.95 --dist zipfian --clients $CLIENTS --conns 8"
  "ycsb-e|--workload scan --dist zipfian --scan-length 100 --clients 32 --conns 8"
  "batch-1000|--workload batch --batch-size 1000 --clients 1"
  "cas-hot8|--workload cas --hot-keys 8 --clients 32 --conns 8"
)
WORKLOADS=${WORKLOADS:-}

STAMP=$(date -u +%Y-%m-%d-%H%M%S)
OUT_DIR=$ROOT/bench/results
mkdir -p "$OUT_DIR" "$BENCH_TMP"
WORK=$(mktemp -d "$BENCH_TMP/strata-bench.XXXXXX")
RUNS=$WORK/runs.jsonl
PIDS_STRATA=()
PIDS_ETCD=()

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# stop_pids sends SIGTERM to each pid, waits up to 15s, then SIGKILLs.
stop_pids() {
  local p
  for p in "$@"; do kill -TERM "$p" 2>/dev/null || true; done
  for _ in $(seq 1 150); do
    local alive=""
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [[ -z $alive ]] && return 0
    sleep 0.1
  done
  for p in "$@"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "$@"; do wait "$p" 2>/dev/null || true; done
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if ((${#PIDS_STRATA[@]})); then stop_pids "${PIDS_STRATA[@]}"; fi
  if ((${#PIDS_ETCD[@]})); then stop_pids "${PIDS_ETCD[@]}"; fi
  if [[ ${KEEP:-} == 1 ]]; then log "data and logs kept in $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM

strata_endpoints() { echo "127.0.0.1:$((BASE_PORT + 10)),127.0.0.1:$((BASE_PORT + 20)),127.0.0.1:$((BASE_PORT + 30))"; }
etcd_endpoints() { echo "127.0.0.1:$((BASE_PORT + 110)),127.0.0.1:$((BASE_PORT + 120)),127.0.0.1:$((BASE_PORT + 130))"; }

# start_strata SHARDS: a fresh 3-node cluster with SHARDS user shards.
start_strata() {
  local shards=$1 dir=$WORK/strata-$1-$RANDOM initial="" i b
  mkdir -p "$dir"
  for i in 1 2 3; do initial+="${initial:+,}$i=127.0.0.1:$((BASE_PORT + 10 * i + 1))"; done
  for i in 1 2 3; do
    b=$((BASE_PORT + 10 * i))
    "$KVNODE" start --id "$i" --data-dir "$dir/node$i" --shards "$shards" \
      --client-addr "127.0.0.1:$b" --peer-addr "127.0.0.1:$((b + 1))" \
      --gossip-addr "127.0.0.1:$((b + 2))" --http-addr "127.0.0.1:$((b + 3))" \
      --initial-cluster "$initial" >"$dir/node$i.log" 2>&1 &
    PIDS_STRATA+=($!)
  done
  for i in 1 2 3; do
    b=$((BASE_PORT + 10 * i))
    local ok=""
    for _ in $(seq 1 300); do
      if curl -fs "http://127.0.0.1:$((b + 3))/readyz" >/dev/null 2>&1; then ok=1; break; fi
      sleep 0.1
    done
    [[ -n $ok ]] || { log "strata node $i not ready; log:"; tail -20 "$dir/node$i.log" >&2; exit 1; }
  done
  log "strata: 3 nodes, $shards user shards, data in $dir"
}

stop_strata() {
  if ((${#PIDS_STRATA[@]})); then stop_pids "${PIDS_STRATA[@]}"; fi
  PIDS_STRATA=()
}

start_etcd() {
  local initial="" i
  for i in 1 2 3; do initial+="${initial:+,}e$i=http://127.0.0.1:$((BASE_PORT + 100 + 10 * i + 1))"; done
  for i in 1 2 3; do
    local c=$((BASE_PORT + 100 + 10 * i)) p=$((BASE_PORT + 100 + 10 * i + 1))
    # --max-txn-ops: the default 128 is too few for the 1,000-put Txn of
    # batch-1000. --quota-backend-bytes: room for the suite's writes.
    "$ETCD_BIN" --name "e$i" --data-dir "$WORK/etcd$i" \
      --listen-client-urls "http://127.0.0.1:$c" --advertise-client-urls "http://127.0.0.1:$c" \
      --listen-peer-urls "http://127.0.0.1:$p" --initial-advertise-peer-urls "http://127.0.0.1:$p" \
      --initial-cluster "$initial" --initial-cluster-state new --initial-cluster-token kvbench \
      --max-txn-ops 2000 --quota-backend-bytes 8589934592 \
      --logger zap --log-level warn >"$WORK/etcd$i.log" 2>&1 &
    PIDS_ETCD+=($!)
  done
  log "etcd: 3 members ($("$ETCD_BIN" --version | head -1)), data in $WORK/etcd{1,2,3}"
}

# wait_up SYSTEM ENDPOINTS: until a probe passes (60s at most).
wait_up() {
  for _ in $(seq 1 30); do
    if "$KVBENCH" --system "$1" --endpoints "$2" --workload get --ops 1 --clients 1 --probe-timeout 2s >/dev/null 2>&1; then
      return 0
    fi
    sleep 1
  done
  log "$1 at $2 does not answer"
  exit 1
}

# bench SYSTEM LABEL FLAGS...: one measured run, appended to $RUNS.
bench() {
  local sys=$1 label=$2 eps
  shift 2
  if [[ $sys == strata ]]; then eps=$(strata_endpoints); else eps=$(etcd_endpoints); fi
  if ! "$KVBENCH" --system "$sys" --endpoints "$eps" --label "$label" --keys "$KEYS" \
    --json-out "$RUNS" "$@" 2>&1 | sed "s/^/  /" >&2; then
    log "$label on $sys failed (see above); going on"
  fi
}

selected() {
  [[ -z $WORKLOADS ]] && return 0
  local w
  for w in $WORKLOADS; do [[ $w == "$1" ]] && return 0; done
  return 1
}

for knob in REPEATS SHARD_CURVE_REPEATS; do
  [[ ${!knob} =~ ^[1-9][0-9]*$ ]] || { echo "bench: $knob=${!knob}: want a whole number of runs, 1 or more" >&2; exit 2; }
done
[[ -x $KVNODE ]] || { echo "bench: $KVNODE is missing: run 'make build'" >&2; exit 1; }
[[ -x $KVBENCH ]] || { echo "bench: $KVBENCH is missing: run 'make bench' (it builds it)" >&2; exit 1; }
SYSTEMS=(strata)
NOTES=()
if [[ -n $ETCD_BIN && -x $ETCD_BIN ]]; then
  SYSTEMS=(strata etcd)
else
  log "no etcd on PATH and no ETCD_BIN: running Strata alone; the Strata/etcd ratios will be missing"
  NOTES+=("No etcd was run: the Strata/etcd ratios are missing.")
  ETCD_BIN=""
fi
NOTES+=("get-serializable: a replica answers from its local state without confirming it is current, on both systems.")
NOTES+=("batch-1000: a Strata batch is atomic per shard only; etcd's is one atomic Txn (etcd started with --max-txn-ops 2000).")
NOTES+=("cas-hot8: each op is a read then a compare-and-swap of what was read, on 8 hot keys; conflicts are not errors.")

log "results go to $OUT_DIR/$STAMP.{json,md}; work folder $WORK"
start_strata "$SHARDS"
if [[ -n $ETCD_BIN ]]; then start_etcd; fi
for s in "${SYSTEMS[@]}"; do
  if [[ $s == strata ]]; then wait_up strata "$(strata_endpoints)"; else wait_up etcd "$(etcd_endpoints)"; fi
  log "$s: loading $KEYS keys"
  bench "$s" load --workload load --clients 8 --progress off >/dev/null
done
# The load runs are not part of the comparison.
: >"$RUNS"

for entry in "${ALL_WORKLOADS[@]}"; do
  label=${entry%%|*}
  flags=${entry#*|}
  only=""
  if [[ $label == etcd:* ]]; then only=etcd; label=${label#etcd:}; fi
  selected "$label" || continue
  for r in $(seq 1 "$REPEATS"); do
    for s in "${SYSTEMS[@]}"; do
      [[ -n $only && $s != "$only" ]] && continue
      log "$label on $s, repeat $r/$REPEATS"
      # shellcheck disable=SC2086
      bench "$s" "$label" $flags --duration "$DURATION"
    done
  done
done

if [[ -n $SWEEP_RATES ]]; then
  for rate in $SWEEP_RATES; do
    for s in "${SYSTEMS[@]}"; do
      log "open-loop put at $rate ops/s on $s"
      bench "$s" "sweep-put@$rate" --workload put --rate "$rate" --clients 400 --conns 8 --duration "$SWEEP_DURATION"
    done
  done
fi

if [[ -n $SHARD_CURVE ]]; then
  stop_strata
  if ((${#PIDS_ETCD[@]})); then stop_pids "${PIDS_ETCD[@]}"; PIDS_ETCD=(); fi
  # Each repeat walks every shard count, so drift over the run hits all.
  for r in $(seq 1 "$SHARD_CURVE_REPEATS"); do
    for n in $SHARD_CURVE; do
      start_strata "$n"
      wait_up strata "$(strata_endpoints)"
      log "put-${CLIENTS}c with $n shards, repeat $r/$SHARD_CURVE_REPEATS"
      bench strata "shards-$n" --workload put --clients "$CLIENTS" --conns 8 --duration "$DURATION"
      stop_strata
    done
  done
fi

# The report: machine, versions, knobs, notes.
notes_json=$(printf '%s\n' "${NOTES[@]}" | jq -R . | jq -s .)
etcd_version=""
[[ -z $ETCD_BIN ]] || etcd_version=$("$ETCD_BIN" --version | head -1)
jq -n \
  --arg date "$STAMP" \
  --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')" \
  --arg cores "$(nproc)" \
  --arg mem "$(free -h | awk '/^Mem:/{print $2}')" \
  --arg kernel "$(uname -r)" \
  --arg disk "$(df -h "$WORK" | awk 'NR==2{print $1" ("$2")"}')" \
  --arg go "$(go version 2>/dev/null || echo unknown)" \
  --arg etcd "$etcd_version" \
  --arg commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --arg knobs "DURATION=$DURATION REPEATS=$REPEATS KEYS=$KEYS CLIENTS=$CLIENTS SHARDS=$SHARDS SWEEP_RATES='$SWEEP_RATES' SWEEP_DURATION=$SWEEP_DURATION SHARD_CURVE='$SHARD_CURVE' SHARD_CURVE_REPEATS=$SHARD_CURVE_REPEATS" \
  --argjson notes "$notes_json" \
  '{date:$date, machine:{cpu:$cpu, cores:$cores, memory:$mem, kernel:$kernel, disk:$disk}, go:$go, etcd:$etcd, strata_commit:$commit, knobs:$knobs, notes:$notes}' \
  >"$WORK/meta.json"
"$KVBENCH" summarize --runs "$RUNS" --meta "$WORK/meta.json" --json "$OUT_DIR/$STAMP.json" --md "$OUT_DIR/$STAMP.md"
cat "$OUT_DIR/$STAMP.md"
log "wrote $OUT_DIR/$STAMP.json and $OUT_DIR/$STAMP.md"
