//! Timeline downsampling: a 24-hour run has thousands of samples per series, more than a chart
//! can show and enough to bloat a report. Buckets keep their minimum and maximum (in time
//! order), so spikes and dips survive.

/// Most points a chart series keeps.
pub const MAX_POINTS: usize = 600;

/// Reduce `points` to at most `max_points` by keeping, from each of `max_points / 2` equal
/// buckets, the lowest and the highest point in their original order. Short inputs are
/// returned unchanged. NaN values should be removed beforehand (gaps are handled by the caller).
pub fn downsample_min_max(points: &[(f64, f64)], max_points: usize) -> Vec<(f64, f64)> {
    let max_points = max_points.max(2);
    if points.len() <= max_points {
        return points.to_vec();
    }
    let buckets = max_points / 2;
    let size = points.len().div_ceil(buckets);
    let mut out = Vec::with_capacity(max_points);
    for chunk in points.chunks(size) {
        let mut lo = 0;
        let mut hi = 0;
        for (i, p) in chunk.iter().enumerate() {
            if p.1 < chunk[lo].1 {
                lo = i;
            }
            if p.1 > chunk[hi].1 {
                hi = i;
            }
        }
        let (first, second) = if lo <= hi { (lo, hi) } else { (hi, lo) };
        out.push(chunk[first]);
        if second != first {
            out.push(chunk[second]);
        }
    }
    out
}

/// Split a series with undefined values into runs of defined points (a line is not drawn
/// across a gap), downsampling each run in proportion to its length.
pub(crate) fn segments(
    t: &[f64],
    values: &[Option<f64>],
    max_points: usize,
) -> Vec<Vec<(f64, f64)>> {
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (&t, v) in t.iter().zip(values) {
        match v {
            Some(v) if v.is_finite() => current.push((t, *v)),
            _ => {
                if !current.is_empty() {
                    runs.push(std::mem::take(&mut current));
                }
            }
        }
    }
    if !current.is_empty() {
        runs.push(current);
    }
    let total: usize = runs.iter().map(Vec::len).sum();
    if total <= max_points {
        return runs;
    }
    runs.iter()
        .map(|r| {
            let share = (max_points * r.len()).div_ceil(total).max(2);
            downsample_min_max(r, share)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_extremes_and_bounds_the_size() {
        let points: Vec<(f64, f64)> = (0..10_000)
            .map(|i| {
                (
                    f64::from(i),
                    if i == 4321 { 99.0 } else { f64::from(i % 7) },
                )
            })
            .collect();
        let out = downsample_min_max(&points, 600);
        assert!(out.len() <= 600, "{}", out.len());
        assert!(out.contains(&(4321.0, 99.0)));
        assert!(out.iter().any(|p| p.1 == 0.0));
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0), "time order kept");
    }

    #[test]
    fn short_series_unchanged() {
        let points = vec![(0.0, 1.0), (1.0, 2.0)];
        assert_eq!(downsample_min_max(&points, 600), points);
    }

    #[test]
    fn gaps_split_segments() {
        let t = [1.0, 2.0, 3.0, 4.0, 5.0];
        let v = [Some(1.0), None, Some(3.0), Some(f64::NAN), Some(5.0)];
        assert_eq!(
            segments(&t, &v, 600),
            vec![vec![(1.0, 1.0)], vec![(3.0, 3.0)], vec![(5.0, 5.0)]]
        );
        let t: Vec<f64> = (0..5000).map(f64::from).collect();
        let v: Vec<Option<f64>> = (0..5000).map(|i| (i != 2500).then_some(1.0)).collect();
        let total: usize = segments(&t, &v, 600).iter().map(Vec::len).sum();
        assert!(total <= 604, "{total}");
    }
}
