//! TOTP itself lives in `shared::totp` (the operator console uses it too); users' secrets are
//! sealed with their tenant's data key (`sealing_context`).

pub use shared::totp::{Enrolment, TotpError, TotpSecret, SKEW_STEPS, STEP_SECONDS};
