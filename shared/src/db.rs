//! Postgres connections: the shared pool both planes use, and single connections for the
//! notification listener and for work that changes session state (template migrations).

use std::str::FromStr;

pub mod tls;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::future::join_all;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{NoTls, Row};

#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    #[error("invalid database URL: {0}")]
    Url(tokio_postgres::Error),
    #[error("cannot build the connection pool: {0}")]
    Pool(String),
    #[error("cannot connect to Postgres: {0}")]
    Connect(tokio_postgres::Error),
}

/// Parses a database URL, optionally connecting as another user (the data plane's role).
pub fn pg_config(url: &str, user: Option<&str>) -> Result<tokio_postgres::Config, DbSetupError> {
    let mut config = tokio_postgres::Config::from_str(url).map_err(DbSetupError::Url)?;
    if let Some(user) = user {
        config.user(user);
    }
    if config.get_application_name().is_none() {
        config.application_name("tenantry");
    }
    Ok(config)
}

/// A pool whose connections are handed out without a check round trip. Safe because every
/// use either ends its transaction or is detached from the pool (see `tenant_context`).
/// TLS or not as [`tls`] decides.
pub fn pool(config: tokio_postgres::Config, size: usize) -> Result<Pool, DbSetupError> {
    let settings = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tls::for_connection(&config) {
        Some((config, tls)) => Manager::from_config(config, tls, settings),
        None => Manager::from_config(config, NoTls, settings),
    };
    Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        // A request waits at most this long for a connection, then gets a clear 503.
        .wait_timeout(Some(std::time::Duration::from_secs(5)))
        .create_timeout(Some(std::time::Duration::from_secs(5)))
        .build()
        .map_err(|error| DbSetupError::Pool(error.to_string()))
}

/// `size` connections split over `groups` affinity groups, as evenly as they go (the first
/// groups take one more when they do not divide): the groups' pools together hold exactly
/// `size`. There are never more groups than connections (a group has at least one).
pub fn group_sizes(size: usize, groups: usize) -> Vec<usize> {
    let groups = groups.clamp(1, size.max(1));
    (0..groups)
        .map(|group| size / groups + usize::from(group < size % groups))
        .collect()
}

/// A connection for a tenant of affinity group `preferred`, from the pools of one HTTP
/// worker's groups (`groups`, side by side). A group is a preference, not a partition:
///
/// 1. the tenant's own group, when it has an idle connection or room for one more;
/// 2. else an idle connection of another group, then room in another group: a busy tenant is
///    served by connections its neighbours are not using (their backends then cache its
///    schema too) rather than waiting beside them;
/// 3. else it waits for its own group's next connection.
///
/// So one busy tenant can use all of a worker's connections, as with a single group, while a
/// load spread evenly over many tenants, which keeps every group busy, still meets each
/// group's own backends: it waits in its group rather than taking whichever connection frees
/// first. Waiting ends with the pool's wait timeout, as for a single pool.
pub async fn get_preferring(
    groups: &[Pool],
    preferred: usize,
) -> Result<deadpool_postgres::Object, deadpool_postgres::PoolError> {
    use deadpool_postgres::{PoolError, TimeoutType, Timeouts};

    let own = preferred % groups.len().max(1);
    let pool = &groups[own];
    if groups.len() == 1 {
        return pool.get().await;
    }
    let at_once = |pool: &Pool| Timeouts {
        wait: Some(std::time::Duration::ZERO),
        ..pool.timeouts()
    };
    match pool.timeout_get(&at_once(pool)).await {
        Err(PoolError::Timeout(TimeoutType::Wait)) => {}
        answer => return answer,
    }
    let others = || {
        groups
            .iter()
            .enumerate()
            .filter(move |(group, _)| *group != own)
            .map(|(_, pool)| pool)
    };
    let idle_first = others()
        .filter(|pool| pool.status().available > 0)
        .chain(others());
    for other in idle_first {
        if let Ok(connection) = other.timeout_get(&at_once(other)).await {
            return Ok(connection);
        }
    }
    pool.get().await
}

/// What a read on `client` gave within its deadline (the outcome of `tokio::time::timeout`
/// around it), or `None` past the deadline: then the connection may be mid-statement, so it is
/// closed rather than given back to the pool.
pub fn answered_in_time<T>(
    client: deadpool_postgres::Object,
    outcome: Result<T, tokio::time::error::Elapsed>,
) -> Option<T> {
    match outcome {
        Ok(answer) => Some(answer),
        Err(_) => {
            drop(deadpool_postgres::Object::take(client));
            None
        }
    }
}

/// One connection outside the pool, TLS or not as [`tls`] decides; its driver task runs until
/// the client is dropped.
pub async fn connect(
    config: &tokio_postgres::Config,
) -> Result<tokio_postgres::Client, DbSetupError> {
    connect_with(config, tls::for_connection(config)).await
}

/// [`connect`] with the given TLS settings (`None`: plain text), whatever the process's.
pub async fn connect_with(
    config: &tokio_postgres::Config,
    tls: Option<(
        tokio_postgres::Config,
        tokio_postgres_rustls::MakeRustlsConnect,
    )>,
) -> Result<tokio_postgres::Client, DbSetupError> {
    fn drive<T>(connection: T)
    where
        T: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
    {
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "postgres connection closed");
            }
        });
    }
    match tls {
        Some((config, tls)) => {
            let (client, connection) = config.connect(tls).await.map_err(DbSetupError::Connect)?;
            drive(connection);
            Ok(client)
        }
        None => {
            let (client, connection) =
                config.connect(NoTls).await.map_err(DbSetupError::Connect)?;
            drive(connection);
            Ok(client)
        }
    }
}

/// Whether a Postgres error is a unique violation (SQLSTATE 23505).
pub fn is_unique_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
}

/// One statement with explicitly typed parameters (sent without a prepare round trip).
pub struct Typed<'a> {
    pub sql: &'a str,
    pub params: &'a [(&'a (dyn ToSql + Sync), Type)],
}

impl<'a> Typed<'a> {
    pub fn new(sql: &'a str, params: &'a [(&'a (dyn ToSql + Sync), Type)]) -> Self {
        Self { sql, params }
    }
}

/// Runs `BEGIN; <opening>` (parameterless statements, e.g. DDL or `SET LOCAL`), then
/// `statements`, then `COMMIT`, all pipelined: one round trip. If anything fails, the
/// transaction is rolled back (a `COMMIT` of a failed transaction is a rollback) and the
/// first error is returned.
///
/// Every request is queued on the connection when the future is first polled, so a caller
/// that drops the future part-way cannot leave the connection inside the transaction.
pub async fn pipelined_transaction(
    client: &tokio_postgres::Client,
    opening: &str,
    statements: &[Typed<'_>],
) -> Result<Vec<Vec<Row>>, tokio_postgres::Error> {
    let opening = format!("BEGIN; {opening}");
    let (opened, results, committed) = tokio::join!(
        client.batch_execute(&opening),
        join_all(
            statements
                .iter()
                .map(|statement| client.query_typed(statement.sql, statement.params))
        ),
        client.batch_execute("COMMIT"),
    );
    opened?;
    let rows = results.into_iter().collect::<Result<Vec<_>, _>>()?;
    committed?;
    Ok(rows)
}

/// Whether a Postgres error is a foreign-key violation (SQLSTATE 23503).
pub fn is_foreign_key_violation(error: &tokio_postgres::Error) -> bool {
    error.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION)
}

#[cfg(test)]
mod tests {
    use super::group_sizes;

    #[test]
    fn the_groups_share_a_workers_connections_exactly_and_each_has_one_at_least() {
        assert_eq!(group_sizes(8, 4), [2, 2, 2, 2]);
        assert_eq!(group_sizes(10, 4), [3, 3, 2, 2]);
        assert_eq!(group_sizes(3, 4), [1, 1, 1]);
        assert_eq!(group_sizes(8, 1), [8]);
        assert_eq!(group_sizes(5, 0), [5]);
        for (size, groups) in [(16, 3), (7, 7), (9, 2)] {
            assert_eq!(group_sizes(size, groups).iter().sum::<usize>(), size);
        }
    }
}
