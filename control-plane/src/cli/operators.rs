//! `control-plane operator`: operator credentials for the REST API.

use std::io::Write;

use clap::Subcommand;

use crate::context::ControlPlane;

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    #[command(subcommand)]
    Token(TokenCommand),
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
    let OperatorCommand::Token(TokenCommand::Create { name, raw }) = command;
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
