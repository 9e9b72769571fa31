#!/usr/bin/env bash
# Run the same workload with Karpenter and with the cluster autoscaler and print a Markdown
# table: cost, each API's p99 and rejections (as the SLO judged them, after the warmup),
# node launches, terminations and churn (launches + terminations, counted from the event log),
# and for Karpenter the replica restarts its disruptions caused.
#
#   scripts/karpenter-vs-ca.sh [karpenter.toml ca.toml]
#
# Defaults: scenarios/karpenter-vs-ca.toml and scenarios/karpenter-vs-ca.cluster-autoscaler.toml.
# CONSOLIDATE_AFTER="30s 5m 30m" adds a Karpenter row per value (the GPU and CPU pools'
# consolidate_after replaced). Needs jq and a release build (cargo build --release).
set -euo pipefail

if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
  sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
simctl=${SIMCTL:-$root/target/release/simctl}
command -v jq >/dev/null || { echo "error: jq not found (apt-get install -y jq)" >&2; exit 1; }
[ -x "$simctl" ] || { echo "error: $simctl not found: cargo build --release first" >&2; exit 1; }
karpenter=${1:-$root/scenarios/karpenter-vs-ca.toml}
ca=${2:-$root/scenarios/karpenter-vs-ca.cluster-autoscaler.toml}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

row() { # label results.json
  jq -r --arg name "$1" '
    def judged(a; o): (a.slo.checks[] | select(.objective == o) | .actual);
    def launches: [.events[] | select(.kind == "node_launch")] | length;
    def terminations: [.events[] | select(.kind == "node_terminate" and (.message | endswith(" terminated")))] | length;
    [ $name,
      (.cost_usd_total * 100 | round / 100 | tostring),
      (.apis | map("\(.name) \(judged(.; "latency_p99_ms") | . * 10 | round / 10)") | join(", ")),
      (.apis | map("\(.name) \(judged(.; "rejection_rate") * 10000 | round / 100) %") | join(", ")),
      (launches | tostring),
      (terminations | tostring),
      (launches + terminations | tostring),
      (if .karpenter then (.karpenter.pools | map(.replica_restarts) | add | tostring) else "–" end)
    ] | "| " + join(" | ") + " |"' "$2"
}

echo "| run | cost USD | p99 ms (after warmup) | rejected (after warmup) | node launches | node terminations | node churn | replica restarts by disruption |"
echo "|---|---:|---|---|---:|---:|---:|---:|"
"$simctl" run "$ca" --out "$work/ca.json" --quiet -y >/dev/null
row "cluster autoscaler" "$work/ca.json"
"$simctl" run "$karpenter" --out "$work/k.json" --quiet -y >/dev/null
row "karpenter" "$work/k.json"
for after in ${CONSOLIDATE_AFTER:-}; do
  sed "s/^consolidate_after = .*/consolidate_after = \"$after\"/" "$karpenter" > "$work/k-$after.toml"
  "$simctl" run "$work/k-$after.toml" --out "$work/k-$after.json" --quiet -y >/dev/null
  row "karpenter, consolidate_after $after" "$work/k-$after.json"
done
