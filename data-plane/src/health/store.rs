//! The trivial queries readiness asks each store: they prove a connection answers, nothing
//! more.

/// Whether a pooled Postgres connection answers a query. Simple protocol: one round trip,
/// no statement left behind.
pub async fn postgres_answers(pool: &deadpool_postgres::Pool) -> Result<(), String> {
    let client = pool.get().await.map_err(|error| error.to_string())?;
    client
        .simple_query("SELECT 1")
        .await
        .map_err(|error| error.to_string())
        .map(|_| ())
}

/// Whether ClickHouse answers a query (in its `system` database, which always exists).
pub async fn clickhouse_answers(
    client: &clickhouse::Client,
) -> Result<u8, clickhouse::error::Error> {
    client
        .clone()
        .with_database("system")
        .query("SELECT 1")
        .fetch_one::<u8>()
        .await
}
