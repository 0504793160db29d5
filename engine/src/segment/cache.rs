//! A small LRU cache of decoded blocks, so the newest blocks that most queries read are
//! decompressed once rather than on every request.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::LogRecord;

type BlockKey = (u64, usize);

pub struct BlockCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

struct Inner {
    map: HashMap<BlockKey, (Arc<Vec<LogRecord>>, usize, u64)>,
    bytes: usize,
    tick: u64,
}

impl BlockCache {
    pub fn new(capacity_bytes: usize) -> Self {
        BlockCache {
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                bytes: 0,
                tick: 0,
            }),
            capacity: capacity_bytes,
        }
    }

    pub fn get(&self, segment: u64, block: usize) -> Option<Arc<Vec<LogRecord>>> {
        let mut g = self.inner.lock();
        g.tick += 1;
        let tick = g.tick;
        let e = g.map.get_mut(&(segment, block))?;
        e.2 = tick;
        Some(e.0.clone())
    }

    pub fn put(&self, segment: u64, block: usize, rows: Arc<Vec<LogRecord>>, bytes: usize) {
        if bytes > self.capacity / 4 {
            return;
        }
        let mut g = self.inner.lock();
        g.tick += 1;
        let tick = g.tick;
        if let Some(old) = g.map.insert((segment, block), (rows, bytes, tick)) {
            g.bytes -= old.1;
        }
        g.bytes += bytes;
        while g.bytes > self.capacity {
            let Some((&k, _)) = g.map.iter().min_by_key(|(_, v)| v.2) else {
                break;
            };
            if let Some(v) = g.map.remove(&k) {
                g.bytes -= v.1;
            }
        }
    }

    /// The bytes the cached blocks are counted at.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Forgets every block of a segment (after it is deleted).
    pub fn evict_segment(&self, segment: u64) {
        let mut g = self.inner.lock();
        let keys: Vec<_> = g.map.keys().filter(|k| k.0 == segment).copied().collect();
        for k in keys {
            if let Some(v) = g.map.remove(&k) {
                g.bytes -= v.1;
            }
        }
    }
}
