//! WIT options patchfarm cannot honour yet: each is accepted by name, so a WIT command line
//! parses, and refused before anything is read or built with what it needs and what to do
//! instead — never silently ignored.

use anyhow::bail;
use patchfarm_engine::recipe::packages::PackageManager;
use patchfarm_engine::recipe::patching::PatchRequest;

/// Options that run programs during the build (WIT's RUN steps) or reach the network for them.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct StepArgs {
    /// WIT: a file of sections of Dockerfile directives (RUN, COPY, ENV, LABEL, USER, WORKDIR,
    /// EXPOSE), run through the executor (runc): `create` runs every WIT section, `update` and
    /// `rebase` [final-build-commands], `createAuxImage` [initial-build-commands] and
    /// [final-build-commands]; each refuses, by file and line, a section it does not run.
    #[arg(long = "additionalBuildCommands", value_name = "FILE")]
    additional_build_commands: Option<String>,
    /// WIT's build-context files for --additionalBuildCommands: what its COPY directives read
    /// (as files/NAME).
    #[arg(
        long = "additionalBuildFiles",
        alias = "additional-build-files",
        value_delimiter = ','
    )]
    additional_build_files: Vec<std::path::PathBuf>,
    /// WIT: the package manager that installs the OS packages the installers need (NONE, YUM,
    /// DNF, MICRODNF, MICRODNF_8, APTGET, APK, ZYPPER), on `create`, through the executor.
    /// OS_DEFAULT (WIT's default) installs none here: it would need the network unasked.
    #[arg(long = "packageManager", value_name = "MANAGER")]
    package_manager: Option<String>,
    /// WIT: proxy for HTTP: used to reach Oracle's patch service when its URL is plain HTTP.
    #[arg(long = "httpProxyUrl", value_name = "URL")]
    http_proxy_url: Option<String>,
    /// WIT: proxy for HTTPS: used to reach Oracle's patch service (with --user).
    #[arg(long = "httpsProxyUrl", value_name = "URL")]
    https_proxy_url: Option<String>,
}

impl StepArgs {
    /// `--additionalBuildCommands` read, with the `--additionalBuildFiles` its COPY takes from,
    /// for the verbs that run it.
    pub fn build_commands(
        &self,
    ) -> anyhow::Result<Option<patchfarm_engine::recipe::steps::BuildCommands>> {
        match &self.additional_build_commands {
            Some(file) => Ok(Some(patchfarm_engine::recipe::steps::parse(
                std::path::Path::new(file),
                self.additional_build_files.clone(),
            )?)),
            None if !self.additional_build_files.is_empty() => bail!("--additionalBuildFiles: in WIT these files are what --additionalBuildCommands' COPY reads; give that file too (or place files with --addFile FILE[:/IMAGE/PATH])"),
            None => Ok(None),
        }
    }

    /// `--packageManager`, as WIT spells it (any case).
    pub fn package_manager(&self) -> anyhow::Result<PackageManager> {
        match &self.package_manager {
            None => Ok(PackageManager::OsDefault),
            Some(given) => given
                .parse()
                .map_err(|e: String| anyhow::anyhow!("--packageManager {e}")),
        }
    }

    /// `installs_packages`: the verb installs OS packages (`create`); the others refuse a
    /// package manager that would.
    pub fn check(&self, installs_packages: bool) -> anyhow::Result<()> {
        let manager = self.package_manager()?;
        if !installs_packages
            && !matches!(manager, PackageManager::None | PackageManager::OsDefault)
        {
            bail!("--packageManager {manager}: this verb does not install OS packages (create does, on the base image); give a base image that has them and --packageManager NONE (or leave it out)");
        }
        for (flag, url) in [
            ("--httpProxyUrl", &self.http_proxy_url),
            ("--httpsProxyUrl", &self.https_proxy_url),
        ] {
            if url.is_some() {
                eprintln!("note: {flag}: used to reach Oracle's patch service (with --user); registries are reached directly and no build step runs");
            }
        }
        Ok(())
    }

    /// `--httpProxyUrl` and `--httpsProxyUrl`.
    pub fn proxies(&self) -> (Option<&str>, Option<&str>) {
        (
            self.http_proxy_url.as_deref(),
            self.https_proxy_url.as_deref(),
        )
    }
}

/// OPatch's own options.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OpatchArgs {
    /// WIT: the OPatch patch that upgrades OPatch before OPatch applies patches, BUG or
    /// BUG_VERSION (default: 28186730, or 38256237 from 14.1.2.25; the newest version cached).
    #[arg(long = "opatchBugNumber", value_name = "BUG")]
    opatch_bug_number: Option<String>,
    /// WIT: do not upgrade OPatch.
    #[arg(long = "skipOpatchUpdate")]
    skip_opatch_update: bool,
    /// WIT: apply patches one at a time, in order (`opatch apply` per patch when OPatch applies
    /// them; natively they always go one at a time, bases before their overlays).
    #[arg(long = "strictPatchOrdering")]
    strict_patch_ordering: bool,
    /// Who applies the patches: auto (natively when every action is <copy> or <jar>, else the
    /// image's own OPatch, as WIT runs it), native (refuse any other action), or opatch.
    #[arg(long = "opatchMode", value_name = "MODE", default_value = "auto")]
    opatch_mode: patchfarm_engine::opatch::OpatchMode,
}

impl OpatchArgs {
    pub fn check(&self) -> anyhow::Result<()> {
        if let (Some(bug), true) = (&self.opatch_bug_number, self.skip_opatch_update) {
            bail!("--opatchBugNumber {bug} with --skipOpatchUpdate: one upgrades OPatch, the other says not to; give one");
        }
        Ok(())
    }

    /// `request` with who applies the patches, and in what order.
    pub fn applied(&self, request: PatchRequest) -> PatchRequest {
        PatchRequest {
            mode: self.opatch_mode,
            strict_order: self.strict_patch_ordering,
            opatch_bug: self.opatch_bug_number.clone(),
            skip_opatch_update: self.skip_opatch_update,
            ..request
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    /// The error a WIT command line gets: it must parse, then be refused naming `flag`.
    fn refusal(line: &str) -> String {
        let args = std::iter::once("patchfarm").chain(line.split_whitespace());
        let cli = crate::Cli::try_parse_from(args)
            .unwrap_or_else(|e| panic!("{line}: must parse as WIT's does: {e}"));
        let job = match &cli.command {
            crate::Command::Create(a) => a.job(),
            crate::Command::Update(a) => a.job(),
            crate::Command::CreateAuxImage(a) => a.job(),
            crate::Command::Rebase(a) => a.job(),
            _ => unreachable!("only building verbs here"),
        };
        format!("{:#}", job.expect_err(line))
    }

    #[test]
    fn wit_options_that_need_what_is_missing_are_refused_by_name() {
        let create = "create --tag r.example:5000/wls:1 --fromImage r.example:5000/os:9";
        let update = "update --tag r.example:5000/wls:2 --fromImage r.example:5000/wls:1";
        let aux = "createAuxImage --tag r.example:5000/aux:1 --fromImage r.example:5000/os:9";
        let cases = [
            (
                format!("{aux} --packageManager APK"),
                "--packageManager APK",
            ),
            (
                format!("{update} --packageManager YUM"),
                "--packageManager YUM",
            ),
            (
                format!("{create} --packageManager BREW"),
                "--packageManager \"BREW\"",
            ),
            (
                format!("{create} --opatchBugNumber 28186730 --skipOpatchUpdate"),
                "--opatchBugNumber 28186730 with --skipOpatchUpdate",
            ),
        ];
        for (line, flag) in &cases {
            let error = refusal(line);
            assert!(error.starts_with(flag), "{line}: {error}");
            assert!(
                error.contains("not") && error.len() > 80,
                "{line}: say why: {error}"
            );
        }
        // What patchfarm does anyway is accepted.
        for ok in [
            format!("{create} --packageManager none --strictPatchOrdering"),
            format!("{update} --strictPatchOrdering --httpsProxyUrl http://proxy:80"),
            format!("{create} --opatchBugNumber 28186730_13.9.4.2.17 --opatchMode opatch"),
            format!("{update} --skipOpatchUpdate"),
            format!("{create} --packageManager aptget"),
            format!(
                "{create} --user a@example.com --passwordEnv PW --latestPSU --recommendedPatches"
            ),
        ] {
            let args = std::iter::once("patchfarm").chain(ok.split_whitespace());
            let cli = crate::Cli::try_parse_from(args).unwrap();
            let job = match &cli.command {
                crate::Command::Create(a) => a.job(),
                crate::Command::Update(a) => a.job(),
                _ => unreachable!(),
            };
            assert!(job.is_ok(), "{ok}: {job:?}");
        }
    }
}
