//! The VPA recommender's histograms, as kubernetes/autoscaler's
//! `vertical-pod-autoscaler/pkg/recommender/util/{histogram,decaying_histogram,
//! histogram_options}.go` define them: fixed buckets (linear or exponentially growing), a
//! percentile that answers the *end* of the bucket where the cumulative weight reaches it (no
//! interpolation), buckets lighter than epsilon counted as empty, and a decaying variant whose
//! samples weigh `2^((t − reference) / half_life)`, the reference moved forward (all weights
//! rescaled by a power of two) before the exponent passes 100.

use std::time::Duration;

/// Bucket boundaries and the weight below which a bucket counts as empty.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BucketScheme {
    /// `num_buckets` buckets of `size`, the first starting at 0.
    Linear {
        /// Buckets.
        num_buckets: usize,
        /// Width of each.
        size: f64,
        /// Lightest non-empty bucket.
        epsilon: f64,
    },
    /// Bucket `n ≥ 1` starts at `first · (ratioⁿ − 1) / (ratio − 1)`.
    Exponential {
        /// Buckets.
        num_buckets: usize,
        /// Width of the first bucket.
        first: f64,
        /// Growth of each next bucket's width.
        ratio: f64,
        /// Lightest non-empty bucket.
        epsilon: f64,
    },
}

/// Options that upstream refuses.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("histogram options: {0}")]
pub struct BadOptions(&'static str);

impl BucketScheme {
    /// `NewLinearHistogramOptions`: buckets of `size` from 0, the last starting at or above
    /// `max_value`.
    pub fn linear(max_value: f64, size: f64, epsilon: f64) -> Result<Self, BadOptions> {
        if !(max_value > 0.0 && size > 0.0 && epsilon > 0.0) {
            return Err(BadOptions("maxValue and bucketSize must both be positive"));
        }
        Ok(Self::Linear {
            num_buckets: (max_value / size).ceil() as usize + 1,
            size,
            epsilon,
        })
    }

    /// `NewExponentialHistogramOptions`: the first bucket `[0, first)`, each next one `ratio`
    /// times wider, the last starting at or above `max_value`.
    pub fn exponential(
        max_value: f64,
        first: f64,
        ratio: f64,
        epsilon: f64,
    ) -> Result<Self, BadOptions> {
        if !(max_value > 0.0 && first > 0.0 && ratio > 1.0 && epsilon > 0.0) {
            return Err(BadOptions(
                "maxValue, firstBucketSize and epsilon must be > 0.0, ratio must be > 1.0",
            ));
        }
        let n = (max_value * (ratio - 1.0) / first + 1.0).ln() / ratio.ln();
        Ok(Self::Exponential {
            num_buckets: n.ceil() as usize + 1,
            first,
            ratio,
            epsilon,
        })
    }

    /// Number of buckets.
    pub fn num_buckets(&self) -> usize {
        match *self {
            Self::Linear { num_buckets, .. } | Self::Exponential { num_buckets, .. } => num_buckets,
        }
    }

    /// Lightest weight of a non-empty bucket.
    pub fn epsilon(&self) -> f64 {
        match *self {
            Self::Linear { epsilon, .. } | Self::Exponential { epsilon, .. } => epsilon,
        }
    }

    /// The bucket `value` falls in (the first or last one outside the range).
    pub fn find_bucket(&self, value: f64) -> usize {
        let last = self.num_buckets() - 1;
        let bucket = match *self {
            Self::Linear { size, .. } => {
                if value < size {
                    return 0;
                }
                (value / size) as usize
            }
            Self::Exponential { first, ratio, .. } => {
                if value < first {
                    return 0;
                }
                ((value * (ratio - 1.0) / first + 1.0).ln() / ratio.ln()) as usize
            }
        };
        bucket.min(last)
    }

    /// Where bucket `bucket` starts.
    pub fn bucket_start(&self, bucket: usize) -> f64 {
        match *self {
            Self::Linear { size, .. } => bucket as f64 * size,
            Self::Exponential { first, ratio, .. } => {
                if bucket == 0 {
                    0.0
                } else {
                    first * (ratio.powi(bucket as i32) - 1.0) / (ratio - 1.0)
                }
            }
        }
    }
}

/// A bucketed distribution of weighted samples (`histogram.go`).
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    scheme: BucketScheme,
    weights: Vec<f64>,
    total: f64,
    /// First non-empty bucket, or the last bucket when empty.
    min_bucket: usize,
    /// Last non-empty bucket, or 0 when empty.
    max_bucket: usize,
}

impl Histogram {
    /// An empty histogram.
    pub fn new(scheme: BucketScheme) -> Self {
        let n = scheme.num_buckets();
        Self {
            scheme,
            weights: vec![0.0; n],
            total: 0.0,
            min_bucket: n - 1,
            max_bucket: 0,
        }
    }

    /// Add `weight` (≥ 0; a negative weight counts as 0) at `value`.
    pub fn add(&mut self, value: f64, weight: f64) {
        let weight = weight.max(0.0);
        let bucket = self.scheme.find_bucket(value);
        self.weights[bucket] += weight;
        self.total += weight;
        let eps = self.scheme.epsilon();
        if bucket < self.min_bucket && self.weights[bucket] >= eps {
            self.min_bucket = bucket;
        }
        if bucket > self.max_bucket && self.weights[bucket] >= eps {
            self.max_bucket = bucket;
        }
    }

    /// Remove `weight` at `value`; a bucket or total below epsilon becomes 0.
    pub fn subtract(&mut self, value: f64, weight: f64) {
        let weight = weight.max(0.0);
        let bucket = self.scheme.find_bucket(value);
        let eps = self.scheme.epsilon();
        let safe = |v: f64| if v - weight < eps { 0.0 } else { v - weight };
        self.total = safe(self.total);
        self.weights[bucket] = safe(self.weights[bucket]);
        self.update_min_max();
    }

    /// Add every sample of `other` (same scheme).
    pub fn merge(&mut self, other: &Histogram) {
        debug_assert_eq!(self.scheme, other.scheme, "merging different schemes");
        for b in other.min_bucket..=other.max_bucket {
            self.weights[b] += other.weights[b];
        }
        self.total += other.total;
        self.min_bucket = self.min_bucket.min(other.min_bucket);
        self.max_bucket = self.max_bucket.max(other.max_bucket);
    }

    /// The end of the bucket where the cumulative weight first reaches `p` of the total
    /// (the start of the last bucket, which has no end); 0 when empty.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.is_empty() {
            return 0.0;
        }
        let threshold = p * self.total;
        let mut sum = 0.0;
        let mut bucket = self.min_bucket;
        while bucket < self.max_bucket {
            sum += self.weights[bucket];
            if sum >= threshold {
                break;
            }
            bucket += 1;
        }
        if bucket < self.scheme.num_buckets() - 1 {
            self.scheme.bucket_start(bucket + 1)
        } else {
            self.scheme.bucket_start(bucket)
        }
    }

    /// Whether no bucket holds epsilon.
    pub fn is_empty(&self) -> bool {
        self.weights[self.min_bucket] < self.scheme.epsilon()
    }

    /// Total weight.
    pub fn total_weight(&self) -> f64 {
        self.total
    }

    /// Multiply every weight by `factor` (≥ 0): percentiles stay.
    fn scale(&mut self, factor: f64) {
        for b in self.min_bucket..=self.max_bucket {
            self.weights[b] *= factor;
        }
        self.total *= factor;
        self.update_min_max();
    }

    fn update_min_max(&mut self) {
        let eps = self.scheme.epsilon();
        let last = self.scheme.num_buckets() - 1;
        while self.weights[self.min_bucket] < eps && self.min_bucket < last {
            self.min_bucket += 1;
        }
        while self.weights[self.max_bucket] < eps && self.max_bucket > 0 {
            self.max_bucket -= 1;
        }
    }

    /// Equal buckets within 1e-15 (upstream's `Equals`).
    pub fn equals(&self, other: &Histogram) -> bool {
        self.scheme == other.scheme
            && self.min_bucket == other.min_bucket
            && self.max_bucket == other.max_bucket
            && (self.min_bucket..=self.max_bucket)
                .all(|b| (self.weights[b] - other.weights[b]).abs() <= 1e-15)
    }
}

/// When the decay factor would pass `2^MAX_DECAY_EXPONENT`, the reference moves forward.
const MAX_DECAY_EXPONENT: u32 = 100;

/// A histogram that forgets: each sample's weight doubles every `half_life` after the
/// reference, so a sample `half_life` older weighs half as much (`decaying_histogram.go`).
#[derive(Debug, Clone, PartialEq)]
pub struct DecayingHistogram {
    histogram: Histogram,
    half_life: Duration,
    /// A whole multiple of `half_life`.
    reference: Duration,
}

impl DecayingHistogram {
    /// An empty histogram whose samples lose half their weight every `half_life` (> 0).
    pub fn new(scheme: BucketScheme, half_life: Duration) -> Self {
        Self {
            histogram: Histogram::new(scheme),
            half_life: half_life.max(Duration::from_nanos(1)),
            reference: Duration::ZERO,
        }
    }

    /// Add `weight` at `value`, as of time `at`.
    pub fn add(&mut self, value: f64, weight: f64, at: Duration) {
        let factor = self.decay_factor(at);
        self.histogram.add(value, weight * factor);
    }

    /// Remove `weight` at `value`, as of time `at`.
    pub fn subtract(&mut self, value: f64, weight: f64, at: Duration) {
        let factor = self.decay_factor(at);
        self.histogram.subtract(value, weight * factor);
    }

    /// Add every sample of `other` (same scheme and half-life), aligning the older reference
    /// with the younger one.
    pub fn merge(&mut self, other: &DecayingHistogram) {
        let mut other = other.clone();
        if self.reference < other.reference {
            self.shift_reference(other.reference);
        } else if other.reference < self.reference {
            other.shift_reference(self.reference);
        }
        self.histogram.merge(&other.histogram);
    }

    /// See [`Histogram::percentile`].
    pub fn percentile(&self, p: f64) -> f64 {
        self.histogram.percentile(p)
    }

    /// See [`Histogram::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.histogram.is_empty()
    }

    /// Same half-life, reference and buckets.
    pub fn equals(&self, other: &DecayingHistogram) -> bool {
        self.half_life == other.half_life
            && self.reference == other.reference
            && self.histogram.equals(&other.histogram)
    }

    fn shift_reference(&mut self, to: Duration) {
        let h = self.half_life.as_nanos();
        // Round to a whole multiple of the half-life, halves up (Go's `Time.Round`).
        let to = (to.as_nanos() + h / 2) / h * h;
        let exponent =
            ((self.reference.as_nanos() as f64 - to as f64) / h as f64 + 0.5).floor() as i32;
        self.histogram.scale(2f64.powi(exponent));
        self.reference = Duration::from_nanos(u64::try_from(to).unwrap_or(u64::MAX));
    }

    fn decay_factor(&mut self, at: Duration) -> f64 {
        let max_allowed = self.reference + self.half_life * MAX_DECAY_EXPONENT;
        if at > max_allowed {
            self.shift_reference(at);
        }
        let elapsed = at.as_nanos() as f64 - self.reference.as_nanos() as f64;
        (elapsed / self.half_life.as_nanos() as f64).exp2()
    }
}
