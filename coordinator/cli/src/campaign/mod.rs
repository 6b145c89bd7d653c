//! Campaigns: a quarter's rebuild of a fleet described in one YAML file (`file`), turned into a
//! DAG of typed farm jobs (`plan`), submitted and followed by `patchfarm campaign …` (`command`),
//! and reported on (`report`).

mod command;
pub mod domain_check;
pub mod domains_from;
mod file;
pub mod gitops;
pub mod plan;
pub mod report;
pub mod waves;

pub use command::{run, CampaignCommand};
pub use file::{CampaignFile, CampaignFileError, SourceType};
pub use plan::{plan, Plan, PlanError};

#[cfg(test)]
mod aux_tests;
#[cfg(test)]
mod output_tests;
#[cfg(test)]
mod tests;
