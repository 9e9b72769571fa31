//! `[[batch_jobs]]`: workers, items, batches, retries and the dead-letter queue of one job.

use std::path::Path;

use super::cluster::{check_fits, group_selector};
use super::diagnostics::{FieldError, LoadError};
use super::fields::positive_u32;
use super::model::{BatchJob, NodeGroup, Requests};
use super::schema::BatchJobSpec;
use super::service_time;
use crate::time::SimTime;
use crate::units::DurationSpec;

/// Check one batch-job spec at `path` (`batch_jobs[i]`) and build its runtime model.
pub(super) fn build_batch_job(
    spec: &BatchJobSpec,
    path: &str,
    groups: &[NodeGroup],
    base_dir: &Path,
) -> Result<BatchJob, LoadError> {
    let workers = positive_u32(Some(spec.workers), 1, format!("{path}.workers"))?;
    super::fields::at_most(workers, super::fields::MAX_FLEET, format!("{path}.workers"))?;
    super::fields::at_most(spec.items, 1_000_000_000, format!("{path}.items"))?;
    if spec.items == 0 {
        return Err(
            FieldError::new(format!("{path}.items"), "expected an integer ≥ 1, found 0").into(),
        );
    }
    let batch_size = match spec.batch_size {
        Some(0) => {
            return Err(FieldError::new(
                format!("{path}.batch_size"),
                "expected an integer ≥ 1, found 0",
            )
            .into())
        }
        Some(n) => n,
        None => 1,
    };
    let failure_rate = spec.failure_rate.unwrap_or(0.0);
    if !(0.0..1.0).contains(&failure_rate) {
        return Err(FieldError::new(
            format!("{path}.failure_rate"),
            format!("expected a probability in [0, 1), found {failure_rate}"),
        )
        .into());
    }
    let max_receive_count = match &spec.sqs_dead_letter_queue {
        Some(dlq) => Some(positive_u32(
            Some(dlq.max_receive_count),
            1,
            format!("{path}.sqs_dead_letter_queue.max_receive_count"),
        )?),
        None => None,
    };
    let timeout = match spec.timeout {
        Some(DurationSpec(t)) if t == SimTime::ZERO => {
            return Err(
                FieldError::new(format!("{path}.timeout"), "expected a duration > 0").into(),
            )
        }
        other => other.map(|d| d.0),
    };
    if spec.compute.mig_profile.is_some() {
        return Err(FieldError::new(
            format!("{path}.compute.mig_profile"),
            "batch workers take whole GPUs (or a time-sliced share); MIG is for APIs",
        )
        .into());
    }
    let requests = Requests {
        cpu_m: spec.compute.cpu.millicores(),
        mem_mib: spec.compute.mem.mebibytes(),
        gpu: spec.compute.gpu,
        ..Requests::default()
    };
    let allowed = group_selector(&spec.node_groups, &spec.tolerations, groups, path)?;
    check_fits(
        requests,
        &allowed,
        groups,
        &format!("{path}.compute"),
        "a worker",
    )?;
    Ok(BatchJob {
        name: spec.name.clone(),
        submit_at: spec.submit_at.map_or(SimTime::ZERO, |d| d.0),
        workers,
        items: spec.items,
        batch_size,
        node_groups: allowed,
        requests,
        startup_time: spec.startup_time.map_or(SimTime::ZERO, |d| d.0),
        service_time: service_time::build(
            &spec.service_time,
            &format!("{path}.service_time"),
            base_dir,
        )?,
        failure_rate,
        timeout,
        max_receive_count,
        priority: spec.priority,
    })
}
