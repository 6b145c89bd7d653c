//! `patchfarm certs init`: the farm's CA and one certificate per coordinator, agent and client.

use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Write ca.crt/.key, coordinator-<id>.crt/.key, agent-<k>.crt/.key and client.crt/.key.
    Init {
        /// Directory to write the certificate set into (refused if it holds one).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Coordinator certificates to issue (coordinator-1 ... coordinator-N).
        #[arg(long, default_value_t = 3)]
        coordinators: u32,
        /// Agent certificates to issue (agent-1 ... agent-M).
        #[arg(long, default_value_t = 2)]
        agents: u32,
    },
}

pub fn run(command: &CertsCommand) -> anyhow::Result<()> {
    match command {
        CertsCommand::Init {
            out,
            coordinators,
            agents,
        } => {
            let written = patchfarm_client::tls::init(out, *coordinators, *agents)?;
            for path in written {
                println!("{}", path.display());
            }
            Ok(())
        }
    }
}
