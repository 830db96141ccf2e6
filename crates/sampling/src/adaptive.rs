//! Adaptive sampling: per service and operation, a probability recomputed
//! every interval from the observed throughput, so that each operation
//! yields about `target_samples_per_second` sampled traces whatever its
//! traffic.
//!
//! Every collector counts the root spans it receives ([`Adaptive::observe`],
//! fed by [`ObservingSink`]) and at the end of each interval stores the
//! counts as a [`ThroughputBucket`]. The collector holding the
//! `adaptive-sampling-leader` lease then reads the buckets of all collectors
//! within the lookback window and computes the probabilities
//! ([`calculate`]); the others load what the leader stored. All the state is
//! in the [`SamplingStore`] of the span store, so collectors sharing a store
//! agree, and a restarted collector continues where it left off.
//!
//! The rule, for an operation whose sampled traces arrive at `r` per second
//! while clients sample with probability `p`: the operation's real rate is
//! `r / p`, so the probability that meets the target `t` is `p * t / r`.
//! Rates within `delta_tolerance` of the target keep their probability (no
//! churn); increases are limited to `max_increase` per interval (a sudden
//! burst after a quiet spell cannot flood the store); the result stays within
//! `[min_sampling_probability, 1]`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use serde_json::{Value, json};
use waymark_model::now_unix_nanos as now_ns;
use waymark_model::{AnyValue, Span};
use waymark_storage::StorageError;
use waymark_storage::sampling::{
    OperationProbability, OperationThroughput, SamplingProbabilities, SamplingStore,
    ThroughputBucket,
};

/// Settings of adaptive sampling (`sampling.adaptive` in the configuration).
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptiveConfig {
    /// Sampled traces per second wanted from each operation.
    pub target_samples_per_second: f64,
    /// Relative distance from the target within which a probability is left
    /// alone (0.3: 0.7 to 1.3 times the target).
    pub delta_tolerance: f64,
    /// How often throughput is stored and probabilities recomputed.
    pub calculation_interval: Duration,
    /// How far back the leader looks at stored throughput.
    pub lookback: Duration,
    /// Probability of an operation not seen yet.
    pub initial_sampling_probability: f64,
    /// Lowest probability ever handed out.
    pub min_sampling_probability: f64,
    /// Traces per second each operation is sampled at least (clients'
    /// lower-bound sampler), so rare operations are never invisible.
    pub min_samples_per_second: f64,
    /// Largest relative increase of a probability per interval (0.5: ×1.5).
    pub max_increase: f64,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        AdaptiveConfig {
            target_samples_per_second: 1.0,
            delta_tolerance: 0.3,
            calculation_interval: Duration::from_secs(60),
            lookback: Duration::from_secs(180),
            initial_sampling_probability: 0.001,
            min_sampling_probability: 1e-5,
            min_samples_per_second: 1.0 / 60.0,
            max_increase: 0.5,
        }
    }
}

impl AdaptiveConfig {
    /// Checks ranges; the message names the offending key.
    pub fn validate(&self) -> Result<(), String> {
        let prob = |name: &str, v: f64| {
            if v > 0.0 && v <= 1.0 {
                Ok(())
            } else {
                Err(format!(
                    "sampling.adaptive.{name} must be in (0, 1], got {v}"
                ))
            }
        };
        prob(
            "initial_sampling_probability",
            self.initial_sampling_probability,
        )?;
        prob("min_sampling_probability", self.min_sampling_probability)?;
        if !positive(self.target_samples_per_second) {
            return Err(format!(
                "sampling.adaptive.target_samples_per_second must be positive, got {}",
                self.target_samples_per_second
            ));
        }
        if !(0.0..1.0).contains(&self.delta_tolerance) {
            return Err(format!(
                "sampling.adaptive.delta_tolerance must be in [0, 1), got {}",
                self.delta_tolerance
            ));
        }
        if !positive(self.max_increase) {
            return Err(format!(
                "sampling.adaptive.max_increase must be positive, got {}",
                self.max_increase
            ));
        }
        if !(positive(self.min_samples_per_second) || self.min_samples_per_second == 0.0) {
            return Err(format!(
                "sampling.adaptive.min_samples_per_second must not be negative, got {}",
                self.min_samples_per_second
            ));
        }
        if self.calculation_interval < Duration::from_millis(100) {
            return Err("sampling.adaptive.calculation_interval must be at least 100ms".into());
        }
        if self.lookback < self.calculation_interval {
            return Err(
                "sampling.adaptive.lookback must be at least one calculation_interval".into(),
            );
        }
        Ok(())
    }
}

fn positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

/// (service, operation).
pub type OpKey = (String, String);

/// Most operations tracked per service; spans of further operations still
/// get the service's default probability. Guards against unbounded
/// cardinality (an operation name with an id in it).
pub const MAX_OPERATIONS_PER_SERVICE: usize = 2000;

/// Most distinct client probabilities remembered per operation and interval.
const MAX_REPORTED_PROBABILITIES: usize = 4;

/// New probabilities from the throughput in `buckets` (all collectors, the
/// lookback window) and the current probabilities. Operations absent from
/// the buckets keep their current probability.
pub fn calculate(
    cfg: &AdaptiveConfig,
    current: &HashMap<OpKey, f64>,
    buckets: &[ThroughputBucket],
) -> HashMap<OpKey, (f64, f64)> {
    let interval_ns = cfg.calculation_interval.as_nanos().max(1) as u64;
    // Collectors count the same intervals; the rate of an interval is the
    // sum over collectors, and the window is as long as the distinct
    // intervals it holds.
    let mut intervals: Vec<u64> = buckets.iter().map(|b| b.start_ns / interval_ns).collect();
    intervals.sort_unstable();
    intervals.dedup();
    let window_s = intervals.len() as f64 * cfg.calculation_interval.as_secs_f64();

    let mut seen: BTreeMap<OpKey, (u64, f64, u32)> = BTreeMap::new();
    for b in buckets {
        for o in &b.operations {
            let e = seen
                .entry((o.service.clone(), o.operation.clone()))
                .or_insert((0, 0.0, 0));
            e.0 += o.count;
            for p in &o.probabilities {
                if *p > 0.0 && *p <= 1.0 {
                    e.1 += p;
                    e.2 += 1;
                }
            }
        }
    }
    let mut out: HashMap<OpKey, (f64, f64)> = current
        .iter()
        .map(|(k, p)| (k.clone(), (*p, 0.0)))
        .collect();
    if window_s <= 0.0 {
        return out;
    }
    let target = cfg.target_samples_per_second;
    for (key, (count, p_sum, p_n)) in seen {
        let old = current
            .get(&key)
            .copied()
            .unwrap_or(cfg.initial_sampling_probability);
        // What the clients actually used, when they said so; else what we
        // last handed out.
        let used = if p_n > 0 { p_sum / p_n as f64 } else { old };
        let rate = count as f64 / window_s;
        let new = if (rate - target).abs() <= cfg.delta_tolerance * target {
            old
        } else {
            let wanted = if rate > 0.0 {
                used * target / rate
            } else {
                f64::INFINITY
            };
            if wanted > old {
                wanted.min(old * (1.0 + cfg.max_increase))
            } else {
                wanted
            }
        };
        let new = new.clamp(cfg.min_sampling_probability, 1.0);
        out.insert(key, (new, rate));
    }
    out
}

/// Adaptive sampling of one collector: counts, stores, computes or follows.
pub struct Adaptive {
    cfg: AdaptiveConfig,
    store: Arc<dyn SamplingStore>,
    id: String,
    counts: Mutex<HashMap<OpKey, (u64, Vec<f64>)>>,
    per_service: Mutex<HashMap<String, usize>>,
    probabilities: RwLock<HashMap<OpKey, f64>>,
    leader: AtomicBool,
}

const LEASE: &str = "adaptive-sampling-leader";

impl Adaptive {
    /// `id` names this collector in the store (unique per process).
    pub fn new(cfg: AdaptiveConfig, store: Arc<dyn SamplingStore>, id: String) -> Self {
        Adaptive {
            cfg,
            store,
            id,
            counts: Mutex::new(HashMap::new()),
            per_service: Mutex::new(HashMap::new()),
            probabilities: RwLock::new(HashMap::new()),
            leader: AtomicBool::new(false),
        }
    }

    pub fn config(&self) -> &AdaptiveConfig {
        &self.cfg
    }

    /// Whether this collector computed the probabilities last interval.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }

    /// Counts the root spans of a batch that reached the collector.
    pub fn observe(&self, spans: &[Span]) {
        let mut counts = self.counts.lock();
        for s in spans.iter().filter(|s| s.parent_span_id.is_none()) {
            let service = s.service_name();
            let key = (service.to_string(), s.name.clone());
            let entry = match counts.get_mut(&key) {
                Some(e) => e,
                None => {
                    let mut per = self.per_service.lock();
                    let n = per.entry(key.0.clone()).or_insert(0);
                    if *n >= MAX_OPERATIONS_PER_SERVICE {
                        continue;
                    }
                    *n += 1;
                    counts.entry(key).or_insert((0, Vec::new()))
                }
            };
            entry.0 += 1;
            if let Some(p) = client_probability(s)
                && entry.1.len() < MAX_REPORTED_PROBABILITIES
                && !entry.1.contains(&p)
            {
                entry.1.push(p);
            }
        }
    }

    /// Loads the latest stored probabilities (at start-up).
    pub async fn load(&self) -> Result<(), StorageError> {
        if let Some(p) = self.store.latest_probabilities().await? {
            self.set(&p);
        }
        Ok(())
    }

    fn set(&self, p: &SamplingProbabilities) {
        let map = p
            .operations
            .iter()
            .map(|o| ((o.service.clone(), o.operation.clone()), o.probability))
            .collect();
        *self.probabilities.write() = map;
    }

    /// Ends the interval that started at `start_ns`: stores this collector's
    /// counts, then computes (as leader) or loads the probabilities.
    pub async fn tick(&self, start_ns: u64) -> Result<(), StorageError> {
        let counts = std::mem::take(&mut *self.counts.lock());
        self.per_service.lock().clear();
        let mut operations: Vec<OperationThroughput> = counts
            .into_iter()
            .map(
                |((service, operation), (count, probabilities))| OperationThroughput {
                    service,
                    operation,
                    count,
                    probabilities,
                },
            )
            .collect();
        operations.sort_by(|a, b| (&a.service, &a.operation).cmp(&(&b.service, &b.operation)));
        let interval_ns = self.cfg.calculation_interval.as_nanos() as u64;
        self.store
            .put_throughput(ThroughputBucket {
                collector: self.id.clone(),
                start_ns,
                interval_ns,
                operations,
            })
            .await?;
        let now = now_ns();
        // A lease of three intervals: a crashed leader is replaced within
        // that; a live one renews it every interval.
        let leader = self
            .store
            .acquire_lease(LEASE, &self.id, now, 3 * self.cfg.calculation_interval)
            .await?;
        self.leader.store(leader, Ordering::Relaxed);
        if !leader {
            return self.load().await;
        }
        let lookback_ns = self.cfg.lookback.as_nanos() as u64;
        let since = (start_ns + interval_ns).saturating_sub(lookback_ns);
        let buckets = self.store.throughput_since(since).await?;
        let current = self.probabilities.read().clone();
        let computed = calculate(&self.cfg, &current, &buckets);
        let mut operations: Vec<OperationProbability> = computed
            .into_iter()
            .map(
                |((service, operation), (probability, rate))| OperationProbability {
                    service,
                    operation,
                    probability,
                    sampled_per_second: rate,
                },
            )
            .collect();
        operations.sort_by(|a, b| (&a.service, &a.operation).cmp(&(&b.service, &b.operation)));
        let p = SamplingProbabilities {
            computed_at_ns: now,
            collector: self.id.clone(),
            operations,
        };
        self.store.put_probabilities(p.clone()).await?;
        self.set(&p);
        tracing::debug!(
            operations = p.operations.len(),
            "computed adaptive sampling probabilities"
        );
        Ok(())
    }

    /// Runs [`Adaptive::tick`] at every interval boundary until `shutdown`
    /// (call [`Adaptive::load`] first).
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let interval_ns = self.cfg.calculation_interval.as_nanos() as u64;
        tokio::pin!(shutdown);
        loop {
            let now = now_ns();
            let next = (now / interval_ns + 1) * interval_ns;
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(Duration::from_nanos(next - now)) => {}
            }
            if let Err(e) = self.tick(next - interval_ns).await {
                tracing::warn!(error = %e, "adaptive sampling: interval not recorded");
            }
        }
    }

    /// The strategy for a service, as proto-JSON (enum names).
    pub fn response(&self, service: &str) -> Value {
        let probs = self.probabilities.read();
        let mut ops: Vec<(&str, f64)> = probs
            .iter()
            .filter(|((s, _), _)| s == service)
            .map(|((_, o), p)| (o.as_str(), *p))
            .collect();
        ops.sort_by(|a, b| a.0.cmp(b.0));
        let initial = self.cfg.initial_sampling_probability;
        json!({
            "strategyType": "PROBABILISTIC",
            "probabilisticSampling": {"samplingRate": initial},
            "operationSampling": {
                "defaultSamplingProbability": initial,
                "defaultLowerBoundTracesPerSecond": self.cfg.min_samples_per_second,
                "perOperationStrategies": ops.iter().map(|(o, p)| json!({
                    "operation": o,
                    "probabilisticSampling": {"samplingRate": p},
                })).collect::<Vec<_>>(),
            },
        })
    }
}

/// The probability a Jaeger client reports on a root span it sampled
/// probabilistically (`sampler.type` = `probabilistic`, `sampler.param`).
/// Spans sampled by the lower bound say `lowerbound` and are not counted
/// as representative of the probability.
fn client_probability(s: &Span) -> Option<f64> {
    let attr = |k: &str| {
        s.attributes
            .iter()
            .find(|kv| kv.key == k)
            .map(|kv| &kv.value)
    };
    match attr("sampler.type") {
        Some(AnyValue::String(t)) if t == "probabilistic" => {}
        _ => return None,
    }
    let p = match attr("sampler.param")? {
        AnyValue::Double(p) => *p,
        AnyValue::String(s) => s.parse().ok()?,
        _ => return None,
    };
    (p > 0.0 && p <= 1.0).then_some(p)
}

/// A span sink that counts root spans for adaptive sampling, then passes
/// the batch on.
pub struct ObservingSink {
    pub inner: Arc<dyn waymark_pipeline::SpanSink>,
    pub adaptive: Arc<Adaptive>,
}

#[async_trait::async_trait]
impl waymark_pipeline::SpanSink for ObservingSink {
    async fn write(&self, spans: Vec<Span>) -> Result<(), StorageError> {
        self.adaptive.observe(&spans);
        self.inner.write(spans).await
    }
}

/// A deterministic synthetic load for the algorithm: operations with fixed
/// real rates, clients sampling each trace with the current probability
/// (and at least `min_samples_per_second`, as Jaeger clients' lower-bound
/// sampler does), one collector computing every interval. Returns, per interval, each
/// operation's sampled rate. Used by the convergence test and the
/// `adaptive` benchmark.
pub fn simulate(cfg: &AdaptiveConfig, rates: &[f64], intervals: usize, seed: u64) -> Vec<Vec<f64>> {
    let mut rng = SplitMix(seed);
    let secs = cfg.calculation_interval.as_secs_f64();
    let interval_ns = cfg.calculation_interval.as_nanos() as u64;
    let keep = (cfg.lookback.as_nanos() as u64 / interval_ns).max(1) as usize;
    let key = |i: usize| ("svc".to_string(), format!("op-{i}"));
    let mut current: HashMap<OpKey, f64> = HashMap::new();
    let mut window: Vec<ThroughputBucket> = Vec::new();
    let mut out = Vec::with_capacity(intervals);
    for n in 0..intervals {
        let mut ops = Vec::new();
        let mut sampled_rates = Vec::new();
        for (i, rate) in rates.iter().enumerate() {
            let p = current
                .get(&key(i))
                .copied()
                .unwrap_or(cfg.initial_sampling_probability);
            let traces = rng.poisson(rate * secs);
            // The clients' lower-bound sampler takes a few traces of every
            // operation whatever the probability, so rare operations show up.
            let floor = (cfg.min_samples_per_second * secs).ceil() as u64;
            let sampled = rng.binomial(traces, p).max(floor.min(traces));
            sampled_rates.push(sampled as f64 / secs);
            if sampled > 0 {
                ops.push(OperationThroughput {
                    service: "svc".into(),
                    operation: format!("op-{i}"),
                    count: sampled,
                    probabilities: vec![p],
                });
            }
        }
        out.push(sampled_rates);
        window.push(ThroughputBucket {
            collector: "sim".into(),
            start_ns: n as u64 * interval_ns,
            interval_ns,
            operations: ops,
        });
        if window.len() > keep {
            window.remove(0);
        }
        current = calculate(cfg, &current, &window)
            .into_iter()
            .map(|(k, (p, _))| (k, p))
            .collect();
    }
    out
}

/// A small deterministic generator for [`simulate`].
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(f64::MIN_POSITIVE);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Poisson by counting for small means, normal approximation above.
    fn poisson(&mut self, mean: f64) -> u64 {
        if mean < 50.0 {
            let limit = (-mean).exp();
            let (mut k, mut prod) = (0u64, self.unit());
            while prod > limit {
                k += 1;
                prod *= self.unit();
            }
            k
        } else {
            (mean + mean.sqrt() * self.normal()).round().max(0.0) as u64
        }
    }

    fn binomial(&mut self, n: u64, p: f64) -> u64 {
        let mean = n as f64 * p;
        if n < 64 {
            (0..n).filter(|_| self.unit() < p).count() as u64
        } else if mean < 50.0 {
            self.poisson(mean).min(n)
        } else {
            let sd = (mean * (1.0 - p)).sqrt();
            (mean + sd * self.normal()).round().clamp(0.0, n as f64) as u64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> AdaptiveConfig {
        AdaptiveConfig {
            lookback: Duration::from_secs(60),
            ..AdaptiveConfig::default()
        }
    }

    fn bucket(ops: &[(&str, u64, f64)]) -> ThroughputBucket {
        ThroughputBucket {
            collector: "a".into(),
            start_ns: 0,
            interval_ns: 60_000_000_000,
            operations: ops
                .iter()
                .map(|(op, count, p)| OperationThroughput {
                    service: "svc".into(),
                    operation: op.to_string(),
                    count: *count,
                    probabilities: vec![*p],
                })
                .collect(),
        }
    }

    fn key(op: &str) -> OpKey {
        ("svc".into(), op.into())
    }

    #[test]
    fn one_step_of_the_rule() {
        let current: HashMap<OpKey, f64> = [
            (key("hot"), 0.1),
            (key("ok"), 0.1),
            (key("cold"), 0.1),
            (key("gone"), 0.2),
        ]
        .into();
        // hot: 600 sampled in 60 s = 10/s at p=0.1 → 0.01 meets 1/s.
        // ok: 66 = 1.1/s, within 30% of the target: unchanged.
        // cold: 6 = 0.1/s → wants 1.0, limited to 0.1 × 1.5.
        let got = calculate(
            &cfg(),
            &current,
            &[bucket(&[
                ("hot", 600, 0.1),
                ("ok", 66, 0.1),
                ("cold", 6, 0.1),
            ])],
        );
        assert!(
            (got[&key("hot")].0 - 0.01).abs() < 1e-12,
            "{:?}",
            got[&key("hot")]
        );
        assert_eq!(got[&key("hot")].1, 10.0);
        assert_eq!(got[&key("ok")].0, 0.1);
        assert!((got[&key("cold")].0 - 0.15).abs() < 1e-12);
        assert_eq!(got[&key("gone")].0, 0.2, "unseen operations keep theirs");
    }

    #[test]
    fn uses_what_clients_report_and_respects_bounds() {
        // We said 0.5, but the client still samples at 0.01 (its old
        // strategy): 60 000 sampled per minute is 1000/s at 0.01, so the
        // answer is 1e-5, not 5e-4; and never below the minimum.
        let current: HashMap<OpKey, f64> = [(key("x"), 0.5)].into();
        let got = calculate(&cfg(), &current, &[bucket(&[("x", 60_000, 0.01)])]);
        assert!(
            (got[&key("x")].0 - 1e-5).abs() < 1e-12,
            "{:?}",
            got[&key("x")]
        );
        let got = calculate(&cfg(), &current, &[bucket(&[("x", 6_000_000, 0.01)])]);
        assert_eq!(got[&key("x")].0, cfg().min_sampling_probability);
        // A new operation starts from the initial probability.
        let got = calculate(&cfg(), &HashMap::new(), &[bucket(&[("new", 6, 0.001)])]);
        assert!((got[&key("new")].0 - 0.0015).abs() < 1e-12);
    }

    #[test]
    fn several_collectors_add_up_per_interval() {
        let mut a = bucket(&[("x", 30, 0.1)]);
        let mut b = bucket(&[("x", 30, 0.1)]);
        b.collector = "b".into();
        a.start_ns = 60_000_000_000;
        b.start_ns = 60_000_000_000;
        let got = calculate(&cfg(), &HashMap::new(), &[a, b]);
        assert_eq!(got[&key("x")].1, 1.0, "60 spans over one 60 s interval");
    }

    #[test]
    fn converges_to_the_target_on_a_synthetic_load() {
        let cfg = AdaptiveConfig::default();
        // Real traces per second of five operations: from very busy to one
        // that can never reach the target.
        let rates = [5000.0, 300.0, 40.0, 3.0, 0.3];
        let run = simulate(&cfg, &rates, 60, 7);
        for (i, rate) in rates.iter().enumerate() {
            let tail: Vec<f64> = run[40..].iter().map(|r| r[i]).collect();
            let mean = tail.iter().sum::<f64>() / tail.len() as f64;
            if *rate >= cfg.target_samples_per_second * (1.0 + cfg.delta_tolerance) {
                assert!(
                    (mean - cfg.target_samples_per_second).abs() <= cfg.delta_tolerance,
                    "operation {i} ({rate}/s) settles at {mean:.2} sampled/s"
                );
            } else {
                // Cannot reach the target: everything is sampled.
                assert!(
                    (mean - rate).abs() < rate * 0.5 + 0.1,
                    "operation {i}: {mean:.2} vs {rate}"
                );
            }
        }
    }

    #[test]
    fn validation_names_the_key() {
        let bad = AdaptiveConfig {
            min_sampling_probability: 0.0,
            ..AdaptiveConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .contains("min_sampling_probability")
        );
        assert!(AdaptiveConfig::default().validate().is_ok());
    }
}
