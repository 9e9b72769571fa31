//! Embedded EC2 instance catalog (us-east-1, Linux), so pods fit and cost as on a real EKS node.
//!
//! Allocatable CPU and memory are EKS's (kube-reserved and the hard eviction threshold already
//! subtracted; amazon-eks-ami formulas); prices are on-demand USD/h from karpenter-provider-aws's
//! generated pricing (2026-07-20); spot discounts are the Spot Advisor's savings. Sources:
//! `shared/reference/cluster.md` §5. DaemonSet requests are subtracted separately (scenario
//! `cluster.daemonset_*`).

/// One instance type as the scheduler and the bill see it.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceType {
    /// EC2 name, e.g. `g4dn.xlarge`.
    pub name: String,
    /// vCPUs of the machine (informational).
    pub vcpu: u32,
    /// Allocatable CPU in millicores.
    pub alloc_cpu_m: u64,
    /// Allocatable memory in MiB.
    pub alloc_mem_mib: u64,
    /// GPUs (or accelerators) on the node.
    pub gpus: u32,
    /// Accelerator model, if any.
    pub accelerator: Option<&'static str>,
    /// On-demand price, USD per hour.
    pub on_demand_usd_per_hour: f64,
    /// Typical spot discount (0.64 = 64 % below on-demand).
    pub spot_discount: f64,
    /// Spot Advisor interruption-frequency bucket ("<5%" … ">20%").
    pub interruption_bucket: &'static str,
}

impl InstanceType {
    /// Memory of one GPU, MiB, read from the accelerator's name ("T4 16GB"); what shared GPUs'
    /// sharers must fit into together.
    pub fn gpu_memory_mib(&self) -> Option<u64> {
        let text = self.accelerator?;
        let gb = text.rsplit(' ').next()?.strip_suffix("GB")?;
        gb.parse::<u64>().ok().map(|gb| gb * 1024)
    }

    /// Spot interruptions per instance-hour for the Advisor bucket, reading the bucket as the
    /// monthly fraction interrupted: λ = −ln(1 − p) / 730 at the bucket's midpoint
    /// (reference/cluster.md §4; >20 % taken as 25 %).
    pub fn interruption_rate_per_hour(&self) -> f64 {
        match self.interruption_bucket {
            "<5%" => 3.5e-5,
            "5-10%" => 1.07e-4,
            "10-15%" => 1.83e-4,
            "15-20%" => 2.64e-4,
            ">20%" => 3.94e-4,
            _ => 1.07e-4,
        }
    }

    /// Price per hour for a spot or on-demand node of this type.
    pub fn price_usd_per_hour(&self, spot: bool) -> f64 {
        if spot {
            self.on_demand_usd_per_hour * (1.0 - self.spot_discount)
        } else {
            self.on_demand_usd_per_hour
        }
    }
}

#[allow(clippy::type_complexity)]
const TABLE: &[(&str, u32, u64, u64, u32, Option<&str>, f64, f64, &str)] = &[
    // name, vCPU, alloc CPU m, alloc MiB, GPUs, accelerator, $/h, spot saving, bucket
    (
        "g4dn.xlarge",
        4,
        3920,
        14481,
        1,
        Some("T4 16GB"),
        0.526,
        0.64,
        "15-20%",
    ),
    (
        "g4dn.2xlarge",
        8,
        7910,
        29636,
        1,
        Some("T4 16GB"),
        0.752,
        0.61,
        ">20%",
    ),
    (
        "g4dn.12xlarge",
        48,
        47810,
        178933,
        4,
        Some("T4 16GB"),
        3.912,
        0.64,
        "10-15%",
    ),
    (
        "g5.xlarge",
        4,
        3920,
        14162,
        1,
        Some("A10G 24GB"),
        1.006,
        0.59,
        ">20%",
    ),
    (
        "g5.2xlarge",
        8,
        7910,
        29317,
        1,
        Some("A10G 24GB"),
        1.212,
        0.58,
        "15-20%",
    ),
    (
        "g5.12xlarge",
        48,
        47810,
        173400,
        4,
        Some("A10G 24GB"),
        5.672,
        0.58,
        ">20%",
    ),
    (
        "g6.xlarge",
        4,
        3920,
        14162,
        1,
        Some("L4 24GB"),
        0.8048,
        0.49,
        ">20%",
    ),
    (
        "p3.2xlarge",
        8,
        7910,
        56786,
        1,
        Some("V100 16GB"),
        3.06,
        0.80,
        ">20%",
    ),
    (
        "p4d.24xlarge",
        96,
        95690,
        1082712,
        8,
        Some("A100 40GB"),
        21.957642,
        0.67,
        "10-15%",
    ),
    (
        "p5.48xlarge",
        192,
        191450,
        1938410,
        8,
        Some("H100 80GB"),
        55.04,
        0.52,
        ">20%",
    ),
    (
        "inf1.xlarge",
        4,
        3920,
        6804,
        1,
        Some("Inferentia"),
        0.228,
        0.72,
        ">20%",
    ),
    (
        "inf2.xlarge",
        4,
        3920,
        14162,
        1,
        Some("Inferentia2"),
        0.7582,
        0.78,
        "<5%",
    ),
    ("c5.xlarge", 4, 3920, 6584, 0, None, 0.17, 0.56, "<5%"),
    ("c5.4xlarge", 16, 15890, 27381, 0, None, 0.68, 0.66, ">20%"),
    ("m5.large", 2, 1930, 6903, 0, None, 0.096, 0.66, "15-20%"),
    ("m5.xlarge", 4, 3920, 14162, 0, None, 0.192, 0.66, ">20%"),
    ("t3.medium", 2, 1930, 3246, 0, None, 0.0416, 0.56, "<5%"),
];

/// The embedded catalog.
pub fn builtin() -> Vec<InstanceType> {
    TABLE
        .iter()
        .map(
            |&(name, vcpu, cpu, mem, gpus, accelerator, price, discount, bucket)| InstanceType {
                name: name.to_string(),
                vcpu,
                alloc_cpu_m: cpu,
                alloc_mem_mib: mem,
                gpus,
                accelerator,
                on_demand_usd_per_hour: price,
                spot_discount: discount,
                interruption_bucket: bucket,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_has_reference_types_and_spot_prices() {
        let catalog = builtin();
        let g4 = catalog
            .iter()
            .find(|t| t.name == "g4dn.xlarge")
            .expect("g4dn.xlarge in catalog");
        assert_eq!(g4.gpus, 1);
        assert!((g4.price_usd_per_hour(true) - 0.526 * 0.36).abs() < 1e-12);
        assert_eq!(catalog.len(), 17);
    }
}
