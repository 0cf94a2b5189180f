//! SQL of the event path: the audit outbox (`control.audit_outbox`) and the anchored chain
//! heads in Postgres, and the by-id lookup of stored events in ClickHouse. The callers own
//! deadlines and retries; these functions only talk to the stores.

use deadpool_postgres::Object;
use time::OffsetDateTime;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

/// Writes the event, only if the transaction has written something (it then has a transaction
/// id) and only once per event id; answers whether it wrote (`written`). A `SECURITY DEFINER`
/// function (catalog V5): tenant roles have no right on the table, and switching roles per
/// commit cost more than the insert. Sent by `tenant_context` pipelined with the `COMMIT` of
/// the request's first changing transaction, so it cannot be a function of its own here.
pub(crate) const OUTBOX_WRITE: &str = "SELECT tenantry_outbox.write($1, $2, $3) AS written";

/// Deletes the outbox rows of `event_ids`; how many there were. One pipelined transaction
/// that does not wait for its WAL flush: a delete lost in a Postgres crash only makes recovery
/// find the event in ClickHouse and delete the row again.
pub async fn delete_outbox_rows(
    client: &tokio_postgres::Client,
    event_ids: &[Uuid],
) -> Result<u64, tokio_postgres::Error> {
    let params: [(&(dyn ToSql + Sync), Type); 1] = [(&event_ids, Type::UUID_ARRAY)];
    let (opened, deleted, committed) = tokio::join!(
        client.batch_execute("BEGIN; SET LOCAL synchronous_commit = off"),
        client.execute_typed(
            "DELETE FROM control.audit_outbox WHERE event_id = ANY($1)",
            &params,
        ),
        client.batch_execute("COMMIT"),
    );
    opened?;
    let deleted = deleted?;
    committed?;
    Ok(deleted)
}

/// Claims up to `limit` outbox rows older than `age_ms` that nobody claimed in the last
/// `reclaim_ms` (a claim by a node that then died expires); each row's event (JSON) and when
/// it was written, in no particular order.
pub async fn claim_outbox_rows(
    client: &tokio_postgres::Client,
    age_ms: i64,
    reclaim_ms: i64,
    limit: i64,
) -> Result<Vec<(serde_json::Value, OffsetDateTime)>, tokio_postgres::Error> {
    let rows = client
        .query_typed(
            "UPDATE control.audit_outbox SET claimed_at = now()
             WHERE event_id IN (
                 SELECT event_id FROM control.audit_outbox
                 WHERE created_at < now() - make_interval(secs => $1 / 1000.0)
                   AND (claimed_at IS NULL
                        OR claimed_at < now() - make_interval(secs => $2 / 1000.0))
                 ORDER BY created_at
                 LIMIT $3
                 FOR UPDATE SKIP LOCKED)
             RETURNING event, created_at",
            &[
                (&age_ms, Type::INT8),
                (&reclaim_ms, Type::INT8),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    rows.iter()
        .map(|row| Ok((row.try_get("event")?, row.try_get("created_at")?)))
        .collect()
}

/// The newest anchored (tenant, stream) heads of a batch, as parallel columns.
pub struct ChainHeads<'a> {
    pub tenants: Vec<Uuid>,
    pub streams: Vec<&'a str>,
    pub seqs: Vec<i64>,
    pub macs: Vec<&'a str>,
}

/// Records `heads` in the catalog; a head only ever moves forward. Does not wait for the WAL
/// flush: an anchor lost in a Postgres crash only shortens the tail the next verification
/// covers, and a flush each batch measurably slowed the node's other commits
/// (docs/benchmarks.md, audit overhead).
pub async fn anchor_chain_heads(
    client: &mut Object,
    heads: &ChainHeads<'_>,
) -> Result<(), tokio_postgres::Error> {
    let transaction = client.transaction().await?;
    transaction
        .batch_execute("SET LOCAL synchronous_commit = off")
        .await?;
    transaction
        .execute(
            "INSERT INTO control.audit_chain_heads (tenant_id, stream_id, seq, mac)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[])
             ON CONFLICT (tenant_id, stream_id) DO UPDATE
                 SET seq = excluded.seq, mac = excluded.mac, updated_at = now()
                 WHERE control.audit_chain_heads.seq < excluded.seq",
            &[&heads.tenants, &heads.streams, &heads.seqs, &heads.macs],
        )
        .await?;
    transaction.commit().await
}

/// Which of `ids` the ClickHouse events table `table` holds.
pub async fn stored_event_ids(
    client: &clickhouse::Client,
    table: &str,
    ids: Vec<String>,
) -> Result<Vec<String>, clickhouse::error::Error> {
    client
        .query("SELECT event_id FROM ? WHERE has(?, event_id)")
        .bind(clickhouse::sql::Identifier(table))
        .bind(ids)
        .fetch_all::<String>()
        .await
}

/// Whether ClickHouse answers a query (in its `system` database, which always exists).
pub async fn answers(client: &clickhouse::Client) -> Result<u8, clickhouse::error::Error> {
    client
        .clone()
        .with_database("system")
        .query("SELECT 1")
        .fetch_one::<u8>()
        .await
}
