//! Applies the ClickHouse schema when a node starts: once, and again every few seconds until
//! it succeeds (ClickHouse may be down at start; the writer spools meanwhile).

use std::time::Duration;

use shared::events::EventSettings;

pub fn ensure_in_background(settings: &EventSettings) {
    let settings = settings.clone();
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(500);
        loop {
            match shared::events::schema::migrate_settings(&settings).await {
                Ok(_) => return,
                Err(error) => {
                    tracing::warn!(%error, "ClickHouse schema not applied yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(30));
                }
            }
        }
    });
}
