#!/usr/bin/env bash
# Compare reactive autoscalers with and without a forecast floor (predictive scaling) and print
# Markdown tables: every run, then per policy the cheapest setting that meets the SLO and the
# best SLO within the reactive policy's budget.
#
#   scripts/predictive-comparison.sh [scenario.toml ...]
#
# Default scenarios: scenarios/predictive-{diurnal,business-day,trace}.toml. For each, the
# `[apis.autoscaling]` block (and everything after it) is replaced by cortex, hpa and kpa at
# several targets (TARGETS="2 3 4" overrides the per-scenario list), each with no forecast, a
# Holt–Winters forecast and a seasonal-naive one (the scenario's forecast period and step).
# Figures count from the end of the scenario's SLO warmup: replica-hours (one GPU per replica,
# so also GPU-hours) and node cost integrated from the results timeline, p99 and rejections as
# the SLO check judged them. Needs jq and a release build (cargo build --release).
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
simctl=${SIMCTL:-$root/target/release/simctl}
command -v jq >/dev/null || { echo "error: jq not found (apt-get install -y jq)" >&2; exit 1; }
[ -x "$simctl" ] || { echo "error: $simctl not found: cargo build --release first" >&2; exit 1; }
if [ $# -eq 0 ]; then
  set -- "$root"/scenarios/predictive-diurnal.toml "$root"/scenarios/predictive-business-day.toml \
    "$root"/scenarios/predictive-trace.toml
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The value of `key` inside TOML table `table` of file $1 (first match; quotes kept).
setting() {
  awk -v table="$2" -v key="$3" '
    /^\[/ { inside = ($0 == "[" table "]") }
    inside && $1 == key { sub(/^[^=]*= */, ""); sub(/ *#.*/, ""); print; exit }' "$1"
}

for scenario in "$@"; do
  name=$(basename "$scenario" .toml)
  case "$name" in
    predictive-trace) targets=${TARGETS:-"4 6 8"} ;;
    *) targets=${TARGETS:-"2 3 4"} ;;
  esac
  max=$(setting "$scenario" apis.autoscaling max_replicas)
  period=$(setting "$scenario" apis.autoscaling.forecast period)
  step=$(setting "$scenario" apis.autoscaling.forecast step)
  head=$work/$name.head.toml
  # Everything before the autoscaling block, with the scenario's directory for relative paths.
  awk '/^\[apis\.autoscaling\]/ { exit } { print }' "$scenario" >"$head"
  cp -r "$(dirname "$scenario")/traces" "$work/" 2>/dev/null || true
  rows=$work/$name.rows
  : >"$rows"
  for policy in cortex hpa kpa; do
    for forecast in none holt_winters seasonal_naive; do
      for target in $targets; do
        file=$work/$name-$policy-$forecast-$target.toml
        {
          cat "$head"
          echo "[apis.autoscaling]"
          echo "policy = \"$policy\""
          echo "min_replicas = 1"
          echo "max_replicas = $max"
          case $policy in
            cortex) echo "target_in_flight = $target" ;;
            hpa) echo "metric = \"concurrency\""; echo "target_average_value = $target" ;;
            kpa) echo "target = $target"; echo "target_utilization = 1.0" ;;
          esac
          if [ "$forecast" != none ]; then
            echo "[apis.autoscaling.forecast]"
            echo "model = \"$forecast\""
            echo "period = $period"
            echo "step = $step"
          fi
        } >"$file"
        out=$work/out.json
        "$simctl" run "$file" --out "$out" --quiet --yes
        jq -r --arg policy "$policy" --arg forecast "$forecast" --arg target "$target" '
          . as $r
          | .apis[0] as $a
          | $a.slo.warmup_s as $w
          | .timeline.step_s as $dt
          | ([.timeline.t_s, .timeline.series["replicas_ready/" + $a.name]] | transpose
             | map(select(.[0] >= $w) | .[1]) | add * $dt / 3600) as $replica_h
          | ([.timeline.t_s, .timeline.series["cost_usd_per_hour/cluster"]] | transpose
             | map(select(.[0] >= $w) | .[1]) | add * $dt / 3600) as $cost
          | ($a.slo.checks | map({(.objective): .actual}) | add) as $c
          | [$policy, $forecast, $target, $replica_h, $cost, $c.latency_p99_ms,
             100 * $c.rejection_rate, $a.slo.met] | @tsv' "$out" >>"$rows"
      done
    done
  done

  echo "### $name"
  echo
  echo "| policy | forecast | target | replica-hours | node cost USD | p99 ms | rejected % | SLO |"
  echo "|---|---|---:|---:|---:|---:|---:|---|"
  awk -F'\t' '{ printf "| %s | %s | %s | %.1f | %.2f | %.0f | %.3f | %s |\n", $1, $2, $3, $4, $5, $6, $7, ($8 == "true" ? "met" : "missed") }' "$rows"
  echo
  echo "| policy | forecast | cheapest meeting the SLO: target | replica-hours | vs reactive | within the reactive's budget: best p99 ms | rejected % |"
  echo "|---|---|---:|---:|---:|---:|---:|"
  awk -F'\t' '
    { key = $1 SUBSEP $2; n[key]++; i = n[key]
      target[key, i] = $3; rh[key, i] = $4; p99[key, i] = $6; rej[key, i] = $7; met[key, i] = ($8 == "true")
      if (!($1 in seen)) { seen[$1] = 1; order[++np] = $1 }
      if (!(($1, $2) in fseen)) { fseen[$1, $2] = 1; forder[$1, ++nf[$1]] = $2 } }
    END {
      for (p = 1; p <= np; p++) {
        policy = order[p]
        # The reactive policy'"'"'s cheapest setting that meets the SLO sets the budget.
        base = policy SUBSEP "none"; budget = -1; base_rh = -1
        for (i = 1; i <= n[base]; i++) if (met[base, i] && (base_rh < 0 || rh[base, i] < base_rh)) base_rh = rh[base, i]
        budget = base_rh
        for (f = 1; f <= nf[policy]; f++) {
          forecast = forder[policy, f]; key = policy SUBSEP forecast
          best = 0; best_rh = -1
          for (i = 1; i <= n[key]; i++) if (met[key, i] && (best_rh < 0 || rh[key, i] < best_rh)) { best = i; best_rh = rh[key, i] }
          # Best p99 among settings costing no more replica-hours than the budget (+1 %).
          bp = -1; brej = ""
          for (i = 1; i <= n[key]; i++) if (budget >= 0 && rh[key, i] <= budget * 1.01 && (bp < 0 || p99[key, i] < bp)) { bp = p99[key, i]; brej = rej[key, i] }
          if (best) {
            vs = (base_rh > 0 && forecast != "none") ? sprintf("%+.1f %%", 100 * (best_rh / base_rh - 1)) : "–"
            printf "| %s | %s | %s | %.1f | %s |", policy, forecast, target[key, best], best_rh, vs
          } else {
            printf "| %s | %s | none of %d | – | – |", policy, forecast, n[key]
          }
          if (bp >= 0) printf " %.0f | %.3f |\n", bp, brej; else printf " – | – |\n"
        }
      }
    }' "$rows"
  echo
done
