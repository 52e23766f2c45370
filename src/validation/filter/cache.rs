//! Compiled filters, by their text, for the whole process: a webhook's filter is compiled
//! once, the first time an event needs it, whatever its id or how often it is saved.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use super::{Compiled, FilterError, compile};

/// At most this many filters are kept (a tenant has at most 100 webhooks); when full,
/// the cache starts again empty.
const CAPACITY: usize = 4096;

type Entry = Result<Arc<Compiled>, FilterError>;

static CACHE: LazyLock<Mutex<HashMap<String, Entry>>> = LazyLock::new(Default::default);

/// The compiled filter of `text`, compiled now if it is not cached. A text that does not
/// compile is cached too, as its error.
pub fn cached(text: &str) -> Entry {
    if let Some(entry) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).get(text) {
        return entry.clone();
    }
    // Compiled outside the lock: two callers may compile the same text once each.
    let entry = compile(text).map(Arc::new);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if cache.len() >= CAPACITY {
        cache.clear();
    }
    cache.insert(text.to_owned(), entry.clone());
    entry
}
