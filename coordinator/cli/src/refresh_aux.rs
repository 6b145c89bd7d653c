//! `patchfarm refreshAuxImage`: an auxiliary image moved to another WDT release, its models,
//! variables and archives kept byte for byte (what a campaign's `wdtVersion:` runs per image).

use anyhow::Context as _;
use patchfarm_engine::image::{ImageRef, Platform};
use patchfarm_engine::recipe::aux_refresh::AuxRefreshRequest;
use patchfarm_jobs::Job;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The auxiliary image in use today (WIT's or patchfarm's).
    #[arg(long = "fromImage", alias = "from-image", value_name = "IMAGE")]
    from_image: String,
    /// Where the refreshed image goes: HOST[:PORT]/REPO:TAG or oci:DIR[:TAG].
    #[arg(long, short = 't', value_name = "IMAGE")]
    tag: String,
    /// The WDT release to move to (cached as wdt_<version>: `cache addInstaller --type wdt`).
    #[arg(long = "wdtVersion", alias = "wdt-version", value_name = "VERSION")]
    wdt_version: String,
    /// Platform to take from a multi-platform source.
    #[arg(long, default_value = patchfarm_jobs::defaults::PLATFORM)]
    platform: String,
}

impl Args {
    /// The typed job these arguments describe.
    pub fn job(&self) -> anyhow::Result<Job> {
        Ok(Job::RefreshAuxImage(AuxRefreshRequest {
            source: ImageRef::parse_source(&self.from_image).context("--fromImage")?,
            tag: self.tag.parse().context("--tag")?,
            wdt_version: self.wdt_version.clone(),
            platform: self.platform.parse::<Platform>().context("--platform")?,
        }))
    }
}
