//! Typed JSON values in a JetStream key-value bucket, with compare-and-set.
//!
//! Every key goes through [`crate::safe::kv_key`] first: keys are built from outside data
//! (org ids, project ids, event ARNs), and a key is part of a subject (`$KV.<bucket>.<key>`),
//! so an unbounded one would push the protocol line past the server's limit and drop the
//! connection. A short, valid key is used as it is.

use async_nats::jetstream::kv;
use serde::{Serialize, de::DeserializeOwned};

use crate::BusError;

/// A value and the revision it was read at.
#[derive(Debug, Clone, PartialEq)]
pub struct Versioned<T> {
    pub value: T,
    pub revision: u64,
}

/// Why a compare-and-set did not write.
#[derive(Debug, thiserror::Error)]
pub enum CasError {
    /// Someone else wrote first: read again and decide again.
    #[error("the key changed since it was read")]
    Conflict,
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// A key-value bucket holding JSON documents of one type.
#[derive(Clone)]
pub struct JsonKv<T> {
    store: kv::Store,
    bucket: String,
    _type: std::marker::PhantomData<fn() -> T>,
}

impl<T: Serialize + DeserializeOwned> JsonKv<T> {
    pub fn new(store: kv::Store, bucket: impl Into<String>) -> Self {
        JsonKv { store, bucket: bucket.into(), _type: std::marker::PhantomData }
    }

    /// Opens an existing bucket (made by [`crate::ensure_topology`]).
    pub async fn open(js: &async_nats::jetstream::Context, bucket: &str) -> Result<Self, BusError> {
        let store = js.get_key_value(bucket).await.map_err(|source| BusError::Kv {
            bucket: bucket.to_owned(),
            key: String::new(),
            source: Box::new(source),
        })?;
        Ok(Self::new(store, bucket))
    }

    pub fn store(&self) -> &kv::Store {
        &self.store
    }

    fn error(&self, key: &str, source: impl std::error::Error + Send + Sync + 'static) -> BusError {
        BusError::Kv { bucket: self.bucket.clone(), key: key.to_owned(), source: Box::new(source) }
    }

    /// The current value and its revision; `None` when absent or deleted.
    pub async fn get(&self, key: &str) -> Result<Option<Versioned<T>>, BusError> {
        let key = &crate::safe::kv_key(key);
        let entry = self.store.entry(key).await.map_err(|e| self.error(key, e))?;
        let Some(entry) = entry else { return Ok(None) };
        if entry.operation != kv::Operation::Put {
            return Ok(None);
        }
        let value = serde_json::from_slice(&entry.value).map_err(|source| BusError::KvDecode {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            source,
        })?;
        Ok(Some(Versioned { value, revision: entry.revision }))
    }

    /// Writes only if the key is absent (or deleted); returns the new revision.
    pub async fn create(&self, key: &str, value: &T) -> Result<u64, CasError> {
        let key = &crate::safe::kv_key(key);
        let bytes = serde_json::to_vec(value).expect("a KV value always serialises");
        match self.store.create(key, bytes.into()).await {
            Ok(revision) => Ok(revision),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Err(CasError::Conflict),
            Err(e) => Err(CasError::Bus(self.error(key, e))),
        }
    }

    /// Writes only if the key is still at `revision`; returns the new revision.
    pub async fn update(&self, key: &str, value: &T, revision: u64) -> Result<u64, CasError> {
        let key = &crate::safe::kv_key(key);
        let bytes = serde_json::to_vec(value).expect("a KV value always serialises");
        match self.store.update(key, bytes.into(), revision).await {
            Ok(revision) => Ok(revision),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Err(CasError::Conflict),
            Err(e) => Err(CasError::Bus(self.error(key, e))),
        }
    }

    /// Writes `value` after the revision it was read at, or creates it when it was absent.
    pub async fn write(&self, key: &str, value: &T, read_at: Option<u64>) -> Result<u64, CasError> {
        match read_at {
            Some(revision) => self.update(key, value, revision).await,
            None => self.create(key, value).await,
        }
    }

    /// Writes unconditionally.
    pub async fn put(&self, key: &str, value: &T) -> Result<u64, BusError> {
        let key = &crate::safe::kv_key(key);
        let bytes = serde_json::to_vec(value).expect("a KV value always serialises");
        self.store.put(key, bytes.into()).await.map_err(|e| self.error(key, e))
    }

    /// Every key currently in the bucket.
    pub async fn keys(&self) -> Result<Vec<String>, BusError> {
        use futures_util::TryStreamExt;
        let keys = self.store.keys().await.map_err(|e| self.error("*", e))?;
        keys.try_collect().await.map_err(|e| self.error("*", e))
    }
}
