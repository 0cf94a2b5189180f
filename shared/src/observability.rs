//! Logging set-up shared by both binaries: `tracing` to stderr, level from `RUST_LOG`
//! (default `info`), JSON when `TENANTRY_LOG_FORMAT=json`.

use tracing_subscriber::EnvFilter;

pub fn init_logging() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("TENANTRY_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests) is not an error worth failing for.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
