//! WIT's WDT options for `create` and `update`: the model files, and — without `--wdtModelOnly`
//! — the domain WDT builds in the image (Domain in Image), with its passphrase taken as WIT
//! takes it and `--resourceTemplates` filled in once the image is built.

use anyhow::{bail, Context as _};
use patchfarm_engine::recipe::create::{WdtRequest, DOMAIN_HOME};
use patchfarm_engine::recipe::domain::{DomainBuild, Passphrase, WdtOperation};
use std::path::PathBuf;

/// A secret given on the command line: its Debug form says nothing.
#[derive(Clone)]
pub struct SecretArg(String);

impl std::fmt::Debug for SecretArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

fn secret_arg(text: &str) -> Result<SecretArg, String> {
    Ok(SecretArg(text.to_string()))
}

/// WDT flags shared by `create` and `update`.
#[derive(clap::Args, Debug, Clone)]
pub struct WdtArgs {
    /// WDT model files (YAML): WDT builds the domain from them, or with --wdtModelOnly they are
    /// placed under /u01/wdt/models.
    #[arg(long = "wdtModel", alias = "wdt-model", value_delimiter = ',')]
    pub wdt_model: Vec<PathBuf>,
    /// WDT archive files (zip), given to WDT (or placed beside the models).
    #[arg(long = "wdtArchive", alias = "wdt-archive", value_delimiter = ',')]
    pub wdt_archive: Vec<PathBuf>,
    /// WDT variable files (properties), given to WDT (or placed beside the models).
    #[arg(long = "wdtVariables", alias = "wdt-variables", value_delimiter = ',')]
    pub wdt_variables: Vec<PathBuf>,
    /// Where WDT is installed in the image.
    #[arg(long = "wdtHome", default_value = "/u01/wdt", value_name = "DIR")]
    pub wdt_home: String,
    /// Where the models, archives and variables go (default: <wdtHome>/models).
    #[arg(long = "wdtModelHome", value_name = "DIR")]
    pub wdt_model_home: Option<String>,
    /// WDT to install from cache key wdt_VERSION, or `none` (model only).
    #[arg(long = "wdtVersion", alias = "wdt-version", default_value = "latest")]
    pub wdt_version: String,
    /// Place the model files only (Model in Image); without it WDT builds the domain in the
    /// image (Domain in Image) and only the domain stays.
    #[arg(long = "wdtModelOnly", alias = "wdt-model-only")]
    pub wdt_model_only: bool,
    /// Which WDT script builds the domain: CREATE (createDomain.sh, create's default), UPDATE
    /// (updateDomain.sh, update's default) or DEPLOY (deployApps.sh).
    #[arg(long = "wdtOperation", alias = "wdt-operation", value_parser = WdtOperation::parse)]
    pub wdt_operation: Option<WdtOperation>,
    /// The domain's home in the image (WDT's -domain_home).
    #[arg(long = "wdtDomainHome", default_value = DOMAIN_HOME)]
    pub wdt_domain_home: String,
    /// WDT's -domain_type: WLS, JRF or RestrictedJRF.
    #[arg(long = "wdtDomainType", default_value = "WLS")]
    pub wdt_domain_type: String,
    /// Java options for WDT (its WLSDEPLOY_PROPERTIES).
    #[arg(long = "wdtJavaOptions", allow_hyphen_values = true)]
    pub wdt_java_options: Option<String>,
    /// Strict validation for WDT's validateModel, which WIT runs with --wdtModelOnly only.
    #[arg(long = "wdtStrictValidation")]
    pub wdt_strict_validation: bool,
    /// WDT runs RCU while it creates the domain (-run_rcu).
    #[arg(long = "wdtRunRCU")]
    pub wdt_run_rcu: bool,
    /// The passphrase that decrypts the model (WDT's -use_encryption); with no value it is
    /// read from standard input.
    #[arg(long = "wdtEncryptionKey", num_args = 0..=1, default_missing_value = "", value_parser = secret_arg, value_name = "PASSPHRASE")]
    pub wdt_encryption_key: Option<SecretArg>,
    /// Environment variable holding the model's passphrase.
    #[arg(long = "wdtEncryptionKeyEnv", value_name = "NAME")]
    pub wdt_encryption_key_env: Option<String>,
    /// File whose first line is the model's passphrase.
    #[arg(long = "wdtEncryptionKeyFile", value_name = "FILE")]
    pub wdt_encryption_key_file: Option<PathBuf>,
    /// Files whose {{{domainHome}}}, {{{imageName}}}, {{{modelHome}}} and
    /// {{{domainHomeSourceType}}} are filled in once the image is built (WIT's resource
    /// templates).
    #[arg(long = "resourceTemplates", value_delimiter = ',', value_name = "FILE")]
    pub resource_templates: Vec<PathBuf>,
}

impl WdtArgs {
    fn files_given(&self) -> bool {
        !self.wdt_model.is_empty() || !self.wdt_archive.is_empty() || !self.wdt_variables.is_empty()
    }

    /// What to do with WDT; `default_operation` is the verb's (create: CREATE, update: UPDATE).
    pub fn request(&self, default_operation: WdtOperation) -> anyhow::Result<WdtRequest> {
        let passphrase = self.passphrase()?;
        let domain = if self.wdt_model_only || !self.files_given() {
            for (given, option) in [
                (passphrase.is_some(), "--wdtEncryptionKey"),
                (self.wdt_run_rcu, "--wdtRunRCU"),
                (self.wdt_operation.is_some(), "--wdtOperation"),
            ] {
                if given {
                    eprintln!("note: {option} is for WDT building a domain in the image, and {}: it changes nothing here (as in WIT)", if self.wdt_model_only { "--wdtModelOnly builds none" } else { "no --wdtModel, --wdtArchive or --wdtVariables is given" });
                }
            }
            None
        } else {
            Some(DomainBuild {
                operation: self.wdt_operation.unwrap_or(default_operation),
                domain_home: self.wdt_domain_home.clone(),
                domain_type: self.wdt_domain_type.clone(),
                java_options: self.wdt_java_options.clone(),
                run_rcu: self.wdt_run_rcu,
                passphrase,
            })
        };
        if self.wdt_strict_validation && domain.is_some() {
            eprintln!("note: --wdtStrictValidation applies to WDT's validateModel with --wdtModelOnly (as in WIT); WDT builds the domain here");
        }
        Ok(WdtRequest {
            models: self.wdt_model.clone(),
            archives: self.wdt_archive.clone(),
            variables: self.wdt_variables.clone(),
            version: self.wdt_version.clone(),
            domain,
            home: Some(self.wdt_home.clone()),
            model_home: self.wdt_model_home.clone(),
        })
    }

    /// The model's passphrase, taken in WIT's order: the key, its file, its variable.
    fn passphrase(&self) -> anyhow::Result<Option<Passphrase>> {
        let given = super::aru::SecretOptions {
            value: self
                .wdt_encryption_key
                .as_ref()
                .map(|SecretArg(v)| v.as_str()),
            file: self.wdt_encryption_key_file.as_deref(),
            env: self.wdt_encryption_key_env.as_deref(),
            names: [
                "--wdtEncryptionKey",
                "--wdtEncryptionKeyFile",
                "--wdtEncryptionKeyEnv",
            ],
            prompt: "WDT model passphrase: ",
        };
        let Some(text) = given.read()? else {
            return Ok(None);
        };
        if text.is_empty() {
            bail!("--wdtEncryptionKey: the passphrase is empty");
        }
        Ok(Some(Passphrase::new(text)))
    }

    /// Fills in `--resourceTemplates` for the image pushed as `image`, each file rewritten
    /// whole (a new file renamed over it), as WIT does after its build.
    pub fn resolve_templates(&self, image: &str) -> anyhow::Result<()> {
        let source_type = if self.wdt_model_only {
            "FromModel"
        } else if self.files_given() {
            "Image"
        } else {
            "PersistentVolume"
        };
        let model_home = self
            .wdt_model_home
            .clone()
            .unwrap_or_else(|| format!("{}/models", self.wdt_home.trim_end_matches('/')));
        let values = [
            ("domainHome", self.wdt_domain_home.as_str()),
            ("imageName", image),
            ("modelHome", model_home.as_str()),
            ("domainHomeSourceType", source_type),
        ];
        for file in &self.resource_templates {
            let what = || format!("--resourceTemplates {}", file.display());
            let mut text = std::fs::read_to_string(file).with_context(what)?;
            for (name, value) in values {
                text = text
                    .replace(&format!("{{{{{{{name}}}}}}}"), value)
                    .replace(&format!("{{{{{name}}}}}"), value);
            }
            let name = file.file_name().with_context(what)?.to_string_lossy();
            let temporary = file.with_file_name(format!(".{name}.patchfarm"));
            std::fs::write(&temporary, text).with_context(what)?;
            std::fs::File::open(&temporary)
                .and_then(|f| f.sync_all())
                .with_context(what)?;
            std::fs::rename(&temporary, file).with_context(what)?;
        }
        Ok(())
    }

    /// Resource templates are files on this machine: checked before anything is built.
    pub fn check_templates(&self) -> anyhow::Result<()> {
        for file in &self.resource_templates {
            let meta = std::fs::metadata(file)
                .with_context(|| format!("--resourceTemplates {}", file.display()))?;
            if !meta.is_file() || meta.permissions().readonly() {
                bail!(
                    "--resourceTemplates {}: not a writable file (WIT's IMG-0073)",
                    file.display()
                );
            }
        }
        Ok(())
    }
}
