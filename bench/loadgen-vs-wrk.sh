#!/usr/bin/env bash
# How fast can `simctl loadgen` send while keeping its open-model schedule, compared with wrk
# (closed loop, as fast as it can) against the same loopback target on this machine?
#
#   bench/loadgen-vs-wrk.sh [seconds per run, default 5]
#
# Target: `simctl serve` with zero service time. "Sustained" means the completed rate is at
# least 98% of the scheduled rate and the p99 schedule lag is at most 10 ms. Prints a table and
# the ratio; installs wrk (Debian package) when it is missing. Only 127.0.0.1 is used.
set -Eeuo pipefail
# Under set -e a failing command ends the script; say which one instead of exiting silently.
trap 'rc=$?; echo "error: bench/loadgen-vs-wrk.sh line $LINENO: \"$BASH_COMMAND\" failed (exit $rc)" >&2' ERR
die() { echo "error: $*" >&2; exit 1; }
cd "$(dirname "$0")/.."
secs=${1:-5}
case "$secs" in ''|*[!0-9]*|0*) die "seconds per run must be a whole number ≥ 1, found \"$secs\"" ;; esac

if ! command -v wrk >/dev/null 2>&1; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq && $sudo apt-get install -y -qq wrk >/dev/null
fi
cargo build --release --quiet || die "cargo build --release failed"
# The binary is wherever cargo puts it: CARGO_TARGET_DIR, a target-dir in .cargo/config.toml,
# or ./target; cargo metadata knows which.
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') \
  || target_dir=${CARGO_TARGET_DIR:-target}
bin=$target_dir/release/simctl
[ -x "$bin" ] || die "no simctl binary at $bin after cargo build --release (CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-unset})"
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" serve --port 0 --service-time 0ms --threads 4096 --max-queue-length 0 >"$work/serve.out" 2>&1 &
server_pid=$!
for _ in $(seq 50); do grep -q "listening on" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
addr=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.out" | head -1) || true
if [ -z "$addr" ]; then
  echo "error: simctl serve did not start listening within 5 s; its output:" >&2
  cat "$work/serve.out" >&2
  exit 1
fi
url=$addr/
echo "target: $url (simctl serve, zero service time); $(nproc) cores; ${secs}s per run"

printf 'wrk.method = "POST"\nwrk.body = "{}"\nwrk.headers["Content-Type"] = "application/json"\n' >"$work/post.lua"
wrk_best=0
for conf in "1 32" "2 64"; do
  set -- $conf
  wrk -t"$1" -c"$2" -d"${secs}s" -s "$work/post.lua" "$url" >"$work/wrk.out" 2>&1 \
    || { cat "$work/wrk.out" >&2; die "wrk -t$1 -c$2 failed against $url"; }
  rps=$(awk '/^Requests\/sec/ {print int($2)}' "$work/wrk.out")
  [ -n "$rps" ] || { cat "$work/wrk.out" >&2; die "no Requests/sec in wrk's output"; }
  echo "wrk -t$1 -c$2: $rps req/s"
  [ "$rps" -gt "$wrk_best" ] && wrk_best=$rps
done

# One open-model run at RATE: prints "completed_rps lag_p50_ms lag_p99_ms late".
run() {
  "$bin" loadgen --target "$url" --rate "$1" --duration "${secs}s" --quiet --out "$work/lg.json" "${@:2}" \
    || die "simctl loadgen --rate $1 failed"
  python3 - "$work/lg.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
a = r["apis"][0]
print(round(a["completed"] / r["planned_s"]), r["schedule_lag_ms"]["p50"], r["schedule_lag_ms"]["p99"], r["late"])
PY
}
sustained() { # rate completed lag_p99
  python3 -c "import sys; r,c,l=map(float,sys.argv[1:]); sys.exit(0 if c >= 0.98*r and l <= 10 else 1)" "$1" "$2" "$3"
}

low=$((wrk_best / 10)); high=$((wrk_best * 12 / 10)); best=0
echo "searching the highest sustained rate in [$low, $high] req/s"
for _ in 1 2 3 4 5 6 7; do
  rate=$(((low + high) / 2))
  run "$rate" >"$work/run.out"
  read -r done lag50 lag99 late <"$work/run.out"
  if sustained "$rate" "$done" "$lag99"; then verdict=sustained; low=$rate; best=$rate; else verdict=behind; high=$rate; fi
  echo "  loadgen --rate $rate: completed $done req/s, schedule lag p50 ${lag50} ms p99 ${lag99} ms, late $late -> $verdict"
done
half=$((best / 2))
run "$half" >"$work/run.out"
read -r done lag50 lag99 late <"$work/run.out"
echo
echo "| tool | requests/s | ratio to wrk |"
echo "|---|---|---|"
echo "| wrk (closed loop, best of -t1/-t2) | $wrk_best | 1.00 |"
python3 -c "import sys; b,w=map(int,sys.argv[1:]); print(f'| simctl loadgen (open model, sustained) | {b} | {b/w:.2f} |')" "$best" "$wrk_best"
echo
echo "schedule error at 50% of that rate ($half req/s): p50 ${lag50} ms, p99 ${lag99} ms, late (> 5 ms) $late"
