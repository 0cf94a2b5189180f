//! The trivial query readiness asks Postgres: it proves a connection answers, nothing more
//! (ClickHouse's is `shared::events::store::answers`, which the start-up TLS check asks too).

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
