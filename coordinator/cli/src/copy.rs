//! `patchfarm copy`: push an image to another registry or layout unchanged (same digest).

use anyhow::Context as _;
use patchfarm_engine::image::Platform;
use patchfarm_jobs::{CopyJob, Job};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Image to copy: HOST[:PORT]/REPO[:TAG|@DIGEST], oci:DIR[:TAG], or NAME[:TAG] (the local
    /// Docker engine's image, else Docker Hub's).
    from: String,
    /// Destination: HOST[:PORT]/REPO[:TAG] or oci:DIR[:TAG].
    to: String,
    /// Platform to take from a multi-platform source.
    #[arg(long, default_value = "linux/amd64")]
    platform: String,
}

impl Args {
    /// The typed job these arguments describe.
    pub fn job(&self) -> anyhow::Result<Job> {
        Ok(Job::Copy(CopyJob {
            from: patchfarm_engine::image::ImageRef::parse_source(&self.from)
                .context("source image")?,
            to: self.to.parse().context("destination image")?,
            platform: self.platform.parse::<Platform>().context("--platform")?,
        }))
    }
}
