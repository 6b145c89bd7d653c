//! Campaigns: a quarter's rebuild of a fleet described in one YAML file (`file`), turned into a
//! DAG of farm jobs (`plan`). Submission, tracking and reports build on these.

pub mod file;
pub mod plan;
pub mod report;

pub use file::{CampaignFile, CampaignFileError, SourceType};
pub use plan::{plan, Plan, PlanError};

#[cfg(test)]
mod tests;
