//! Small statistics helpers: the median of a figure's rounds and percentiles of latency samples.

use std::time::Duration;

/// The median of `values` (the mean of the middle two for an even count); `NaN` when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 0 {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    } else {
        sorted[middle]
    }
}

/// The nearest-rank `p`-th percentile (0-100) of `samples`; zero when empty.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    // The tolerance keeps 99.9% of 1,000 at rank 999 despite floating-point rounding.
    let rank = ((p / 100.0) * sorted.len() as f64 - 1e-9).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds, as a float.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1_000.0
}

/// p50, p99, p99.9 and the maximum of one round's samples, in milliseconds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latencies {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub count: usize,
}

impl Latencies {
    pub fn of(samples: &[Duration]) -> Self {
        Latencies {
            p50: ms(percentile(samples, 50.0)),
            p99: ms(percentile(samples, 99.0)),
            p999: ms(percentile(samples, 99.9)),
            max: ms(samples.iter().copied().max().unwrap_or_default()),
            count: samples.len(),
        }
    }

    /// The median, field by field, of several rounds.
    pub fn median_of(rounds: &[Latencies]) -> Self {
        let field =
            |get: fn(&Latencies) -> f64| median(&rounds.iter().map(get).collect::<Vec<_>>());
        Latencies {
            p50: field(|l| l.p50),
            p99: field(|l| l.p99),
            p999: field(|l| l.p999),
            max: field(|l| l.max),
            count: rounds.iter().map(|l| l.count).sum(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_percentiles() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
        let samples: Vec<Duration> = (1..=1000).map(Duration::from_millis).collect();
        assert_eq!(percentile(&samples, 50.0), Duration::from_millis(500));
        assert_eq!(percentile(&samples, 99.0), Duration::from_millis(990));
        assert_eq!(percentile(&samples, 99.9), Duration::from_millis(999));
        assert_eq!(percentile(&samples, 100.0), Duration::from_millis(1000));
    }
}
