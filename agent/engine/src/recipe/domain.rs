//! Domain-in-Image: WDT run inside the image as a build step, as WIT's Dockerfile runs it —
//! `createDomain.sh`, `updateDomain.sh` or `deployApps.sh` from `<wdt_home>/weblogic-deploy/bin`
//! as the Oracle Home's owner with WIT's arguments — and only what it wrote under the domain home
//! kept, as one layer. WDT itself and the models sit in a layer the image never gets (WIT copies
//! only the domain out of its WDT stage). A model's passphrase reaches WDT on its stdin from a
//! file mounted for that step alone: never in a layer, the config, a log or a job record.

use super::build::{self, BuildDir};
use super::create::WdtRequest;
use super::steps::BuildCommands;
use super::{Engine, RecipeError, Target};
use crate::cache::CachedItem;
use crate::image::ImageConfig;
use crate::layer::{LayerBlob, LayerSpec, Owner};
use crate::transport::push::OutBlob;
use crate::transport::{PushedImage, ResolvedImage};
use patchfarm_executor::{Input, Step};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where the passphrase file is mounted, read-only, for WDT's step only.
const SECRET_DIR: &str = "/tmp/patchfarm-wdt-secret";

/// WIT's `--wdtOperation`: which WDT script runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum WdtOperation {
    #[default]
    Create,
    Update,
    Deploy,
}

impl WdtOperation {
    /// WIT's names, any case.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.to_ascii_uppercase().as_str() {
            "CREATE" => Ok(WdtOperation::Create),
            "UPDATE" => Ok(WdtOperation::Update),
            "DEPLOY" => Ok(WdtOperation::Deploy),
            _ => Err(format!(
                "{text:?} is not a WDT operation: CREATE, UPDATE or DEPLOY"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WdtOperation::Create => "CREATE",
            WdtOperation::Update => "UPDATE",
            WdtOperation::Deploy => "DEPLOY",
        }
    }

    pub fn script(self) -> &'static str {
        match self {
            WdtOperation::Create => "createDomain.sh",
            WdtOperation::Update => "updateDomain.sh",
            WdtOperation::Deploy => "deployApps.sh",
        }
    }
}

/// The passphrase WDT decrypts a model with. Not serializable; its Debug form says nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Passphrase(String);

impl Passphrase {
    pub fn new(text: String) -> Self {
        Passphrase(text)
    }
}

impl std::fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// WIT's options for a domain WDT builds in the image (absent with `--wdtModelOnly`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DomainBuild {
    pub operation: WdtOperation,
    /// `--wdtDomainHome` (WIT's default `/u01/domains/base_domain`).
    pub domain_home: String,
    /// `--wdtDomainType`, given to WDT as it is (WDT says which it knows).
    pub domain_type: String,
    /// `--wdtJavaOptions`, WDT's `WLSDEPLOY_PROPERTIES`.
    pub java_options: Option<String>,
    /// `--wdtRunRCU`.
    pub run_rcu: bool,
    /// `--wdtEncryptionKey*`: WDT runs with `-use_encryption`.
    pub passphrase: Option<Passphrase>,
}

impl DomainBuild {
    /// Refuses what WDT could not do with this operation (WIT's IMG-0055), or a relative home.
    pub fn check(&self) -> Result<(), RecipeError> {
        if !self.domain_home.starts_with('/') || self.domain_home.trim_end_matches('/').is_empty() {
            return Err(RecipeError::input(
                format!("--wdtDomainHome {}", self.domain_home),
                "the domain home must be an absolute path below /",
            ));
        }
        if self.run_rcu && self.operation != WdtOperation::Create {
            return Err(RecipeError::input(
                "--wdtRunRCU",
                format!(
                    "RCU runs when a domain is created, and --wdtOperation {} changes an existing one",
                    self.operation.name()
                ),
            ));
        }
        Ok(())
    }

    fn home(&self) -> &str {
        self.domain_home.trim_end_matches('/')
    }

    /// WDT's command line after the script, in WIT's order.
    fn arguments(&self, wdt: &WdtRequest, oracle_home: &str) -> Vec<String> {
        let mut args = vec![
            "-oracle_home".to_string(),
            oracle_home.to_string(),
            "-domain_home".into(),
            self.home().to_string(),
            "-domain_type".into(),
            self.domain_type.clone(),
        ];
        if self.passphrase.is_some() {
            args.push("-use_encryption".into());
        }
        if self.run_rcu {
            args.push("-run_rcu".into());
        }
        for (flag, files) in [
            ("-variable_file", &wdt.variables),
            ("-model_file", &wdt.models),
            ("-archive_file", &wdt.archives),
        ] {
            if files.is_empty() {
                continue;
            }
            let placed: Vec<String> = files
                .iter()
                .map(|f| {
                    let name = f.file_name().expect("checked file").to_string_lossy();
                    format!("{}/{name}", wdt.model_home())
                })
                .collect();
            args.push(flag.into());
            args.push(placed.join(","));
        }
        args
    }
}

/// What a WDT run needs from the build around it.
pub struct WdtRun<'a> {
    pub wdt: &'a WdtRequest,
    pub domain: &'a DomainBuild,
    pub installer: &'a CachedItem,
    pub owner: Owner,
    pub target: Target,
    pub network: bool,
}

impl WdtRun<'_> {
    /// `image` (built on `base`) with WDT's domain layer on top, then `commands`'
    /// `[final-build-commands]`. The provenance labels keep naming the image below the domain
    /// — or, for a domain image changed again (`update`), the base `inherited` names — so
    /// `rebase` moves the domain's layers alone.
    pub async fn on_top(
        &self,
        engine: &Engine,
        dir: &BuildDir,
        base: &ResolvedImage,
        image: PushedImage,
        commands: Option<&BuildCommands>,
        inherited: Option<&ImageConfig>,
    ) -> Result<PushedImage, RecipeError> {
        let mut config = ImageConfig::parse(&image.config_bytes, "built config")
            .expect("a config this build wrote parses");
        let (blob, by) = self
            .domain_layer(engine, dir, &image.layers, &config)
            .await?;
        if let Some(labels) = inherited.and_then(build::provenance_below) {
            for (key, value) in labels {
                config.set_label(key, &value);
            }
        }
        config.append_layer(&blob.diff_id, &engine.created(), &by, "patchfarm");
        let mut layers = image.layers;
        layers.push(build::local_blob(&blob));
        let (name, digest) = (base.reference.to_string(), base.manifest_digest.to_string());
        let mut built =
            build::image_value_keeping_provenance(engine, layers, config, &name, &digest);
        if let Some(commands) = commands.filter(|c| !c.final_commands.is_empty()) {
            let (layers, config) =
                super::steps::final_layer(engine, dir, built, commands, self.network).await?;
            built = build::image_value_keeping_provenance(engine, layers, config, &name, &digest);
        }
        Ok(built)
    }

    /// Runs WDT on the image made of `layers` (its config `config`) and returns the layer of
    /// what it wrote under the domain home, with how the image's history names it.
    pub async fn domain_layer(
        &self,
        engine: &Engine,
        dir: &BuildDir,
        layers: &[OutBlob],
        config: &ImageConfig,
    ) -> Result<(LayerBlob, String), RecipeError> {
        let script = self.domain.operation.script();
        let what = format!("WDT {script} for {}", self.domain.home());
        let fail = |e: String| RecipeError::input(what.clone(), e);
        let oracle_home = config
            .env_var("ORACLE_HOME")
            .ok_or_else(|| fail("the image has no ORACLE_HOME for WDT to use".into()))?;
        let image_lowers = dir.trees().lowers(layers).await?;
        let tools = self.tools_layer(&image_lowers)?;
        let tools = dir.write_layer(engine, tools).await?;
        let mut all = layers.to_vec();
        all.push(build::local_blob(&tools));
        let lowers = dir.trees().lowers(&all).await?;

        let mut step = Step::shell("");
        let bin = format!("{}/weblogic-deploy/bin", self.wdt.home());
        // The step starts in `bin` (its cwd, as WIT's `cd`): the WDT home never enters the shell
        // line, whatever characters it holds.
        let mut command = format!("exec ./{script} \"$@\"");
        let secret = tempfile::Builder::new()
            .prefix("wdt-secret")
            .tempdir_in(dir.path())
            .map_err(|e| fail(format!("a directory for the passphrase: {e}")))?;
        if let Some(Passphrase(text)) = &self.domain.passphrase {
            let file = secret.path().join("passphrase");
            write_secret(&file, text, self.owner).map_err(|e| fail(e.to_string()))?;
            command.push_str(&format!(" < {SECRET_DIR}/passphrase"));
            step.inputs.push(Input {
                host: secret.path().to_path_buf(),
                dest: SECRET_DIR.into(),
            });
        }
        step.args = vec!["/bin/sh".into(), "-c".into(), command, "wdt".into()];
        step.args.extend(
            self.domain
                .arguments(self.wdt, oracle_home.trim_end_matches('/')),
        );
        step.env = config
            .env()
            .into_iter()
            .filter(|(k, _)| k != "DOMAIN_HOME" && k != "WLSDEPLOY_PROPERTIES")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let properties = format!(
            "{} -Djava.security.egd=file:/dev/./urandom",
            self.domain.java_options.as_deref().unwrap_or("")
        );
        step.env
            .push(format!("WLSDEPLOY_PROPERTIES={}", properties.trim_start()));
        step.env.push(format!("DOMAIN_HOME={}", self.domain.home()));
        step.cwd = bin;
        (step.uid, step.gid) = (self.owner.uid as u32, self.owner.gid as u32);
        step.network = self.network;

        let mut sandbox = engine
            .sandbox(&lowers, dir.path())
            .map_err(|e| fail(e.to_string()))?;
        let mut print = |l: &str| tracing::info!(target: "patchfarm::step", step = "wdt", "{l}");
        sandbox
            .run(&step, &mut print)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let upper = sandbox.finish().map_err(|e| fail(e.to_string()))?;
        drop(secret);
        // Only the domain leaves WDT's stage, as WIT copies it out: logs, WDT's own files and
        // the mount point stay behind.
        let keep = vec![self.domain.home().trim_start_matches('/').to_string()];
        let read = upper.clone();
        let mut spec = crate::spawn_blocking(move || {
            super::sections::prune(&read, &keep)?;
            Ok::<_, std::io::Error>(crate::layer::capture::capture(&read))
        })
        .await
        .expect("capture task")
        .map_err(|e| fail(format!("keeping the domain: {e}")))??;
        if spec.is_empty() {
            return Err(fail(format!(
                "WDT finished but wrote nothing under {}",
                self.domain.home()
            )));
        }
        self.target
            .apply(&mut spec, &[(self.domain.home(), true)])?;
        let blob = dir.write_layer(engine, spec).await?;
        let by = format!(
            "patchfarm: WDT {script} -domain_type {} on {} ({})",
            self.domain.domain_type,
            self.domain.home(),
            self.installer.entry.key
        );
        Ok((blob, by))
    }

    /// WDT unzipped at its home with the models beside it, and the domain's parent: a layer
    /// WDT runs on but the image never gets. Directories the image has keep its metadata here
    /// (WDT's changes copy them up, and the domain's layer must not change them).
    fn tools_layer(&self, image_lowers: &[PathBuf]) -> Result<LayerSpec, RecipeError> {
        let owner = self.owner;
        let mut spec = LayerSpec::new();
        let parent = Path::new(self.domain.home())
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        let mut dirs: Vec<(String, u32)> = Vec::new();
        for (path, mode) in [
            (self.wdt.home().to_string(), 0o750),
            (self.wdt.model_home(), 0o750),
            (parent, 0o755),
        ] {
            let mut on_the_way = ancestors(&path);
            on_the_way.reverse();
            for (dir, mode) in on_the_way
                .into_iter()
                .map(|a| (a, 0o755))
                .chain([(path, mode)])
            {
                if !dirs.iter().any(|(known, _)| *known == dir) {
                    dirs.push((dir, mode));
                }
            }
        }
        for (path, mode) in dirs {
            match merged_dir(image_lowers, &path) {
                Some((mode, owner)) => spec.add_dir(&path, mode, owner)?,
                None => spec.add_dir(&path, mode, owner)?,
            }
        }
        spec.add_zip(&self.installer.path, self.wdt.home(), owner)?;
        self.wdt.add_files(&mut spec, owner)?;
        Ok(spec)
    }
}

/// `/a/b/c` → `["/a/b", "/a"]` (not `/`).
fn ancestors(path: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = path.trim_end_matches('/');
    while let Some((parent, _)) = current.rsplit_once('/') {
        if parent.is_empty() {
            break;
        }
        out.push(parent.to_string());
        current = parent;
    }
    out
}

/// The directory at `path` as the merged image shows it: the topmost layer tree holding it.
fn merged_dir(lowers: &[PathBuf], path: &str) -> Option<(u32, Owner)> {
    let rel = path.trim_start_matches('/');
    lowers.iter().rev().find_map(|lower| {
        let meta = std::fs::symlink_metadata(lower.join(rel)).ok()?;
        meta.is_dir().then(|| {
            (
                meta.mode() & 0o7777,
                Owner {
                    uid: meta.uid() as u64,
                    gid: meta.gid() as u64,
                },
            )
        })
    })
}

/// The passphrase in a file only the step's user reads; no newline is added that it lacks.
fn write_secret(file: &Path, text: &str, owner: Owner) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(file)?;
    writeln!(out, "{text}")?;
    std::os::unix::fs::chown(file, Some(owner.uid as u32), Some(owner.gid as u32))?;
    if let Some(dir) = file.parent() {
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(operation: WdtOperation) -> DomainBuild {
        DomainBuild {
            operation,
            domain_home: "/u01/domains/payments/".into(),
            domain_type: "JRF".into(),
            java_options: None,
            run_rcu: false,
            passphrase: Some(Passphrase::new("hunter2".into())),
        }
    }

    #[test]
    fn arguments_follow_wits_order_with_lists_joined_by_commas() {
        let wdt = WdtRequest {
            models: vec!["/in/a.yaml".into(), "/in/b.yaml".into()],
            archives: vec!["/in/app.zip".into()],
            variables: vec!["/in/v.properties".into()],
            version: "latest".into(),
            domain: None,
            home: None,
            model_home: Some("/u01/wdt/models/".into()),
        };
        let args = domain(WdtOperation::Create).arguments(&wdt, "/u01/oracle");
        assert_eq!(
            args.join(" "),
            "-oracle_home /u01/oracle -domain_home /u01/domains/payments -domain_type JRF \
             -use_encryption -variable_file /u01/wdt/models/v.properties \
             -model_file /u01/wdt/models/a.yaml,/u01/wdt/models/b.yaml \
             -archive_file /u01/wdt/models/app.zip"
        );
    }

    #[test]
    fn passphrase_is_never_printed_and_rcu_needs_a_new_domain() {
        let mut build = domain(WdtOperation::Deploy);
        assert!(!format!("{build:?}").contains("hunter2"));
        build.run_rcu = true;
        assert!(build
            .check()
            .unwrap_err()
            .to_string()
            .contains("--wdtRunRCU"));
        build.operation = WdtOperation::Create;
        build.check().unwrap();
        build.domain_home = "domains/x".into();
        assert!(build.check().is_err());
        assert_eq!(
            WdtOperation::parse("deploy").unwrap().script(),
            "deployApps.sh"
        );
        assert!(WdtOperation::parse("destroy").is_err());
    }

    #[test]
    fn ancestors_stop_below_the_root() {
        assert_eq!(ancestors("/u01/wdt/models"), ["/u01/wdt", "/u01"]);
        assert!(ancestors("/u01").is_empty());
    }
}
