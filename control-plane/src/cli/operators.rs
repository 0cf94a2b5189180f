//! `control-plane operator`: operator credentials for the REST API.

use std::io::Write;

use clap::Subcommand;

use crate::context::ControlPlane;

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    #[command(subcommand)]
    Token(TokenCommand),
    /// Operator accounts, for the operator console.
    #[command(subcommand)]
    Account(AccountCommand),
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Make an account; its password is read from standard input (one line).
    Add {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an operator token; its secret is printed once and stored only hashed.
    Create {
        name: String,
        /// Print only the token.
        #[arg(long)]
        raw: bool,
    },
}

pub(super) async fn run(
    command: OperatorCommand,
    control: &ControlPlane,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let (name, raw) = match command {
        OperatorCommand::Token(TokenCommand::Create { name, raw }) => (name, raw),
        OperatorCommand::Account(AccountCommand::Add { email }) => {
            let email = shared::email::Email::parse(&email)
                .map_err(|error| anyhow::anyhow!("--email: {error}"))?;
            let mut password = zeroize::Zeroizing::new(String::new());
            std::io::stdin().read_line(&mut password)?;
            let password =
                zeroize::Zeroizing::new(password.trim_end_matches(['\r', '\n']).to_owned());
            crate::operators::accounts::add(control, &email, password).await?;
            writeln!(out, "operator account {email} added")?;
            return Ok(());
        }
    };
    let token = crate::operators::create_token(control, &name).await?;
    if raw {
        writeln!(out, "{}", token.as_str())?;
    } else {
        writeln!(
            out,
            "operator token '{name}' (shown once, store it now):\n{}",
            token.as_str()
        )?;
    }
    Ok(())
}
