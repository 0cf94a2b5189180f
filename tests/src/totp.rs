//! TOTP codes computed by an independent implementation, for the tests of our two-factor
//! sign-in.

use time::OffsetDateTime;

/// One TOTP step.
pub const STEP: time::Duration = time::Duration::seconds(30);

/// The code for `secret` at `at`, computed by oathtool (Debian's `oathtool` package), not
/// by our code.
pub fn oathtool(secret: &str, at: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    let output = std::process::Command::new("oathtool")
        .args([
            "--totp",
            "-b",
            secret,
            "--now",
            &at.format(&format).unwrap(),
        ])
        .output()
        .expect("oathtool is installed (apt-get install oathtool)");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}
