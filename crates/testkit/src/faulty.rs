//! A [`Storage`] that fails on demand: every call returns an error of the
//! chosen kind while a fault is set, and goes to the wrapped store
//! otherwise. Used to check that each storage error kind reaches every
//! receiver and query endpoint as the documented status.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use waymark_model::{SpanKind, Trace, TraceId};
use waymark_storage::{
    DependencyLink, Operation, Result, RetentionReport, Storage, StorageError, StorageErrorKind,
    StorageStats, TraceQuery,
};

pub struct FaultyStorage {
    inner: Arc<dyn Storage>,
    fault: Mutex<Option<StorageErrorKind>>,
}

impl FaultyStorage {
    pub fn new(inner: Arc<dyn Storage>) -> FaultyStorage {
        FaultyStorage {
            inner,
            fault: Mutex::new(None),
        }
    }

    /// From now on every call fails with `kind`; `None` heals the store.
    pub fn set_fault(&self, kind: Option<StorageErrorKind>) {
        *self.fault.lock().unwrap() = kind;
    }

    fn check(&self, what: &str) -> Result<()> {
        match *self.fault.lock().unwrap() {
            Some(kind) => Err(StorageError::new(kind, format!("injected fault in {what}"))),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Storage for FaultyStorage {
    async fn write(&self, spans: Vec<waymark_model::Span>) -> Result<()> {
        self.check("write")?;
        self.inner.write(spans).await
    }
    async fn get_trace(&self, trace_id: TraceId) -> Result<Option<Trace>> {
        self.check("get_trace")?;
        self.inner.get_trace(trace_id).await
    }
    async fn find_traces(&self, query: &TraceQuery) -> Result<Vec<Trace>> {
        self.check("find_traces")?;
        self.inner.find_traces(query).await
    }
    async fn services(&self) -> Result<Vec<String>> {
        self.check("services")?;
        self.inner.services().await
    }
    async fn operations(&self, service: &str, kind: Option<SpanKind>) -> Result<Vec<Operation>> {
        self.check("operations")?;
        self.inner.operations(service, kind).await
    }
    async fn dependencies(&self, end_ns: u64, lookback_ns: u64) -> Result<Vec<DependencyLink>> {
        self.check("dependencies")?;
        self.inner.dependencies(end_ns, lookback_ns).await
    }
    async fn purge_before(&self, cutoff_ns: u64) -> Result<RetentionReport> {
        self.check("purge_before")?;
        self.inner.purge_before(cutoff_ns).await
    }
    async fn flush(&self) -> Result<()> {
        self.check("flush")?;
        self.inner.flush().await
    }
    fn stats(&self) -> StorageStats {
        self.inner.stats()
    }
}
