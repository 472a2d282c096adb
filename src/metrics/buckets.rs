//! The histogram buckets: long ones for drains and out-of-rotation times, fast ones for
//! reactions and runtime API commands.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

/// Buckets for drains and out-of-rotation times: sub-second idle drains up to long deadlines.
const LONG_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];

/// Buckets for reaction and command latency, from 0.5 ms.
const FAST_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

pub type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub fn long_histogram() -> Histogram {
    Histogram::new(LONG_BUCKETS.iter().copied())
}

pub fn fast_histogram() -> Histogram {
    Histogram::new(FAST_BUCKETS.iter().copied())
}

pub fn histogram_family<L: Clone + std::hash::Hash + Eq>(
    make: fn() -> Histogram,
) -> HistogramFamily<L> {
    Family::new_with_constructor(make)
}
