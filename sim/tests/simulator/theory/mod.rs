//! Closed forms and the comparison rule the theory checks share: the mean over independent
//! replications against the theory, within 4 standard errors of that mean plus a 1 % allowance
//! (the HDR histograms' 3-significant-digit resolution and the bias of starting empty).

/// Mean and standard error of the mean.
pub(crate) fn mean_se(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// Fail unless the mean of `values` is within 4 standard errors plus 1 % of `theory`.
pub(crate) fn assert_close(what: &str, values: &[f64], theory: f64) {
    let (mean, se) = mean_se(values);
    let tolerance = 4.0 * se + 0.01 * theory.abs();
    println!(
        "{what}: simulated {mean:.5} ± {se:.5} (SE), theory {theory:.5}, tolerance {tolerance:.5}"
    );
    assert!(
        (mean - theory).abs() <= tolerance,
        "{what}: simulated {mean} (SE {se}) vs theory {theory}"
    );
}

pub(crate) fn factorial(n: u32) -> f64 {
    (1..=n).map(f64::from).product()
}

/// Erlang C: probability an arrival waits in an M/M/c queue with offered load a = λ/μ.
pub(crate) fn erlang_c(c: u32, a: f64) -> f64 {
    let top = a.powi(c as i32) / factorial(c) * f64::from(c) / (f64::from(c) - a);
    let bottom: f64 = (0..c).map(|k| a.powi(k as i32) / factorial(k)).sum::<f64>() + top;
    top / bottom
}
