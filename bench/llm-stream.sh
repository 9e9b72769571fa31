#!/usr/bin/env bash
# How many streamed LLM completions per second can `simctl loadgen --openai` send on schedule,
# compared with Python streaming clients (bench/llm_stream_client.py): the aiohttp client vLLM's
# benchmark_serving.py uses (pinned in bench/requirements.txt, installed into a venv under
# target/), and a hand-written stdlib asyncio client with no library overhead?
#
#   bench/llm-stream.sh [seconds per run, default 5]
#
# Target: `simctl serve --llm` with a 1 ms iteration, huge batches and 16-token outputs, so the
# server is never the limit. "Sustained" means at least 98 % of the scheduled requests completed
# and the p99 send lag is at most 10 ms (loadgen's schedule lag; the Python client's lag between
# a request's scheduled time and its task starting). Each tool's highest sustained rate is found
# by bisection; prints a table and the ratio. Only 127.0.0.1 is used.
set -Eeuo pipefail
trap 'rc=$?; echo "error: bench/llm-stream.sh line $LINENO: \"$BASH_COMMAND\" failed (exit $rc)" >&2' ERR
die() { echo "error: $*" >&2; exit 1; }
cd "$(dirname "$0")/.."
secs=${1:-5}
case "$secs" in ''|*[!0-9]*|0*) die "seconds per run must be a whole number ≥ 1, found \"$secs\"" ;; esac
command -v python3 >/dev/null 2>&1 || die "python3 is needed for the reference clients"

cargo build --release --quiet || die "cargo build --release failed"
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])') \
  || target_dir=${CARGO_TARGET_DIR:-target}
bin=$target_dir/release/simctl
[ -x "$bin" ] || die "no simctl binary at $bin after cargo build --release"
venv=$target_dir/bench-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import aiohttp" 2>/dev/null; then
  python3 -m venv "$venv" || die "cannot create a Python venv at $venv (Debian: apt-get install python3-venv)"
  "$venv/bin/pip" install --quiet -r bench/requirements.txt || die "pip could not install bench/requirements.txt"
fi
work=$(mktemp -d)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" serve --llm --port 0 --step-base 1ms --step-per-prefill-token 0ns --step-per-decode-token 0ns \
  --max-num-seqs 10000 --max-num-batched-tokens 10000000 --kv-cache-tokens 100000000 \
  >"$work/serve.out" 2>&1 &
server_pid=$!
for _ in $(seq 50); do grep -q "listening on" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
addr=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.out" | head -1) || true
[ -n "$addr" ] || { cat "$work/serve.out" >&2; die "simctl serve --llm did not start within 5 s"; }
url=$addr/v1/completions
echo "target: $url (simctl serve --llm, 1 ms iterations); $(nproc) cores; ${secs}s per run; 16 prompt + 16 output tokens"

# One run of a tool at RATE: prints "completed_share lag_p99_ms ttft_p50_ms".
run_simctl() {
  "$bin" loadgen --target "$url" --openai --input-tokens 16 --output-tokens 16 \
    --rate "$1" --arrivals constant --duration "${secs}s" --quiet --out "$work/lg.json" \
    || die "simctl loadgen --rate $1 failed"
  python3 - "$work/lg.json" "$1" "$secs" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); rate, secs = float(sys.argv[2]), float(sys.argv[3])
a = r["apis"][0]
print(a["completed"] / (rate * secs), r["schedule_lag_ms"]["p99"], (r.get("ttft_ms") or {}).get("p50", 0))
PY
}
run_stdlib() { run_python "$1" stdlib; }
run_aiohttp() { run_python "$1" aiohttp; }
run_python() {
  "$venv/bin/python" bench/llm_stream_client.py "$url" "$1" "$secs" 16 16 "$2" >"$work/py.json" \
    || die "the Python $2 client failed at rate $1"
  python3 - "$work/py.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(r["completed"] / max(1, r["scheduled"]), r["lag_p99_ms"] or 0, r["ttft_p50_ms"] or 0)
PY
}
sustained() { python3 -c "import sys; c,l=map(float,sys.argv[1:]); sys.exit(0 if c >= 0.98 and l <= 10 else 1)" "$1" "$2"; }

# Bisect the highest sustained rate of tool $1 in [$2, $3].
search() {
  local tool=$1 low=$2 high=$3 best=0 rate share lag ttft verdict
  for _ in 1 2 3 4 5 6 7; do
    rate=$(((low + high) / 2))
    "run_$tool" "$rate" >"$work/run.out"
    read -r share lag ttft <"$work/run.out"
    if sustained "$share" "$lag"; then verdict=sustained; low=$rate; best=$rate; else verdict=behind; high=$rate; fi
    printf '  %-8s --rate %6d: completed %.1f %%, send lag p99 %.1f ms, TTFT p50 %.1f ms -> %s\n' \
      "$tool" "$rate" "$(python3 -c "print(100*$share)")" "$lag" "$ttft" "$verdict" >&2
  done
  echo "$best"
}

aiohttp_best=$(search aiohttp 100 6000)
stdlib_best=$(search stdlib 100 8000)
simctl_best=$(search simctl 1000 40000)
echo
echo "| client | streamed requests/s sustained | ratio to aiohttp |"
echo "|---|---:|---:|"
python3 - "$aiohttp_best" "$stdlib_best" "$simctl_best" <<'PY'
import sys
a, s, c = map(int, sys.argv[1:])
print(f"| Python aiohttp (vLLM benchmark_serving.py style) | {a} | 1.00 |")
print(f"| Python stdlib asyncio, hand-parsed HTTP | {s} | {s / max(a, 1):.1f} |")
print(f"| simctl loadgen --openai | {c} | {c / max(a, 1):.1f} |")
PY
