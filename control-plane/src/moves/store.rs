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
/// copy carries (stored ones, in order) and its primary key's.
pub async fn tables(
    client: &impl GenericClient,
    schema: &PgIdentifier,
) -> Result<Vec<Table>, ControlError> {
    let rows = client
        .query(
            "SELECT c.relname::text AS name,
                    (SELECT array_agg(quote_ident(a.attname) ORDER BY a.attnum)
                     FROM pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                       AND a.attgenerated = '') AS columns,
                    (SELECT array_agg(quote_ident(a.attname) ORDER BY k.position)
                     FROM pg_index i
                     CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY
                         AS k(attnum, position)
                     JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
                     WHERE i.indrelid = c.oid AND i.indisprimary) AS key
             FROM pg_class c
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind = 'r' AND c.relname <> $2
             ORDER BY c.relname",
            &[&schema.as_str(), &shared::template::HISTORY_TABLE],
        )
        .await?;
    rows.iter()
        .map(|row| {
            let name: String = row.try_get("name")?;
            let columns: Vec<String> = row.try_get("columns")?;
            let key: Option<Vec<String>> = row.try_get("key")?;
            Ok(Table {
                qualified: format!("{}.{}", schema.quoted(), quote_ident(&name)),
                name,
                columns,
                key: key.map(|key| key.join(", ")),
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
    /// The stored columns, quoted, in order.
    pub columns: Vec<String>,
    /// The primary key's columns, quoted, comma-separated (`None`: the table has none).
    pub key: Option<String>,
}

impl Table {
    fn column_list(&self) -> String {
        self.columns.join(", ")
    }
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
    let transaction = client.transaction().await?;
    transaction
        .batch_execute(&format!(
            "LOCK TABLE {} IN SHARE MODE",
            qualified_list(tables)
        ))
        .await?;
    transaction.commit().await?;
    Ok(())
}

fn qualified_list<'a>(tables: impl IntoIterator<Item = &'a Table>) -> String {
    tables
        .into_iter()
        .map(|table| table.qualified.as_str())
        .collect::<Vec<_>>()
        .join(", ")
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

/// Settings under which a row's text is the same on either cluster: UTC, ISO dates, exact
/// floats, hex bytes. Both sides of a comparison run under them, and rows sent as text are
/// written and read back under them.
const SAME_TEXT_EVERYWHERE: &str = "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD';
     SET LOCAL IntervalStyle = 'postgres'; SET LOCAL extra_float_digits = 3;
     SET LOCAL bytea_output = 'hex'";

/// A read-only transaction on one snapshot, under [`SAME_TEXT_EVERYWHERE`].
async fn snapshot(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, ControlError> {
    let transaction = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    transaction.batch_execute(SAME_TEXT_EVERYWHERE).await?;
    Ok(transaction)
}

/// The target's writing transaction: all or nothing, foreign keys and triggers not checked
/// while loading (`session_replication_role = replica`: the rows are the source's, already
/// checked), under [`SAME_TEXT_EVERYWHERE`].
async fn loading(
    client: &mut deadpool_postgres::Object,
) -> Result<deadpool_postgres::Transaction<'_>, ControlError> {
    let transaction = client.transaction().await?;
    transaction
        .batch_execute(&format!(
            "SET LOCAL session_replication_role = replica; {SAME_TEXT_EVERYWHERE}"
        ))
        .await?;
    Ok(transaction)
}

/// `COPY … (FORMAT binary)` of one table from `reading` into `writing`.
async fn copy_table(
    reading: &deadpool_postgres::Transaction<'_>,
    writing: &deadpool_postgres::Transaction<'_>,
    table: &Table,
) -> Result<u64, ControlError> {
    let columns = table.column_list();
    let out = reading
        .copy_out(&format!(
            "COPY (SELECT {columns} FROM {}) TO STDOUT (FORMAT binary)",
            table.qualified
        ))
        .await?;
    let sink = writing
        .copy_in(&format!(
            "COPY {} ({columns}) FROM STDIN (FORMAT binary)",
            table.qualified
        ))
        .await?;
    futures_util::pin_mut!(sink);
    let mut out = std::pin::pin!(out);
    while let Some(chunk) = out.try_next().await? {
        sink.send(chunk).await?;
    }
    Ok(sink.as_mut().finish().await?)
}

/// Which rows of a table with a primary key a [`sync`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compare {
    /// Every row, by its key and the md5 of its text: finds every difference.
    EveryRow,
    /// Only rows written by transactions from this one on (a full transaction id, the `xmin`
    /// of the snapshot of a sync that compared every row), and the keys: finds every
    /// difference made since that sync, reading keys and row headers only.
    WrittenSince(i64),
}

/// What a [`sync`] changed on the target: the rows it wrote and, per table, the keys of the
/// rows it rewrote or removed (`None`: a table copied whole); and the `xmin` of the source
/// snapshot it brought the target to (for a later [`Compare::WrittenSince`]).
#[derive(Debug, Default)]
pub struct Synced {
    pub rows: u64,
    pub touched: Vec<Option<Vec<String>>>,
    pub xmin: i64,
}

/// Brings the target's copy of the schema to the source's rows, in one target transaction
/// (all or nothing) from one source snapshot. A table empty on the target is copied whole
/// (`COPY … (FORMAT binary)`): the bulk copy, while the tenant still takes writes. Otherwise,
/// for a table with a primary key, both sides' rows are read in key order and merged
/// (`compare` says what is read of each row); rows that are new or differ are copied again
/// and rows gone from the source are removed: a catch-up. A table without a primary key is
/// copied whole again. The sequences follow the source's.
pub async fn sync(
    source: &mut deadpool_postgres::Object,
    target: &mut deadpool_postgres::Object,
    schema: &PgIdentifier,
    tables: &[Table],
    compare: Compare,
) -> Result<Synced, ControlError> {
    let reading = snapshot(source).await?;
    let writing = loading(target).await?;
    // The snapshot's bounds, as full (epoch and id) transaction ids.
    let bounds = reading
        .query_one(
            "SELECT pg_snapshot_xmin(s)::text::bigint AS xmin,
                    pg_snapshot_xmax(s)::text::bigint AS xmax
             FROM pg_current_snapshot() AS s",
            &[],
        )
        .await?;
    let (xmin, xmax): (i64, i64) = (bounds.try_get("xmin")?, bounds.try_get("xmax")?);
    let mut synced = Synced {
        xmin,
        ..Synced::default()
    };
    for table in tables {
        let empty = !writing
            .query_one(
                &format!("SELECT EXISTS (SELECT FROM {})", table.qualified),
                &[],
            )
            .await?
            .try_get::<_, bool>(0)?;
        let key = match &table.key {
            Some(key) if !empty => key,
            _ => {
                if !empty {
                    writing
                        .batch_execute(&format!("TRUNCATE {}", table.qualified))
                        .await?;
                }
                synced.rows += copy_table(&reading, &writing, table).await?;
                synced.touched.push(None);
                continue;
            }
        };
        let (changed, removed) = differences(&reading, &writing, table, key, compare, xmax).await?;
        let touched: Vec<String> = changed.iter().chain(&removed).cloned().collect();
        if !touched.is_empty() {
            writing
                .execute_typed(
                    &format!(
                        "DELETE FROM {} WHERE ROW({key})::text = ANY($1)",
                        table.qualified
                    ),
                    &[(&touched, Type::TEXT_ARRAY)],
                )
                .await?;
        }
        if !changed.is_empty() {
            synced.rows += copy_rows(&reading, &writing, table, key, &changed).await?;
        }
        synced.touched.push(Some(touched));
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
    Ok(synced)
}

/// Copies the source's rows with keys `keys` into the target: each row as its text, parsed
/// back into the table's row type on the target (both under [`SAME_TEXT_EVERYWHERE`]), its
/// stored columns inserted.
async fn copy_rows(
    reading: &deadpool_postgres::Transaction<'_>,
    writing: &deadpool_postgres::Transaction<'_>,
    table: &Table,
    key: &str,
    keys: &[String],
) -> Result<u64, ControlError> {
    let rows: Vec<String> = reading
        .query_typed(
            &format!(
                "SELECT t::text AS row FROM {} t WHERE ROW({key})::text = ANY($1)",
                table.qualified
            ),
            &[(&keys, Type::TEXT_ARRAY)],
        )
        .await?
        .iter()
        .map(|row| row.try_get("row"))
        .collect::<Result<_, _>>()?;
    let fields: Vec<String> = table
        .columns
        .iter()
        .map(|column| format!("(r).{column}"))
        .collect();
    Ok(writing
        .execute_typed(
            &format!(
                "INSERT INTO {table} ({columns})
                 SELECT {fields} FROM (SELECT x::{table} AS r FROM unnest($1::text[]) x) s",
                table = table.qualified,
                columns = table.column_list(),
                fields = fields.join(", "),
            ),
            &[(&rows, Type::TEXT_ARRAY)],
        )
        .await?)
}

/// Each row's key and the md5 of its text, in the keys' byte order (`COLLATE "C"`, the order
/// Rust compares strings in).
fn keyed_hashes(table: &Table, key: &str, filter: &str) -> String {
    format!(
        "SELECT ROW({key})::text COLLATE \"C\" AS key, md5(ROW({columns})::text) AS hash
         FROM {table} {filter} ORDER BY 1",
        columns = table.column_list(),
        table = table.qualified,
    )
}

/// Each row's key, in the keys' byte order (`COLLATE "C"`), and whether a transaction from
/// `$1` on wrote it: its `xmin` (32 bits, as stored in the row) lies in the circular range
/// from `$1` (the low 32 bits of a full transaction id) to `$1 + $2`. Every row written since a
/// full comparison has its writer's id there: an id below that snapshot's `xmin` belonged to a
/// transaction that had ended before it, whose rows the comparison saw. The range is wider
/// than needed (it also holds transactions that had committed before the snapshot, and the
/// subtransactions of those in progress, which a snapshot's list does not name), so some rows
/// are copied again for nothing, never one missed. The ids 0-2 are permanent (bootstrap,
/// frozen), and an id more than 2^31 old is frozen by vacuum before it could wrap into the
/// range; at worst such a row is copied again too.
fn keyed_writers(table: &Table, key: &str) -> String {
    format!(
        "SELECT ROW({key})::text COLLATE \"C\" AS key,
                xmin::text::bigint >= 3
                    AND ((xmin::text::bigint - $1) & 4294967295) < $2 AS recent
         FROM {table} ORDER BY 1",
        table = table.qualified,
    )
}

/// The keys of rows that are on the source and not the same on the target (new or changed),
/// and of rows on the target that the source no longer has: both sides streamed at once and
/// merged, so memory holds only the differences. `xmax` is the source snapshot's.
async fn differences(
    source: &deadpool_postgres::Transaction<'_>,
    target: &deadpool_postgres::Transaction<'_>,
    table: &Table,
    key: &str,
    compare: Compare,
    xmax: i64,
) -> Result<(Vec<String>, Vec<String>), ControlError> {
    let no_params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
    let (low, span) = match compare {
        Compare::EveryRow => (0, 0),
        Compare::WrittenSince(since) => (since & 0xFFFF_FFFF, (xmax - since).max(0)),
    };
    let (there_sql, here_sql, there_params) = match compare {
        Compare::EveryRow => {
            let sql = keyed_hashes(table, key, "");
            (sql.clone(), sql, no_params.clone())
        }
        Compare::WrittenSince(_) => {
            let range: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&low, &span];
            let keys = format!(
                "SELECT ROW({key})::text COLLATE \"C\" AS key FROM {} ORDER BY 1",
                table.qualified
            );
            (keyed_writers(table, key), keys, range)
        }
    };
    let (there, here) = tokio::try_join!(
        source.query_raw(&there_sql, there_params),
        target.query_raw(&here_sql, no_params)
    )?;
    let (mut there, mut here) = (std::pin::pin!(there), std::pin::pin!(here));
    let (mut changed, mut removed) = (Vec::new(), Vec::new());
    let (mut a, mut b) = tokio::try_join!(there.try_next(), here.try_next())?;
    loop {
        let order = match (&a, &b) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(a), Some(b)) => a.try_get::<_, &str>("key")?.cmp(b.try_get("key")?),
        };
        match order {
            std::cmp::Ordering::Less => {
                changed.push(field(&a, "key")?);
                a = there.try_next().await?;
            }
            std::cmp::Ordering::Greater => {
                removed.push(field(&b, "key")?);
                b = here.try_next().await?;
            }
            std::cmp::Ordering::Equal => {
                let differs = match compare {
                    Compare::EveryRow => field(&a, "hash")? != field(&b, "hash")?,
                    Compare::WrittenSince(_) => a
                        .as_ref()
                        .map(|row| row.try_get::<_, bool>("recent"))
                        .transpose()?
                        .unwrap_or(true),
                };
                if differs {
                    changed.push(field(&a, "key")?);
                }
                (a, b) = tokio::try_join!(there.try_next(), here.try_next())?;
            }
        }
    }
    Ok((changed, removed))
}

fn field(row: &Option<tokio_postgres::Row>, name: &str) -> Result<String, ControlError> {
    let row = row.as_ref().ok_or_else(|| {
        ControlError::Catalog(shared::catalog::CatalogError::Corrupt {
            what: "move comparison",
            value: name.to_owned(),
        })
    })?;
    Ok(row.try_get(name)?)
}

/// What the verification compares of each table on the two sides, after the catch-up (a
/// [`sync`] in the freeze): its
/// row count, and the keys and row hashes of the rows the catch-up touched (`touched`, one
/// entry per table; rows it did not touch were found equal by the catch-up's own
/// comparison) or, for a table it copied whole, the sum of every row's hash (the first 64
/// bits of each row's md5, which needs no sort).
pub async fn fingerprints(
    client: &mut deadpool_postgres::Object,
    tables: &[Table],
    touched: &[Option<Vec<String>>],
) -> Result<Vec<(String, i64, String)>, ControlError> {
    let transaction = snapshot(client).await?;
    let mut prints = Vec::with_capacity(tables.len());
    for (table, touched) in tables.iter().zip(touched) {
        let rows: i64 = transaction
            .query_one(&format!("SELECT count(*) FROM {}", table.qualified), &[])
            .await?
            .try_get(0)?;
        let print = match (&table.key, touched) {
            (Some(key), Some(keys)) if !keys.is_empty() => {
                let filter = format!("WHERE ROW({key})::text = ANY($1)");
                let rows = transaction
                    .query_typed(
                        &keyed_hashes(table, key, &filter),
                        &[(keys, Type::TEXT_ARRAY)],
                    )
                    .await?;
                let mut print = String::new();
                for row in &rows {
                    let (key, hash): (&str, &str) = (row.try_get("key")?, row.try_get("hash")?);
                    print.push_str(&format!("{key}={hash};"));
                }
                print
            }
            (_, Some(_)) => String::new(),
            (_, None) => transaction
                .query_one(
                    &format!(
                        "SELECT coalesce(sum(('x' || left(md5(ROW({})::text), 16))::bit(64)
                                             ::bigint::numeric), 0)::text
                         FROM {}",
                        table.column_list(),
                        table.qualified
                    ),
                    &[],
                )
                .await?
                .try_get(0)?,
        };
        prints.push((table.name.clone(), rows, print));
    }
    transaction.commit().await?;
    Ok(prints)
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
