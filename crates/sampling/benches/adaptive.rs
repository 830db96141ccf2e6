//! Adaptive sampling on a synthetic load: how many intervals until every
//! operation yields the target, how close it stays afterwards, and what one
//! calculation costs for many operations.
//!
//!     cargo bench -p waymark-sampling --bench adaptive

use std::collections::HashMap;
use std::time::Instant;

use waymark_sampling::adaptive::{AdaptiveConfig, calculate, simulate};
use waymark_storage::sampling::{OperationThroughput, ThroughputBucket};

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let cfg = AdaptiveConfig::default();
    let target = cfg.target_samples_per_second;
    // 40 operations, real rates spread evenly on a log scale from 0.5 to
    // 20,000 traces per second.
    let rates: Vec<f64> = (0..40)
        .map(|i| 0.5 * (40_000f64).powf(i as f64 / 39.0))
        .collect();
    let intervals = 120;
    let runs = 10;
    let mut converged_at = Vec::new();
    let mut errors = Vec::new();
    let mut in_band_after = Vec::new();
    for seed in 0..runs {
        let run = simulate(&cfg, &rates, intervals, seed);
        let reachable: Vec<usize> = (0..rates.len())
            .filter(|&i| rates[i] >= target * (1.0 + cfg.delta_tolerance))
            .collect();
        // Converged: the five-interval moving average of every reachable
        // operation is within the tolerance band.
        let window = 5;
        let in_band = |k: usize, i: usize| {
            let avg = run[k + 1 - window..=k].iter().map(|r| r[i]).sum::<f64>() / window as f64;
            (avg - target).abs() <= cfg.delta_tolerance * target
        };
        let first = (window - 1..intervals)
            .find(|&k| reachable.iter().all(|&i| in_band(k, i)))
            .map(|k| k + 1)
            .unwrap_or(usize::MAX);
        if first < intervals {
            for k in first..intervals {
                for &i in &reachable {
                    in_band_after.push(in_band(k, i));
                }
            }
        }
        converged_at.push(first);
        for r in &run[intervals - 30..] {
            for &i in &reachable {
                errors.push((r[i] - target).abs() / target);
            }
        }
    }
    converged_at.sort();
    errors.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "synthetic load: {} operations from 0.5 to 20,000 traces/s, target {target} sampled/s, {} intervals of {:?}, {runs} seeds",
        rates.len(),
        intervals,
        cfg.calculation_interval
    );
    println!(
        "intervals until every operation's 5-interval average is within ±{:.0}% of the target: median {}, worst {}",
        cfg.delta_tolerance * 100.0,
        converged_at[converged_at.len() / 2],
        converged_at[converged_at.len() - 1]
    );
    println!(
        "afterwards, share of (interval, operation) 5-interval averages within the band: {:.1}%",
        100.0 * in_band_after.iter().filter(|&&b| b).count() as f64 / in_band_after.len() as f64
    );
    println!(
        "per-interval sampled rate vs target over the last 30 intervals (relative error): p50 {:.2}, p90 {:.2}, p99 {:.2}",
        percentile(&errors, 0.5),
        percentile(&errors, 0.9),
        percentile(&errors, 0.99)
    );

    // Cost of one calculation: 10,000 operations, three intervals, two
    // collectors.
    let ops = 10_000;
    let buckets: Vec<ThroughputBucket> = (0..6)
        .map(|b| ThroughputBucket {
            collector: format!("c{}", b % 2),
            start_ns: (b / 2) as u64 * 60_000_000_000,
            interval_ns: 60_000_000_000,
            operations: (0..ops)
                .map(|i| OperationThroughput {
                    service: format!("svc-{}", i % 50),
                    operation: format!("op-{i}"),
                    count: (i % 997) as u64 + 1,
                    probabilities: vec![0.01],
                })
                .collect(),
        })
        .collect();
    let mut current = HashMap::new();
    let rounds = 20;
    let t = Instant::now();
    for _ in 0..rounds {
        current = calculate(&cfg, &current, &buckets)
            .into_iter()
            .map(|(k, (p, _))| (k, p))
            .collect();
    }
    let per = t.elapsed() / rounds;
    println!(
        "one calculation over {ops} operations × 6 buckets: {:.2} ms ({} probabilities)",
        per.as_secs_f64() * 1e3,
        current.len()
    );
}
