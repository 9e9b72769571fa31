#!/usr/bin/env bash
# How many streamed LLM completions per second can `simctl loadgen --openai` send on schedule,
# compared with Python streaming clients:
#   - guidellm (pinned in bench/requirements-guidellm.txt, installed into a venv under target/),
#     the Python LLM benchmark the issue names, as shipped (its default worker processes), with
#     synthetic prompts from a tokenizer built offline by bench/guidellm_tokenizer.py;
#   - the aiohttp client vLLM's benchmark_serving.py uses (bench/llm_stream_client.py, aiohttp
#     pinned in bench/requirements.txt);
#   - a hand-written stdlib asyncio client with no library overhead (same file).
#
#   bench/llm-stream.sh [seconds per run, default 5]
#
# Target: `simctl serve --llm` with a 1 ms iteration, huge batches and 16-token outputs, so the
# server is never the limit. "Sustained" means at least 98 % of the scheduled requests completed
# and the p99 send lag is at most 10 ms (loadgen's schedule lag; for the Python clients the lag
# between a request's scheduled time and its sending: guidellm's `request_start - targeted_start`,
# our clients' task start). Each tool's highest sustained rate is found by bisection; prints a
# table and the ratios. Only 127.0.0.1 is used. SIMCTL_BENCH_SKIP_GUIDELLM=1 leaves guidellm out.
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
with_guidellm=1
[ "${SIMCTL_BENCH_SKIP_GUIDELLM:-0}" = 1 ] && with_guidellm=0
gl_venv=$target_dir/bench-guidellm-venv
if [ $with_guidellm = 1 ] && ! "$gl_venv/bin/python" -c "import guidellm, faker" 2>/dev/null; then
  echo "installing guidellm into $gl_venv (PyTorch comes with it: several GB, once)" >&2
  python3 -m venv "$gl_venv" || die "cannot create a Python venv at $gl_venv"
  "$gl_venv/bin/pip" install --quiet -r bench/requirements-guidellm.txt \
    || die "pip could not install bench/requirements-guidellm.txt (SIMCTL_BENCH_SKIP_GUIDELLM=1 skips guidellm)"
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

# Runs a command, writing its CPU seconds (user + system, its children's included) to $work/cpu.
cpu_timed() {
  local TIMEFORMAT='%U %S' rc=0
  { time "$@" 2>"$work/stderr" || rc=$?; } 2>"$work/cpu"
  [ $rc = 0 ] || cat "$work/stderr" >&2
  return $rc
}
cpu_seconds() { python3 -c 'import sys; print(sum(map(float, open(sys.argv[1]).read().split())))' "$work/cpu"; }

# One run of a tool at RATE: prints "completed_share lag_p99_ms ttft_p50_ms cpu_s completed".
run_simctl() {
  cpu_timed "$bin" loadgen --target "$url" --openai --input-tokens 16 --output-tokens 16 \
    --rate "$1" --arrivals constant --duration "${secs}s" --quiet --out "$work/lg.json" \
    || die "simctl loadgen --rate $1 failed"
  python3 - "$work/lg.json" "$1" "$secs" "$(cpu_seconds)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); rate, secs = float(sys.argv[2]), float(sys.argv[3])
a = r["apis"][0]
print(a["completed"] / (rate * secs), r["schedule_lag_ms"]["p99"], (r.get("ttft_ms") or {}).get("p50", 0), sys.argv[4], a["completed"])
PY
}
run_stdlib() { run_python "$1" stdlib; }
run_aiohttp() { run_python "$1" aiohttp; }
run_python() {
  cpu_timed "$venv/bin/python" bench/llm_stream_client.py "$url" "$1" "$secs" 16 16 "$2" >"$work/py.json" \
    || die "the Python $2 client failed at rate $1"
  python3 - "$work/py.json" "$(cpu_seconds)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(r["completed"] / max(1, r["scheduled"]), r["lag_p99_ms"] or 0, r["ttft_p50_ms"] or 0, sys.argv[2], r["completed"])
PY
}
run_guidellm() {
  rm -rf "$work/gl" && mkdir "$work/gl"
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 cpu_timed "$gl_venv/bin/guidellm" run \
    --backend "kind=openai_http,target=$addr,model=simctl-llm,request_format=/v1/completions" \
    --profile "kind=constant,rate=$1" --constraint "kind=max_duration,seconds=$secs" \
    --tokenizer "kind=huggingface_auto,model=$work/tokenizer" \
    --data kind=synthetic_text,prompt_tokens=16,output_tokens=16 \
    --output "kind=json,path=$work/gl/out.json" --disable-console >"$work/gl/log" \
    || { tail -20 "$work/gl/log" >&2; die "guidellm failed at rate $1"; }
  python3 - "$work/gl/out.json" "$1" "$secs" "$(cpu_seconds)" <<'PY'
import json, sys
rate, secs = float(sys.argv[2]), float(sys.argv[3])
requests = json.load(open(sys.argv[1]))["benchmarks"][0]["requests"]
ok = requests["successful"]
lags = sorted(r["info"]["timings"]["request_start"] - r["info"]["timings"]["targeted_start"] for r in ok)
ttft = sorted(r["time_to_first_token_ms"] for r in ok)
pick = lambda xs, q: xs[int(q * (len(xs) - 1))] if xs else 0
print(len(ok) / (rate * secs), 1000 * pick(lags, 0.99), pick(ttft, 0.5), sys.argv[4], len(ok))
PY
}
sustained() { python3 -c "import sys; c,l=map(float,sys.argv[1:]); sys.exit(0 if c >= 0.98 and l <= 10 else 1)" "$1" "$2"; }

# Bisect the highest sustained rate of tool $1 in [$2, $3].
search() {
  local tool=$1 low=$2 high=$3 best=0 rate share lag ttft verdict
  for _ in 1 2 3 4 5 6 7; do
    rate=$(((low + high) / 2))
    "run_$tool" "$rate" >"$work/run.out"
    read -r share lag ttft _ <"$work/run.out"
    if sustained "$share" "$lag"; then verdict=sustained; low=$rate; best=$rate; else verdict=behind; high=$rate; fi
    printf '  %-8s --rate %6d: completed %.1f %%, send lag p99 %.1f ms, TTFT p50 %.1f ms -> %s\n' \
      "$tool" "$rate" "$(python3 -c "print(100*$share)")" "$lag" "$ttft" "$verdict" >&2
  done
  echo "$best"
}

guidellm_best=0
if [ $with_guidellm = 1 ]; then
  HF_HUB_OFFLINE=1 "$gl_venv/bin/python" bench/guidellm_tokenizer.py "$work/tokenizer" \
    || die "bench/guidellm_tokenizer.py could not write a tokenizer"
  guidellm_best=$(search guidellm 10 2000)
fi
aiohttp_best=$(search aiohttp 100 6000)
stdlib_best=$(search stdlib 100 8000)
simctl_best=$(search simctl 1000 40000)

# Client CPU per completed request at one rate every client but guidellm sustains (the aiohttp
# client's ceiling): what each costs when none is starved, on a machine it shares with the server.
common=$aiohttp_best
for tool in aiohttp stdlib simctl; do
  "run_$tool" "$common" >"$work/run.out"
  read -r _ _ _ cpu done <"$work/run.out"
  python3 -c "import sys; print(round(1e6 * float(sys.argv[1]) / max(1, int(sys.argv[2]))))" "$cpu" "$done" >"$work/cpu-$tool"
done
echo
echo "| client | streamed requests/s sustained | simctl loadgen sustains | client CPU per request at $common/s |"
echo "|---|---:|---:|---:|"
python3 - "$guidellm_best" "$aiohttp_best" "$stdlib_best" "$simctl_best" \
  "$(cat "$work/cpu-aiohttp")" "$(cat "$work/cpu-stdlib")" "$(cat "$work/cpu-simctl")" <<'PY'
import sys
g, a, s, c, ca, cs, cc = map(int, sys.argv[1:])
times = lambda x: f"{c / x:.1f}x as many" if x else "-"
if g:
    print(f"| guidellm 0.8.1 (as shipped) | {g} | {times(g)} | - |")
print(f"| Python aiohttp (vLLM benchmark_serving.py style) | {a} | {times(a)} | {ca} µs |")
print(f"| Python stdlib asyncio, hand-parsed HTTP | {s} | {times(s)} | {cs} µs |")
print(f"| simctl loadgen --openai | {c} | 1.0x | {cc} µs |")
PY
