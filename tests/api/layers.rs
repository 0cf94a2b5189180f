//! The layering rules a compiler cannot check, checked by reading the source: SQL (Postgres
//! and ClickHouse) lives only in `store` modules, and rows are never decoded by position.
//!
//! The scan is deliberately plain text, line by line: a string literal that starts with an
//! upper-case SQL keyword (`"SELECT …`, `r#"INSERT …`) outside a store module is SQL in the
//! wrong place, and `.get(<digit>)` (or `.get::<…>(<digit>`) is a positional, panicking row
//! read. Comment lines are skipped. What it cannot see (SQL assembled from fragments without a
//! leading keyword) is rare enough to leave to review.

use std::path::{Path, PathBuf};

/// The source trees of both planes and of the shared crate.
const SOURCE_TREES: &[&str] = &["data-plane/src", "control-plane/src", "shared/src"];

/// Files that hold SQL outside a `store.rs` or `store/` module, and why that is right.
const SQL_ALLOWED: &[(&str, &str)] = &[
    (
        "shared/src/catalog.rs",
        "the catalog's store: the reads of `control` both planes make, and its migration",
    ),
    (
        "shared/src/tenant_context.rs",
        "`SET LOCAL` role and search_path: the tenant context itself, pipelined with the \
         first statement of every tenant transaction",
    ),
    (
        "shared/src/template.rs",
        "the tenant-template migration runner: `SET LOCAL` around refinery's transactions \
         (the migrations are the .sql files of tenant-templates/)",
    ),
    (
        "shared/src/notify.rs",
        "the NOTIFY/LISTEN transport: `LISTEN` on the listener's own connection and the \
         tenant-changed `pg_notify` helper every writer shares",
    ),
    (
        "shared/src/events/schema.rs",
        "ClickHouse's migrations (DDL and their history table), the counterpart of migrations/",
    ),
    (
        "shared/src/cluster.rs",
        "the runner of migrations/cluster/prepare.sql (what every tenant cluster needs), under \
         its advisory lock, like the catalog's migration",
    ),
    (
        "shared/src/mail_outbox.rs",
        "the SQL contract of the mail outbox: two statements both planes' stores run",
    ),
];

const SQL_KEYWORDS: &[&str] = &[
    "SELECT", "INSERT", "UPDATE", "DELETE", "WITH", "CREATE", "DROP", "ALTER", "GRANT", "REVOKE",
    "SET", "RESET", "LISTEN", "NOTIFY", "TRUNCATE", "COPY",
];

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// `relative` (with `/` separators) is a store module: `store.rs`, or a file under `store/`.
fn is_store(relative: &str) -> bool {
    relative.ends_with("/store.rs") || relative.contains("/store/")
}

/// Whether `line` has a string literal that starts with an SQL keyword.
fn has_sql_literal(line: &str) -> bool {
    line.match_indices('"').any(|(index, _)| {
        let rest = line[index + 1..].trim_start();
        SQL_KEYWORDS.iter().any(|keyword| {
            rest.strip_prefix(keyword)
                .is_some_and(|after| after.is_empty() || after.starts_with([' ', '\n']))
        })
    })
}

/// Whether `line` reads something by position: `.get(0)`, `.get::<_, T>(1)`.
fn has_positional_get(line: &str) -> bool {
    line.match_indices(".get").any(|(index, _)| {
        let mut rest = &line[index + ".get".len()..];
        if let Some(turbofish) = rest.strip_prefix("::<") {
            let Some(end) = turbofish.find(">(") else {
                return false;
            };
            rest = &turbofish[end + 1..];
        }
        rest.strip_prefix('(').is_some_and(|argument| {
            argument
                .trim_start()
                .starts_with(|c: char| c.is_ascii_digit())
        })
    })
}

/// Every finding in the three trees: `<file>:<line>: <what>`.
fn findings() -> (usize, Vec<String>) {
    let root = workspace_root();
    let mut files = Vec::new();
    for tree in SOURCE_TREES {
        rust_files(&root.join(tree), &mut files);
    }
    let mut found = Vec::new();
    for path in &files {
        let relative = path
            .strip_prefix(&root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let sql_allowed =
            is_store(&relative) || SQL_ALLOWED.iter().any(|(file, _)| *file == relative);
        let source = std::fs::read_to_string(path).unwrap();
        for (number, line) in source.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            if !sql_allowed && has_sql_literal(line) {
                found.push(format!(
                    "{relative}:{}: SQL outside a store module: {}",
                    number + 1,
                    line.trim()
                ));
            }
            if has_positional_get(line) {
                found.push(format!(
                    "{relative}:{}: positional get (read the column by name with try_get): {}",
                    number + 1,
                    line.trim()
                ));
            }
        }
    }
    (files.len(), found)
}

#[test]
fn sql_lives_only_in_store_modules_and_rows_are_read_by_name() {
    let (scanned, found) = findings();
    // A wrong path would scan nothing and pass: the trees hold well over a hundred files.
    assert!(scanned > 100, "only {scanned} source files found");
    assert!(
        found.is_empty(),
        "{} finding(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

#[test]
fn every_allowed_file_exists_and_still_needs_its_exception() {
    let root = workspace_root();
    for (file, _why) in SQL_ALLOWED {
        let source = std::fs::read_to_string(root.join(file))
            .unwrap_or_else(|error| panic!("{file} is allowed SQL but cannot be read: {error}"));
        assert!(
            source.lines().any(has_sql_literal),
            "{file} holds no SQL any more: take it off SQL_ALLOWED"
        );
    }
}

#[test]
fn the_scan_sees_what_it_is_meant_to_refuse() {
    assert!(has_sql_literal(r#"client.query("SELECT 1", &[])"#));
    assert!(has_sql_literal(r##"    r#"INSERT INTO users"#,"##));
    assert!(has_sql_literal(
        r#"        "UPDATE refresh_tokens SET used_at = $2","#
    ));
    assert!(has_sql_literal(r#"        "WITH admin AS ("#));
    assert!(!has_sql_literal(
        r#"ApiError::bad_request("invalid", "Select a role")"#
    ));
    assert!(!has_sql_literal(r#"let method = "DELETE";"#));
    assert!(has_positional_get("let id: Uuid = row.get(0);"));
    assert!(has_positional_get("row.get::<_, i64>(1).max(0)"));
    assert!(!has_positional_get(r#"row.try_get("id")?"#));
    assert!(!has_positional_get("headers.get(header::ACCEPT)"));
}
