//! The data plane's clock: the one of both planes, [`shared::clock`].

pub use shared::clock::{Clock, ManualClock};
