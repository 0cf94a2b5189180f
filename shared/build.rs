//! `refinery::embed_migrations!` reads the migration folders at compile time, but Cargo does
//! not know: a new migration file would not rebuild this crate, and a stale build would lack
//! it. Tell Cargo to rebuild when anything in those folders changes.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
    println!("cargo:rerun-if-changed=../tenant-templates");
}
