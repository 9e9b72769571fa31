//! The fidelity over several validated scenarios — the table the README publishes — and how
//! the simulated scale events line up with the real ones.

use serde::Serialize;

use sim::fidelity::{self, Fidelity};

use super::Validation;

/// The fidelity over several scenarios: the figures the README publishes.
#[derive(Serialize)]
pub(super) struct Summary {
    schema: &'static str,
    scenarios: Vec<SummaryRow>,
    /// Median |relative error| of p50 over the scenarios, before and after calibration.
    median_abs_error_p50: (Option<f64>, Option<f64>),
    /// The same for p99.
    median_abs_error_p99: (Option<f64>, Option<f64>),
    /// Median |relative error| of the mean ready replicas (what cost follows).
    median_abs_error_mean_replicas: (Option<f64>, Option<f64>),
    /// Median share of seconds within ±1 replica.
    median_replicas_within_one: (Option<f64>, Option<f64>),
}

#[derive(Serialize)]
struct SummaryRow {
    scenario: String,
    error_p50: (Option<f64>, Option<f64>),
    error_p99: (Option<f64>, Option<f64>),
    error_mean_replicas: (Option<f64>, Option<f64>),
    replicas_within_one: (f64, Option<f64>),
    scale_events: (ScaleAgreement, Option<ScaleAgreement>),
}

/// How the simulated scale events line up with the real ones.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct ScaleAgreement {
    /// Scale events in the real run.
    real: usize,
    /// Real events with a simulated one in the same direction close enough to pair.
    paired: usize,
    /// Paired events less than half a policy tick apart: the same decision tick.
    same_tick: usize,
    /// Same tick, and the same replica counts before and after.
    same_tick_and_counts: usize,
    /// Simulated events with no real counterpart.
    unmatched_simulated: usize,
}

impl ScaleAgreement {
    pub(super) fn of(f: &Fidelity, tick_s: f64) -> ScaleAgreement {
        let paired: Vec<_> = f
            .scale_events
            .iter()
            .filter_map(|m| Some((m, m.simulated?, m.offset_s?)))
            .collect();
        let same_tick: Vec<_> = paired
            .iter()
            .filter(|(_, _, off)| off.abs() < tick_s / 2.0)
            .collect();
        ScaleAgreement {
            real: f.scale_events.len(),
            paired: paired.len(),
            same_tick: same_tick.len(),
            same_tick_and_counts: same_tick
                .iter()
                .filter(|(m, e, _)| m.real.from == e.from && m.real.to == e.to)
                .count(),
            unmatched_simulated: f.unmatched_simulated_events,
        }
    }

    /// `3/5 same tick (2 also same counts), 5/5 paired within the window`.
    pub(super) fn describe(&self, tick_s: f64) -> String {
        format!(
            "{}/{} at the same {tick_s:.0} s tick ({} with the same replica counts), {}/{} paired{}",
            self.same_tick,
            self.real,
            self.same_tick_and_counts,
            self.paired,
            self.real,
            if self.unmatched_simulated > 0 {
                format!(", {} simulated unpaired", self.unmatched_simulated)
            } else {
                String::new()
            }
        )
    }

    /// `3/5 (2)`: same tick of real, (same tick and counts).
    fn short(&self) -> String {
        format!(
            "{}/{} ({})",
            self.same_tick, self.real, self.same_tick_and_counts
        )
    }
}

impl Summary {
    pub(super) fn of(done: &[Validation]) -> Summary {
        let error = |f: &Fidelity, m: &str| f.relative_error(m);
        let rows: Vec<SummaryRow> = done
            .iter()
            .map(|v| SummaryRow {
                scenario: v.scenario.clone(),
                error_p50: (
                    error(&v.simulated, fidelity::LATENCY_P50),
                    v.calibrated
                        .as_ref()
                        .and_then(|c| error(c, fidelity::LATENCY_P50)),
                ),
                error_p99: (
                    error(&v.simulated, fidelity::LATENCY_P99),
                    v.calibrated
                        .as_ref()
                        .and_then(|c| error(c, fidelity::LATENCY_P99)),
                ),
                error_mean_replicas: (
                    error(&v.simulated, fidelity::MEAN_REPLICAS),
                    v.calibrated
                        .as_ref()
                        .and_then(|c| error(c, fidelity::MEAN_REPLICAS)),
                ),
                replicas_within_one: (
                    v.simulated.replicas_within_one,
                    v.calibrated.as_ref().map(|c| c.replicas_within_one),
                ),
                scale_events: (
                    ScaleAgreement::of(&v.simulated, v.tick_s),
                    v.calibrated
                        .as_ref()
                        .map(|c| ScaleAgreement::of(c, v.tick_s)),
                ),
            })
            .collect();
        let med = |values: Vec<Option<f64>>| {
            let mut v: Vec<f64> = values.into_iter().flatten().map(f64::abs).collect();
            v.sort_by(f64::total_cmp);
            fidelity::median(&v)
        };
        Summary {
            schema: "simctl.validation-summary/v1",
            median_abs_error_p50: (
                med(rows.iter().map(|r| r.error_p50.0).collect()),
                med(rows.iter().map(|r| r.error_p50.1).collect()),
            ),
            median_abs_error_p99: (
                med(rows.iter().map(|r| r.error_p99.0).collect()),
                med(rows.iter().map(|r| r.error_p99.1).collect()),
            ),
            median_abs_error_mean_replicas: (
                med(rows.iter().map(|r| r.error_mean_replicas.0).collect()),
                med(rows.iter().map(|r| r.error_mean_replicas.1).collect()),
            ),
            median_replicas_within_one: (
                med(rows.iter().map(|r| Some(r.replicas_within_one.0)).collect()),
                med(rows.iter().map(|r| r.replicas_within_one.1).collect()),
            ),
            scenarios: rows,
        }
    }

    pub(super) fn render(&self) -> String {
        use std::fmt::Write as _;
        let abs = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.1}%", v.abs() * 100.0));
        let mut s = String::new();
        let _ = writeln!(
            s,
            "\nfidelity over {} scenarios (|relative error|; before → after calibration)",
            self.scenarios.len()
        );
        let pair = |a: Option<f64>, b: Option<f64>| format!("{} → {}", abs(a), abs(b));
        let _ = writeln!(
            s,
            "  {:<40} {:>15} {:>15} {:>15} {:>17} {:>21}",
            "scenario", "p50", "p99", "mean replicas", "replicas ±1", "scale events same tick"
        );
        for r in &self.scenarios {
            let _ = writeln!(
                s,
                "  {:<40} {:>15} {:>15} {:>15} {:>17} {:>21}",
                r.scenario,
                pair(r.error_p50.0, r.error_p50.1),
                pair(r.error_p99.0, r.error_p99.1),
                pair(r.error_mean_replicas.0, r.error_mean_replicas.1),
                pair(Some(r.replicas_within_one.0), r.replicas_within_one.1),
                format!(
                    "{} → {}",
                    r.scale_events.0.short(),
                    r.scale_events.1.map_or("-".into(), |a| a.short())
                ),
            );
        }
        let _ = writeln!(
            s,
            "  {:<40} {:>15} {:>15} {:>15} {:>17}",
            "median",
            pair(self.median_abs_error_p50.0, self.median_abs_error_p50.1),
            pair(self.median_abs_error_p99.0, self.median_abs_error_p99.1),
            pair(
                self.median_abs_error_mean_replicas.0,
                self.median_abs_error_mean_replicas.1
            ),
            pair(
                self.median_replicas_within_one.0,
                self.median_replicas_within_one.1
            ),
        );
        let _ = writeln!(
            s,
            "  (scale events: real events at the same policy tick in simulation, and in brackets \
             those that also went between the same replica counts)"
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::validate::SCHEMA;
    use sim::fidelity::{Observed, ScaleEvent};
    use sim::results::Percentiles;

    fn observed(p50: f64, replicas: &[f64], events: &[(f64, u32, u32)]) -> Observed {
        Observed {
            tenants: Vec::new(),
            ttft_ms: None,
            itl_ms: None,
            latency_ms: Percentiles {
                p50,
                p90: p50,
                p99: p50 * 3.0,
                ..Percentiles::default()
            },
            requests: 1000,
            rejected: 0,
            replicas: replicas.to_vec(),
            scale_events: events
                .iter()
                .map(|&(t_s, from, to)| ScaleEvent { t_s, from, to })
                .collect(),
        }
    }

    #[test]
    fn scale_events_are_counted_by_tick_and_by_counts() {
        let real = observed(
            100.0,
            &[1.0, 3.0, 4.0, 2.0],
            &[(10.0, 1, 3), (40.0, 3, 4), (70.0, 4, 2), (90.0, 2, 1)],
        );
        // Same tick and counts; same tick, one replica more; one tick late; none.
        let sim = observed(
            110.0,
            &[1.0, 3.0, 5.0, 2.0],
            &[(10.0, 1, 3), (40.0, 3, 5), (80.0, 5, 2)],
        );
        let f = fidelity::compare(&real, &sim, 30.0);
        let a = ScaleAgreement::of(&f, 10.0);
        assert_eq!(
            a,
            ScaleAgreement {
                real: 4,
                paired: 3,
                same_tick: 2,
                same_tick_and_counts: 1,
                unmatched_simulated: 0,
            }
        );
        assert_eq!(a.short(), "2/4 (1)");
        assert!(a
            .describe(10.0)
            .starts_with("2/4 at the same 10 s tick (1 with the same replica counts), 3/4 paired"));

        let v = Validation {
            schema: SCHEMA,
            scenario: "s.toml".into(),
            api: "model".into(),
            duration_s: 4.0,
            seed: 1,
            tick_s: 10.0,
            replicas: "simctl serve".into(),
            not_measured: Vec::new(),
            service_time: "constant".into(),
            calibrated_service_time: None,
            simulated: f,
            calibrated: None,
            real_replicas: real.replicas.clone(),
            simulated_replicas: sim.replicas.clone(),
            calibrated_replicas: None,
        };
        let summary = Summary::of(&[v]);
        // Mean ready replicas: 2.5 real, 2.75 simulated.
        let e = summary.median_abs_error_mean_replicas.0.expect("error");
        assert!((e - 0.1).abs() < 1e-12, "{e}");
        let table = summary.render();
        assert!(table.contains("mean replicas"), "{table}");
        assert!(table.contains("10.0% → -"), "{table}");
        assert!(table.contains("2/4 (1) → -"), "{table}");
    }
}
