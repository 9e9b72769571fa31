//! NVIDIA Multi-Instance GPU: the profiles each GPU model offers and which partitions are valid.
//!
//! A GPU has 8 memory slices and 7 compute slices. Each profile takes a number of each and may
//! only start at certain memory slices (`nvidia-smi mig -lgipp`); a partition is valid when
//! every instance gets an allowed start, the memory ranges do not overlap, and compute adds up
//! to at most 7 (reference/cluster.md §6, NVIDIA's supported-profiles table and mig-parted).

/// Profile kinds, in the order used for per-profile resource counts.
pub const KINDS: usize = 7;

/// One profile kind: names on 40 GB and 80 GB GPUs, slices, allowed starts, max per GPU.
struct Kind {
    name_40gb: &'static str,
    name_80gb: &'static str,
    compute: u32,
    memory: u32,
    starts: &'static [u32],
    max_per_gpu: u32,
}

const TABLE: [Kind; KINDS] = [
    Kind {
        name_40gb: "1g.5gb",
        name_80gb: "1g.10gb",
        compute: 1,
        memory: 1,
        starts: &[0, 1, 2, 3, 4, 5, 6],
        max_per_gpu: 7,
    },
    Kind {
        name_40gb: "1g.5gb+me",
        name_80gb: "1g.10gb+me",
        compute: 1,
        memory: 1,
        starts: &[0, 1, 2, 3, 4, 5, 6],
        max_per_gpu: 1,
    },
    Kind {
        name_40gb: "1g.10gb",
        name_80gb: "1g.20gb",
        compute: 1,
        memory: 2,
        starts: &[0, 2, 4, 6],
        max_per_gpu: 4,
    },
    Kind {
        name_40gb: "2g.10gb",
        name_80gb: "2g.20gb",
        compute: 2,
        memory: 2,
        starts: &[0, 2, 4],
        max_per_gpu: 3,
    },
    Kind {
        name_40gb: "3g.20gb",
        name_80gb: "3g.40gb",
        compute: 3,
        memory: 4,
        starts: &[0, 4],
        max_per_gpu: 2,
    },
    Kind {
        name_40gb: "4g.20gb",
        name_80gb: "4g.40gb",
        compute: 4,
        memory: 4,
        starts: &[0],
        max_per_gpu: 1,
    },
    Kind {
        name_40gb: "7g.40gb",
        name_80gb: "7g.80gb",
        compute: 7,
        memory: 8,
        starts: &[0],
        max_per_gpu: 1,
    },
];

/// Whether an accelerator supports MIG, and with which profile names.
fn uses_80gb_names(accelerator: &str) -> Option<bool> {
    match accelerator {
        "A100 40GB" => Some(false),
        "A100 80GB" | "H100 80GB" => Some(true),
        _ => None,
    }
}

/// Why a MIG profile name or partition was refused; the message is shown to the user under the
/// scenario field that named it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MigError {
    /// The GPU has no MIG (only A100 and H100 do).
    #[error("{accelerator} does not support MIG (A100 and H100 do)")]
    Unsupported {
        /// The GPU model.
        accelerator: String,
    },
    /// No profile of that name on this GPU.
    #[error("no MIG profile \"{name}\" on {accelerator}; expected one of {expected}")]
    UnknownProfile {
        /// The name asked for.
        name: String,
        /// The GPU model.
        accelerator: String,
        /// The valid names, comma-separated.
        expected: String,
    },
    /// The instances need more than the GPU's 7 compute slices.
    #[error("uses {compute} compute slices; a GPU has 7")]
    TooMuchCompute {
        /// Compute slices asked for.
        compute: u32,
    },
    /// More instances of one profile than fit on a GPU.
    #[error("{count} × {profile} but at most {max} fit on one GPU")]
    TooManyOfProfile {
        /// Instances asked for.
        count: u32,
        /// The profile (A100 40GB name).
        profile: &'static str,
        /// The most one GPU holds.
        max: u32,
    },
    /// The memory slices overlap whatever the starts.
    #[error("the instances' memory slices cannot be placed without overlapping")]
    Overlap,
}

/// The profile kind of `name` on `accelerator`, or an error listing the valid names.
pub fn kind(accelerator: &str, name: &str) -> Result<usize, MigError> {
    let big = uses_80gb_names(accelerator).ok_or_else(|| MigError::Unsupported {
        accelerator: accelerator.to_string(),
    })?;
    TABLE
        .iter()
        .position(|k| (if big { k.name_80gb } else { k.name_40gb }) == name)
        .ok_or_else(|| {
            let names: Vec<&str> = TABLE
                .iter()
                .map(|k| if big { k.name_80gb } else { k.name_40gb })
                .collect();
            MigError::UnknownProfile {
                name: name.to_string(),
                accelerator: accelerator.to_string(),
                expected: names.join(", "),
            }
        })
}

/// Fraction of the GPU's compute a profile kind has (service time on the slice is the full-GPU
/// time divided by this).
pub fn compute_fraction(kind: usize) -> f64 {
    f64::from(TABLE[kind].compute) / 7.0
}

/// Check that one GPU can be partitioned into these profile kinds.
pub fn validate_partition(kinds: &[usize]) -> Result<(), MigError> {
    let compute: u32 = kinds.iter().map(|k| TABLE[*k].compute).sum();
    if compute > 7 {
        return Err(MigError::TooMuchCompute { compute });
    }
    for (k, kind) in TABLE.iter().enumerate() {
        let n = kinds.iter().filter(|x| **x == k).count() as u32;
        if n > kind.max_per_gpu {
            return Err(MigError::TooManyOfProfile {
                count: n,
                profile: kind.name_40gb,
                max: kind.max_per_gpu,
            });
        }
    }
    // Place the largest instances first; backtrack over allowed starts.
    let mut order: Vec<usize> = kinds.to_vec();
    order.sort_by_key(|k| std::cmp::Reverse(TABLE[*k].memory));
    fn place(order: &[usize], used: u8) -> bool {
        let Some((&k, rest)) = order.split_first() else {
            return true;
        };
        let kind = &TABLE[k];
        kind.starts.iter().any(|&start| {
            let end = start + kind.memory;
            if end > 8 {
                return false;
            }
            let mask = (((1u16 << kind.memory) - 1) << start) as u8;
            used & mask == 0 && place(rest, used | mask)
        })
    }
    if place(&order, 0) {
        Ok(())
    } else {
        Err(MigError::Overlap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(names: &[&str]) -> Vec<usize> {
        names
            .iter()
            .map(|n| kind("A100 40GB", n).expect("valid name"))
            .collect()
    }

    #[test]
    fn valid_and_invalid_partitions() {
        // "all-balanced": 2 × 1g + 2g + 3g.
        assert!(validate_partition(&kinds(&["1g.5gb", "1g.5gb", "2g.10gb", "3g.20gb"])).is_ok());
        assert!(validate_partition(&kinds(&["1g.5gb"; 7])).is_ok());
        assert!(validate_partition(&kinds(&["7g.40gb"])).is_ok());
        assert!(validate_partition(&kinds(&["3g.20gb", "3g.20gb"])).is_ok());
        // Too much compute.
        assert!(validate_partition(&kinds(&["4g.20gb", "4g.20gb"])).is_err());
        // 4g (memory 0-3) + 3g must start at 4: ok; 4g + 2 × 2g: 2g starts {0,2,4} → only 4 → err.
        assert!(validate_partition(&kinds(&["4g.20gb", "3g.20gb"])).is_ok());
        assert!(validate_partition(&kinds(&["4g.20gb", "2g.10gb", "2g.10gb"])).is_err());
        // Eight 1g.5gb: only seven fit.
        assert!(validate_partition(&kinds(&["1g.5gb"; 8])).is_err());
    }

    #[test]
    fn names_depend_on_the_gpu() {
        assert_eq!(kind("H100 80GB", "3g.40gb"), Ok(4));
        assert!(kind("A100 40GB", "3g.40gb")
            .unwrap_err()
            .to_string()
            .contains("expected one of"));
        assert!(kind("T4 16GB", "1g.5gb")
            .unwrap_err()
            .to_string()
            .contains("does not support MIG"));
        assert!((compute_fraction(4) - 3.0 / 7.0).abs() < 1e-12);
    }
}
