//! Tamper evidence for the audit log: each tenant's events form MAC chains, one chain per
//! (tenant, writer stream).
//!
//! - A **stream** is one writer process (a data-plane node or a control-plane run). Many
//!   stateless nodes write at once; one chain per tenant would need a lock across nodes, so
//!   each node keeps its own chain per tenant, in memory, and numbers its events 1, 2, 3, …
//! - Each event's `mac` is HMAC-SHA256 over the row (every field but `mac`, `prev_mac`
//!   included), keyed with a **chain key derived from the tenant's data key**. Someone who can
//!   write to ClickHouse but has neither the KEK nor the data key cannot make a row that
//!   verifies, nor recompute a chain after changing one.
//! - Heads (the last sequence number and MAC of each stream known to be in ClickHouse) are
//!   **anchored in Postgres** (`control.audit_chain_heads`) after each successful insert, so
//!   cutting the tail of a stream is noticed too.
//!
//! [`verify`] checks one tenant: every stream starts at 1 with no gap, links to its previous
//! MAC, every MAC verifies, and every anchored head is present with its MAC.

use std::collections::BTreeMap;

use ring::hmac;

use super::rows::AuditRow;
use crate::envelope::DataKey;

const CHAIN_KEY_PURPOSE: &[u8] = b"tenantry audit chain v1";

/// The key a tenant's audit chains are MAC'd with: HMAC(data key, purpose).
pub struct ChainKey {
    key: hmac::Key,
    /// The data key version it derives from (stored in each row).
    pub version: i32,
}

impl ChainKey {
    pub fn derive(data_key: &DataKey, version: i32) -> Self {
        let parent = hmac::Key::new(hmac::HMAC_SHA256, data_key.expose());
        let derived = hmac::sign(&parent, CHAIN_KEY_PURPOSE);
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()),
            version,
        }
    }

    /// The MAC of `row` (its `mac` field ignored), hex.
    pub fn mac(&self, row: &AuditRow) -> String {
        hex::encode(hmac::sign(&self.key, &canonical(row)).as_ref())
    }

    /// Whether `row.mac` is right, in constant time.
    pub fn verifies(&self, row: &AuditRow) -> bool {
        match hex::decode(&row.mac) {
            Ok(tag) => hmac::verify(&self.key, &canonical(row), &tag).is_ok(),
            Err(_) => false,
        }
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChainKey(version {})", self.version)
    }
}

/// The bytes MAC'd for `row`: its JSON with `mac` emptied. Field order is the struct's, and
/// every field is an integer or a string, so a row read back serialises the same.
fn canonical(row: &AuditRow) -> Vec<u8> {
    let mut row = row.clone();
    row.mac.clear();
    serde_json::to_vec(&row).unwrap_or_default()
}

/// The head of a stream as anchored in Postgres.
#[derive(Debug, Clone)]
pub struct Anchor {
    pub stream: String,
    pub seq: u64,
    pub mac: String,
}

/// What [`verify`] found.
#[derive(Debug, Default, serde::Serialize)]
pub struct Verification {
    pub events: u64,
    pub streams: u64,
    /// Empty when the log verifies.
    pub problems: Vec<String>,
}

impl Verification {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks one tenant's audit rows (any order) against its chain keys and anchors. `pruned`
/// holds, per stream, the highest sequence number retention deleted: such a stream must
/// start right after it (its first event's link is then not checked).
pub fn verify(
    rows: Vec<AuditRow>,
    key_for_version: impl Fn(i32) -> Option<ChainKey>,
    anchors: &[Anchor],
    pruned: &BTreeMap<String, u64>,
) -> Verification {
    let mut report = Verification::default();
    let mut streams: BTreeMap<String, Vec<AuditRow>> = BTreeMap::new();
    for row in rows {
        streams
            .entry(row.chain_stream.clone())
            .or_default()
            .push(row);
    }
    let mut keys: BTreeMap<i32, Option<ChainKey>> = BTreeMap::new();
    report.streams = streams.len() as u64;
    let stream_names: std::collections::BTreeSet<String> = streams.keys().cloned().collect();
    for (stream, mut rows) in streams {
        rows.sort_by_key(|row| row.chain_seq);
        let pruned_through = pruned.get(&stream).copied().unwrap_or(0);
        let mut expected_seq = pruned_through + 1;
        let mut prev_mac = String::new();
        for row in &rows {
            report.events += 1;
            let key = keys
                .entry(row.key_version)
                .or_insert_with(|| key_for_version(row.key_version));
            if row.chain_seq <= pruned_through {
                // Older than what retention cut (a request that finished late); only its
                // MAC can be checked.
                if !key.as_ref().is_some_and(|key| key.verifies(row)) {
                    report.problems.push(format!(
                        "stream {stream}: event {} (sequence {}) fails its MAC: altered or forged",
                        row.event_id, row.chain_seq
                    ));
                }
                continue;
            }
            if row.chain_seq < expected_seq {
                report.problems.push(format!(
                    "stream {stream}: sequence {} appears more than once (event {})",
                    row.chain_seq, row.event_id
                ));
                continue;
            }
            if row.chain_seq > expected_seq {
                report.problems.push(format!(
                    "stream {stream}: events {expected_seq}..{} are missing",
                    row.chain_seq - 1
                ));
            } else if row.prev_mac != prev_mac
                && !(pruned_through > 0 && row.chain_seq == pruned_through + 1)
            {
                report.problems.push(format!(
                    "stream {stream}: event {} (sequence {}) does not link to its predecessor",
                    row.event_id, row.chain_seq
                ));
            }
            match key {
                Some(key) if key.verifies(row) => {}
                Some(_) => report.problems.push(format!(
                    "stream {stream}: event {} (sequence {}) fails its MAC: altered or forged",
                    row.event_id, row.chain_seq
                )),
                None => report.problems.push(format!(
                    "stream {stream}: event {} names unknown key version {}",
                    row.event_id, row.key_version
                )),
            }
            expected_seq = row.chain_seq + 1;
            prev_mac = row.mac.clone();
        }
        if let Some(anchor) = anchors.iter().find(|anchor| anchor.stream == stream) {
            match rows.iter().find(|row| row.chain_seq == anchor.seq) {
                Some(row) if row.mac == anchor.mac => {}
                Some(_) => report.problems.push(format!(
                    "stream {stream}: event {} differs from its anchored head",
                    anchor.seq
                )),
                None => report.problems.push(format!(
                    "stream {stream}: anchored head {} is missing (events removed)",
                    anchor.seq
                )),
            }
        }
    }
    for anchor in anchors {
        if !stream_names.contains(&anchor.stream) {
            report.problems.push(format!(
                "stream {}: anchored at sequence {} but has no events (events removed)",
                anchor.stream, anchor.seq
            ));
        }
    }
    report
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn chain(key: &ChainKey, count: u64) -> Vec<AuditRow> {
        let mut rows: Vec<AuditRow> = Vec::new();
        for seq in 1..=count {
            let mut row = AuditRow {
                tenant_id: "tenant".to_owned(),
                occurred_at: 1000 + seq as u32,
                occurred_at_ms: 1_000_000 + seq,
                event_id: format!("event-{seq}"),
                request_id: "r".to_owned(),
                actor_type: "user".to_owned(),
                actor_id: "u".to_owned(),
                action: "records.create".to_owned(),
                resource_type: "record".to_owned(),
                resource_id: String::new(),
                result: "success".to_owned(),
                ip: "127.0.0.1".to_owned(),
                user_agent: String::new(),
                http_method: "POST".to_owned(),
                http_path: "/".to_owned(),
                http_status: 201,
                duration_ms: 1,
                metadata: "{}".to_owned(),
                chain_stream: "stream".to_owned(),
                chain_seq: seq,
                key_version: 1,
                prev_mac: rows.last().map(|row| row.mac.clone()).unwrap_or_default(),
                mac: String::new(),
            };
            row.mac = key.mac(&row);
            rows.push(row);
        }
        rows
    }

    fn key() -> ChainKey {
        ChainKey::derive(&DataKey::from_bytes_for_tests([7; 32]), 1)
    }

    fn check(
        rows: Vec<AuditRow>,
        anchors: &[Anchor],
        pruned: &BTreeMap<String, u64>,
    ) -> Verification {
        verify(rows, |_| Some(key()), anchors, pruned)
    }

    #[test]
    fn an_intact_chain_verifies_and_each_kind_of_tampering_is_found() {
        let key = key();
        let rows = chain(&key, 5);
        let anchor = [Anchor {
            stream: "stream".to_owned(),
            seq: 5,
            mac: rows[4].mac.clone(),
        }];
        let none = BTreeMap::new();
        assert!(check(rows.clone(), &anchor, &none).ok());

        let mut altered = rows.clone();
        altered[2].result = "failure".to_owned();
        assert!(!check(altered, &anchor, &none).ok());

        let mut removed = rows.clone();
        removed.remove(2);
        assert!(!check(removed, &anchor, &none).ok());

        let mut truncated = rows.clone();
        truncated.truncate(3);
        assert!(!check(truncated, &anchor, &none).ok());

        // A forged row needs the key: one MAC'd with another key fails.
        let mut forged = rows.clone();
        let mut extra = rows[4].clone();
        extra.chain_seq = 6;
        extra.prev_mac = rows[4].mac.clone();
        extra.mac = ChainKey::derive(&DataKey::from_bytes_for_tests([8; 32]), 1).mac(&extra);
        forged.push(extra);
        assert!(!check(forged, &anchor, &none).ok());

        // Retention's recorded cut lets a stream start later; an unrecorded cut does not.
        let pruned_rows: Vec<AuditRow> = rows[2..].to_vec();
        assert!(!check(pruned_rows.clone(), &anchor, &none).ok());
        let pruned = BTreeMap::from([("stream".to_owned(), 2u64)]);
        assert!(check(pruned_rows, &anchor, &pruned).ok());
    }
}
