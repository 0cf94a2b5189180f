//! The provider settings model lives in `shared` (both planes manage providers).

pub use shared::sso::settings::*;
