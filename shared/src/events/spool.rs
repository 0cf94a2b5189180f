//! The on-disk spool: where batches wait while ClickHouse is unreachable or slow.
//!
//! One directory per writer, locked (`spool.lock`) so two processes never share it:
//! - `spool.log`, append-only records `[length u32 LE][checksum 8 bytes][payload]`, where the
//!   checksum is the first 8 bytes of SHA-256 over the payload and the payload is one batch as
//!   JSON. Each append is followed by `fsync` before the writer counts the batch as safe.
//! - `spool.offset`, the byte offset up to which records have been replayed into ClickHouse
//!   (8 bytes LE, written to a temporary file, fsync'd and renamed).
//!
//! Records are replayed in the order they were appended. When all are replayed, both files are
//! emptied. A record cut short by a crash during its append (or failing its checksum) ends the
//! log: it and anything after it are cut off, with an error in the log; nothing after a bad
//! record can be trusted to be whole.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use ring::digest::{digest, SHA256};

use super::rows::Batch;

const HEADER: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("spool {0} is in use by another process")]
    Locked(String),
    #[error("spool is full ({used} of {max} bytes)")]
    Full { used: u64, max: u64 },
    #[error("spool record: {0}")]
    Encoding(#[from] serde_json::Error),
}

pub struct Spool {
    dir: PathBuf,
    log: File,
    /// Held for the spool's lifetime: the directory's lock.
    _lock: File,
    /// Bytes in `spool.log`.
    len: u64,
    /// Bytes of `spool.log` already replayed.
    offset: u64,
    max_bytes: u64,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn checksum(payload: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest(&SHA256, payload).as_ref()[..8]);
    out
}

impl Spool {
    /// Opens (creating) the spool in `dir`, locks it and checks the records not yet replayed.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join("spool.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        if lock.try_lock().is_err() {
            return Err(SpoolError::Locked(dir.display().to_string()));
        }
        let log_path = dir.join("spool.log");
        let log = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let len = log.metadata().map_err(io(&log_path))?.len();
        let offset_path = dir.join("spool.offset");
        let offset = match std::fs::read(&offset_path) {
            Ok(bytes) if bytes.len() == 8 => {
                u64::from_le_bytes(bytes.try_into().unwrap_or([0; 8])).min(len)
            }
            _ => 0,
        };
        let mut spool = Self {
            dir: dir.to_owned(),
            log,
            _lock: lock,
            len,
            offset,
            max_bytes,
        };
        spool.check_tail()?;
        Ok(spool)
    }

    /// Walks the unreplayed records; cuts the log at the first incomplete or corrupt one.
    fn check_tail(&mut self) -> Result<(), SpoolError> {
        let mut position = self.offset;
        while position < self.len {
            match self.read_at(position)? {
                Some((_, next)) => position = next,
                None => {
                    tracing::error!(
                        spool = %self.dir.display(),
                        position,
                        lost_bytes = self.len - position,
                        "spool record incomplete or corrupt: cutting the spool there"
                    );
                    let path = self.dir.join("spool.log");
                    self.log.set_len(position).map_err(io(&path))?;
                    self.log.sync_all().map_err(io(&path))?;
                    self.len = position;
                }
            }
        }
        Ok(())
    }

    /// The record at `position` and where the next one starts; `None` if it is cut short or
    /// fails its checksum.
    fn read_at(&mut self, position: u64) -> Result<Option<(Vec<u8>, u64)>, SpoolError> {
        let path = self.dir.join("spool.log");
        if position + HEADER as u64 > self.len {
            return Ok(None);
        }
        let mut file = &self.log;
        file.seek(SeekFrom::Start(position)).map_err(io(&path))?;
        let mut header = [0u8; HEADER];
        file.read_exact(&mut header).map_err(io(&path))?;
        let mut length = [0u8; 4];
        length.copy_from_slice(&header[..4]);
        let length = u64::from(u32::from_le_bytes(length));
        if position + HEADER as u64 + length > self.len {
            return Ok(None);
        }
        let mut payload = vec![0u8; length as usize];
        file.read_exact(&mut payload).map_err(io(&path))?;
        if checksum(&payload) != header[4..] {
            return Ok(None);
        }
        Ok(Some((payload, position + HEADER as u64 + length)))
    }

    /// Appends one batch and fsyncs. Refused when the spool would grow past its limit.
    pub fn append(&mut self, batch: &Batch) -> Result<(), SpoolError> {
        let payload = serde_json::to_vec(batch)?;
        let size = (HEADER + payload.len()) as u64;
        if self.len + size > self.max_bytes && self.len > 0 {
            return Err(SpoolError::Full {
                used: self.len,
                max: self.max_bytes,
            });
        }
        let mut record = Vec::with_capacity(HEADER + payload.len());
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&checksum(&payload));
        record.extend_from_slice(&payload);
        let path = self.dir.join("spool.log");
        let outcome = self
            .log
            .write_all(&record)
            .and_then(|()| self.log.sync_data());
        if let Err(error) = outcome {
            // Leave no half record behind for the next append to follow.
            let _ = self.log.set_len(self.len);
            return Err(io(&path)(error));
        }
        self.len += size;
        Ok(())
    }

    /// The oldest batch not yet replayed, and the offset just after it.
    pub fn oldest(&mut self) -> Result<Option<(Batch, u64)>, SpoolError> {
        if self.offset >= self.len {
            return Ok(None);
        }
        match self.read_at(self.offset)? {
            Some((payload, next)) => Ok(Some((serde_json::from_slice(&payload)?, next))),
            None => {
                self.check_tail()?;
                Ok(None)
            }
        }
    }

    /// Marks everything before `offset` as replayed (durably); empties the spool when all is.
    pub fn mark_replayed(&mut self, offset: u64) -> Result<(), SpoolError> {
        self.offset = offset.min(self.len);
        if self.offset == self.len {
            let path = self.dir.join("spool.log");
            self.log.set_len(0).map_err(io(&path))?;
            self.log.sync_all().map_err(io(&path))?;
            self.len = 0;
            self.offset = 0;
        }
        let offset_path = self.dir.join("spool.offset");
        let temporary = self.dir.join("spool.offset.tmp");
        let mut file = File::create(&temporary).map_err(io(&temporary))?;
        file.write_all(&self.offset.to_le_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io(&temporary))?;
        std::fs::rename(&temporary, &offset_path).map_err(io(&offset_path))?;
        Ok(())
    }

    /// Whether batches are waiting.
    pub fn pending(&self) -> bool {
        self.offset < self.len
    }

    pub fn used_bytes(&self) -> u64 {
        self.len
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use crate::events::rows::{Event, LogRow};

    fn event(body: &str) -> Event {
        Event::Log(LogRow {
            tenant_id: "t".to_owned(),
            time: 1,
            time_unix_nano: 1,
            event_id: crate::events::rows::new_event_id(),
            service: "s".to_owned(),
            severity: "info".to_owned(),
            body: body.to_owned(),
            trace_id: String::new(),
            span_id: String::new(),
            attributes: "{}".to_owned(),
        })
    }

    fn temp_dir() -> PathBuf {
        std::env::temp_dir()
            .join("tenantry-tests")
            .join(format!("spool-unit-{}", uuid::Uuid::new_v4().simple()))
    }

    fn one(body: &str) -> Batch {
        Batch::from(vec![event(body)])
    }

    fn bodies(batch: &Batch) -> Vec<&str> {
        batch
            .iter()
            .map(|event| match event {
                Event::Log(row) => row.body.as_str(),
                _ => panic!("not a log"),
            })
            .collect()
    }

    fn body_of(batch: &Batch) -> &str {
        bodies(batch)[0]
    }

    #[test]
    fn batches_come_back_in_order_across_a_reopen_and_the_spool_empties_when_replayed() {
        let dir = temp_dir();
        {
            let mut spool = Spool::open(&dir, 1 << 20).unwrap();
            spool.append(&one("first")).unwrap();
            spool.append(&one("second")).unwrap();
            let (batch, end) = spool.oldest().unwrap().unwrap();
            assert_eq!(body_of(&batch), "first");
            spool.mark_replayed(end).unwrap();
        }
        // A new process finds only what was not replayed.
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        let (batch, end) = spool.oldest().unwrap().unwrap();
        assert_eq!(body_of(&batch), "second");
        spool.mark_replayed(end).unwrap();
        assert!(!spool.pending());
        assert_eq!(spool.used_bytes(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_batch_of_several_requests_chunks_comes_back_as_its_events_in_order() {
        let dir = temp_dir();
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        let mut batch = Batch::from(vec![event("a"), event("b")]);
        batch.push(Vec::new());
        let mut later = Batch::from(vec![event("c")]);
        later.push(vec![event("d"), event("e")]);
        batch.append(later);
        assert_eq!(batch.len(), 5);
        spool.append(&batch).unwrap();
        let (back, _) = spool.oldest().unwrap().unwrap();
        assert_eq!(bodies(&back), ["a", "b", "c", "d", "e"]);
        assert_eq!(back.len(), 5);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_or_corrupt_record_ends_the_log_and_what_precedes_it_survives() {
        let dir = temp_dir();
        {
            let mut spool = Spool::open(&dir, 1 << 20).unwrap();
            spool.append(&one("kept")).unwrap();
            spool.append(&one("torn")).unwrap();
        }
        // Cut the last record short, as a crash during its append would.
        let log = dir.join("spool.log");
        let length = std::fs::metadata(&log).unwrap().len();
        let file = OpenOptions::new().write(true).open(&log).unwrap();
        file.set_len(length - 5).unwrap();
        drop(file);
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        let (batch, end) = spool.oldest().unwrap().unwrap();
        assert_eq!(body_of(&batch), "kept");
        spool.mark_replayed(end).unwrap();
        assert!(spool.oldest().unwrap().is_none());
        drop(spool);

        // A flipped byte fails the checksum.
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        spool.append(&one("flipped")).unwrap();
        drop(spool);
        let mut bytes = std::fs::read(&log).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x55;
        std::fs::write(&log, &bytes).unwrap();
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        assert!(spool.oldest().unwrap().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_spool_is_held_by_one_process_and_refuses_growth_past_its_limit() {
        let dir = temp_dir();
        let mut spool = Spool::open(&dir, 10).unwrap();
        assert!(matches!(Spool::open(&dir, 10), Err(SpoolError::Locked(_))));
        // The first batch always fits (so a single large batch is never stuck), the next not.
        spool.append(&one("one")).unwrap();
        assert!(matches!(
            spool.append(&one("two")),
            Err(SpoolError::Full { .. })
        ));
        drop(spool);
        assert!(Spool::open(&dir, 10).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
