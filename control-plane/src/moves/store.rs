//! SQL of a move: its row and the tenant's `moving` flag and cluster in the catalog; the fence,
//! the copy and the checksums on the two clusters.

use deadpool_postgres::GenericClient;
use futures_util::{SinkExt, TryStreamExt};
use shared::db::Typed;
use shared::notify::{notify, Change};
use shared::tenant::{PgIdentifier, Tenant};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::MoveStep;
use crate::error::ControlError;

/// A move as the catalog records it.
#[derive(Debug, Clone)]
pub struct MoveRow {
    pub source: String,
    pub target: String,
    pub step: MoveStep,
    pub drop_after: Option<OffsetDateTime>,
    /// `drop_after` has passed, by the catalog server's clock.
    pub drop_due: bool,
}

const MOVE_COLUMNS: &str = "source, target, step, drop_after,
     coalesce(drop_after <= now(), false) AS drop_due";

fn move_from_row(row: &tokio_postgres::Row) -> Result<MoveRow, ControlError> {
    let step: String = row.try_get("step")?;
    Ok(MoveRow {
        source: row.try_get("source")?,
        target: row.try_get("target")?,
        step: MoveStep::parse(&step).ok_or_else(|| {
            ControlError::Catalog(shared::catalog::CatalogError::Corrupt {
                what: "move step",
                value: step.clone(),
            })
        })?,
        drop_after: row.try_get("drop_after")?,
        drop_due: row.try_get("drop_due")?,
    })
}

/// The tenant's move, the current one or the last.
pub async fn get(
    client: &impl GenericClient,
    tenant_id: Uuid,
) -> Result<Option<MoveRow>, ControlError> {
    let sql = format!("SELECT {MOVE_COLUMNS} FROM control.tenant_moves WHERE tenant_id = $1");
    client
        .query_opt(&sql, &[&tenant_id])
        .await?
        .as_ref()
        .map(move_from_row)
        .transpose()
}

/// Starts a move (replacing the record of a finished or cancelled one).
pub async fn start(
    client: &impl GenericClient,
    tenant_id: Uuid,
    source: &str,
    target: &str,
) -> Result<(), ControlError> {
    client
        .execute(
            "INSERT INTO control.tenant_moves (tenant_id, source, target, step)
             VALUES ($1, $2, $3, 'copying')
             ON CONFLICT (tenant_id) DO UPDATE
             SET source = $2, target = $3, step = 'copying', started_at = now(),
                 frozen_at = NULL, switched_at = NULL, drop_after = NULL, finished_at = NULL",
            &[&tenant_id, &source, &target],
        )
        .await?;
    Ok(())
}

/// Freezes the tenant's writes: every node refuses them once it hears the tenant changed.
pub async fn freeze(
    client: &mut deadpool_postgres::Object,
    tenant: &Tenant,
) -> Result<(), ControlError> {
    announced_change(
        client,
        tenant,
        Typed::new(
            "UPDATE control.tenants SET moving = true, updated_at = now() WHERE id = $1",
            &[(&tenant.id, Type::UUID)],
        ),
        Typed::new(
            "UPDATE control.tenant_moves SET step = 'frozen', frozen_at = coalesce(frozen_at, now())
             WHERE tenant_id = $1",
            &[(&tenant.id, Type::UUID)],
        ),
    )
    .await
}

/// The switch: the catalog places the tenant on `target` and lifts the freeze, in one
/// transaction with the move's record and the announcement to every node.
pub async fn switch(
    client: &mut deadpool_postgres::Object,
    tenant: &Tenant,
    target: &str,
    grace_seconds: f64,
) -> Result<(), ControlError> {
    announced_change(
        client,
        tenant,
        Typed::new(
            "UPDATE control.tenants SET cluster_id = $2, moving = false, updated_at = now()
             WHERE id = $1",
            &[(&tenant.id, Type::UUID), (&target, Type::TEXT)],
        ),
        Typed::new(
            "UPDATE control.tenant_moves
             SET step = 'switched', switched_at = now(),
                 drop_after = now() + make_interval(secs => $2)
             WHERE tenant_id = $1",
            &[(&tenant.id, Type::UUID), (&grace_seconds, Type::FLOAT8)],
        ),
    )
    .await
}

/// Ends the move as `done` (the source is gone) or `cancelled` (the tenant stayed), lifting
/// any freeze.
pub async fn finish(
    client: &mut deadpool_postgres::Object,
    tenant: &Tenant,
    step: MoveStep,
) -> Result<(), ControlError> {
    let step = step.as_str();
    announced_change(
        client,
        tenant,
        Typed::new(
            "UPDATE control.tenants SET moving = false, updated_at = now()
             WHERE id = $1 AND moving",
            &[(&tenant.id, Type::UUID)],
        ),
        Typed::new(
            "UPDATE control.tenant_moves SET step = $2, finished_at = now() WHERE tenant_id = $1",
            &[(&tenant.id, Type::UUID), (&step, Type::TEXT)],
        ),
    )
    .await
}

/// A change of the tenant's catalog row and of its move's record, in one transaction that
/// announces the tenant changed to every node.
async fn announced_change(
    client: &mut deadpool_postgres::Object,
    tenant: &Tenant,
    tenant_row: Typed<'_>,
    move_row: Typed<'_>,
) -> Result<(), ControlError> {
    let transaction = client.transaction().await?;
    for change in [tenant_row, move_row] {
        transaction.execute_typed(change.sql, change.params).await?;
    }
    notify(
        &transaction,
        &Change::Tenant {
            slug: tenant.slug.to_string(),
        },
    )
    .await?;
    transaction.commit().await?;
    Ok(())
}

/// Tenants whose move switched and whose source may now be dropped.
pub async fn due_cleanups(client: &impl GenericClient) -> Result<Vec<String>, ControlError> {
    let rows = client
        .query(
            "SELECT t.slug FROM control.tenant_moves m JOIN control.tenants t ON t.id = m.tenant_id
             WHERE m.step = 'switched' AND m.drop_after <= now()",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|row| row.get("slug")).collect())
}

// On the clusters.

/// The tenant's tables to copy, in name order: every table of the schema but the template's
/// history (which the target has from running the same migrations), each with the columns a
/// copy carries (stored ones, in order).
pub async fn tables(
    client: &impl GenericClient,
    schema: &PgIdentifier,
) -> Result<Vec<Table>, ControlError> {
    let rows = client
        .query(
            "SELECT c.relname::text AS name,
                    array_agg(quote_ident(a.attname) ORDER BY a.attnum) AS columns
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid
             WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> $2
               AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
             GROUP BY c.relname
             ORDER BY c.relname",
            &[&schema.as_str(), &shared::template::HISTORY_TABLE],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let name: String = row.try_get("name")?;
            let columns: Vec<String> = row.try_get("columns")?;
            Ok(Table {
                qualified: format!("{}.{}", schema.quoted(), quote_ident(&name)),
                name,
                columns: columns.join(", "),
            })
        })
        .collect()
}

/// One table of a tenant's schema.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    /// `schema.table`, quoted.
    pub qualified: String,
    /// The stored columns, quoted, comma-separated.
    pub columns: String,
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The fence on the source: the tenant's role may no longer change its tables, and once every
/// transaction that changed them before has ended (a `SHARE` lock on each waits for them),
/// nothing can. Idempotent.
pub async fn fence(
    client: &mut deadpool_postgres::Object,
    schema: &PgIdentifier,
    role: &PgIdentifier,
    tables: &[Table],
) -> Result<(), ControlError> {
    client
        .batch_execute(&format!(
            "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {} FROM {}",
            schema.quoted(),
            role.quoted()
        ))
        .await?;
    if tables.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = tables
        .iter()
        .map(|table| table.qualified.as_str())
        .collect();
    let transaction = client.transaction().await?;
    transaction
        .batch_execute(&format!("LOCK TABLE {} IN SHARE MODE", names.join(", ")))
        .await?;
    transaction.commit().await?;
    Ok(())
}

/// Lifts the fence (a cancelled move). Idempotent.
pub async fn unfence(
    client: &impl GenericClient,
    schema: &PgIdentifier,
    role: &PgIdentifier,
) -> Result<(), ControlError> {
    client
        .batch_execute(&format!(
            "GRANT ALL ON ALL TABLES IN SCHEMA {} TO {}",
            schema.quoted(),
            role.quoted()
        ))
        .await?;
    Ok(())
}

/// Copies every table of the fenced source into the target's empty copy of the schema, in one
/// target transaction (all or nothing), from one source snapshot; then sets the target's
/// sequences to the source's. Foreign keys and triggers are not checked while loading
/// (`session_replication_role = replica`): the rows are the source's, already checked.
/// Returns the rows copied.
pub async fn copy(
    source: &mut deadpool_postgres::Object,
    target: &mut deadpool_postgres::Object,
    schema: &PgIdentifier,
    tables: &[Table],
) -> Result<u64, ControlError> {
    let reading = source
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let writing = target.transaction().await?;
    writing
        .batch_execute("SET LOCAL session_replication_role = replica")
        .await?;
    if !tables.is_empty() {
        let names: Vec<&str> = tables
            .iter()
            .map(|table| table.qualified.as_str())
            .collect();
        writing
            .batch_execute(&format!("TRUNCATE {}", names.join(", ")))
            .await?;
    }
    let mut rows = 0;
    for table in tables {
        let out = reading
            .copy_out(&format!(
                "COPY (SELECT {} FROM {}) TO STDOUT (FORMAT binary)",
                table.columns, table.qualified
            ))
            .await?;
        let sink = writing
            .copy_in(&format!(
                "COPY {} ({}) FROM STDIN (FORMAT binary)",
                table.qualified, table.columns
            ))
            .await?;
        futures_util::pin_mut!(sink);
        let mut out = std::pin::pin!(out);
        while let Some(chunk) = out.try_next().await? {
            sink.send(chunk).await?;
        }
        rows += sink.as_mut().finish().await?;
    }
    // Sequences: the target's next values continue the source's.
    let sequences = reading
        .query(
            "SELECT format('%I.%I', schemaname, sequencename) AS name, last_value
             FROM pg_sequences WHERE schemaname = $1 AND last_value IS NOT NULL",
            &[&schema.as_str()],
        )
        .await?;
    for sequence in &sequences {
        let name: String = sequence.try_get("name")?;
        let last: i64 = sequence.try_get("last_value")?;
        writing
            .query_typed(
                "SELECT setval($1::regclass, $2, true)",
                &[(&name, Type::TEXT), (&last, Type::INT8)],
            )
            .await?;
    }
    writing.commit().await?;
    reading.commit().await?;
    Ok(rows)
}

/// Each table's row count and a checksum of its rows (the sum of the first 64 bits of each
/// row's md5, which needs no sort), computed the same way on either cluster: UTC, ISO dates,
/// exact floats.
pub async fn checksums(
    client: &mut deadpool_postgres::Object,
    tables: &[Table],
) -> Result<Vec<(String, i64, String)>, ControlError> {
    let transaction = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    transaction
        .batch_execute(
            "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD';
             SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 3;
             SET LOCAL bytea_output = 'hex'",
        )
        .await?;
    let mut sums = Vec::with_capacity(tables.len());
    for table in tables {
        let row = transaction
            .query_one(
                &format!(
                    "SELECT count(*) AS rows,
                            coalesce(sum(('x' || left(md5(ROW({})::text), 16))::bit(64)::bigint
                                         ::numeric), 0)::text AS sum
                     FROM {}",
                    table.columns, table.qualified
                ),
                &[],
            )
            .await?;
        sums.push((
            table.name.clone(),
            row.try_get("rows")?,
            row.try_get("sum")?,
        ));
    }
    transaction.commit().await?;
    Ok(sums)
}

/// The tenant's unsent mail count on the cluster `client` reaches, and its pending mark there.
pub async fn move_mail_mark(
    source: &impl GenericClient,
    target: &impl GenericClient,
    tenant_id: Uuid,
    schema: &PgIdentifier,
) -> Result<(), ControlError> {
    let unsent: i64 = target
        .query_one(
            &format!(
                "SELECT count(*) FROM {}.mail_outbox WHERE sent_at IS NULL",
                schema.quoted()
            ),
            &[],
        )
        .await?
        .try_get(0)?;
    if unsent > 0 {
        target
            .execute(
                "INSERT INTO control.mail_pending (tenant_id) VALUES ($1)
                 ON CONFLICT (tenant_id) DO UPDATE
                 SET generation = nextval('control.mail_pending_generation'), due_at = now()",
                &[&tenant_id],
            )
            .await?;
        notify(target, &Change::MailPending { tenant: tenant_id }).await?;
    }
    source
        .execute(
            "DELETE FROM control.mail_pending WHERE tenant_id = $1",
            &[&tenant_id],
        )
        .await?;
    Ok(())
}
