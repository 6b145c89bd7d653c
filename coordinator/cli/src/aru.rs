//! WIT's Oracle Support options (`--user` with `--password`, `--passwordEnv` or `--passwordFile`):
//! `--latestPSU`, `--recommendedPatches` and `--patches` are resolved against Oracle's patch
//! service here, on the user's machine, before the job runs or is submitted. The zips land in
//! the cache (verified against ARU's SHA-256) and the job names them by cache key, so neither a
//! farm job, a log nor an image ever holds the password.

use anyhow::{bail, Context as _};
use patchfarm_engine::aru::{self, AruClient, Credentials, Wanted};
use patchfarm_engine::cache::CacheKey;
use patchfarm_engine::image::Platform;
use patchfarm_engine::recipe::create::CreateRequest;
use patchfarm_engine::recipe::patching::PatchRequest;
use patchfarm_engine::recipe::Engine;
use patchfarm_jobs::{Job, RebaseTarget};

/// The account flags, as WIT spells them.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct AccountArgs {
    /// Oracle Support user (email) for downloading patches from Oracle's patch service (ARU).
    #[arg(long, value_name = "EMAIL")]
    user: Option<String>,
    /// The Oracle Support password; with no value it is read from standard input.
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "PASSWORD")]
    password: Option<String>,
    /// Environment variable holding the Oracle Support password.
    #[arg(long = "passwordEnv", value_name = "NAME")]
    password_env: Option<String>,
    /// File whose first line is the Oracle Support password.
    #[arg(long = "passwordFile", value_name = "FILE")]
    password_file: Option<std::path::PathBuf>,
}

/// What to ask Oracle's patch service for.
#[derive(Debug)]
pub struct Online {
    credentials: Credentials,
    recommended: bool,
    latest_psu: bool,
    ids: Vec<String>,
    https_proxy: Option<String>,
    http_proxy: Option<String>,
}

impl AccountArgs {
    pub fn given(&self) -> bool {
        self.user.is_some()
            || self.password.is_some()
            || self.password_env.is_some()
            || self.password_file.is_some()
    }

    /// The account, password taken in WIT's order: `--password`, `--passwordFile`, `--passwordEnv`.
    fn credentials(&self) -> anyhow::Result<Credentials> {
        let Some(user) = self.user.clone().filter(|u| !u.is_empty()) else {
            bail!("--password/--passwordEnv/--passwordFile: give the Oracle Support account with --user EMAIL");
        };
        let given = SecretOptions {
            value: self.password.as_deref(),
            file: self.password_file.as_deref(),
            env: self.password_env.as_deref(),
            names: ["--password", "--passwordFile", "--passwordEnv"],
            prompt: "Oracle Support password: ",
        };
        let Some(password) = given.read()? else {
            bail!("--user {user}: give the password with --password, --passwordEnv NAME or --passwordFile FILE");
        };
        if password.is_empty() {
            bail!("--user {user}: the password is empty");
        }
        Ok(Credentials::new(user, password))
    }

    /// What to resolve online, or `None` without an account.
    pub fn online(
        &self,
        recommended: bool,
        latest_psu: bool,
        ids: &[String],
        proxies: (Option<&str>, Option<&str>),
    ) -> anyhow::Result<Option<Online>> {
        if !self.given() {
            return Ok(None);
        }
        Ok(Some(Online {
            credentials: self.credentials()?,
            recommended,
            latest_psu: latest_psu && !recommended,
            ids: ids.to_vec(),
            http_proxy: proxies.0.map(str::to_owned),
            https_proxy: proxies.1.map(str::to_owned),
        }))
    }
}

/// A secret as WIT takes one: the option's value (none: read from standard input), else the
/// first line of its file, else its environment variable.
pub(crate) struct SecretOptions<'a> {
    pub value: Option<&'a str>,
    pub file: Option<&'a std::path::Path>,
    pub env: Option<&'a str>,
    /// The three options' names, in that order.
    pub names: [&'a str; 3],
    pub prompt: &'a str,
}

impl SecretOptions<'_> {
    /// The secret, or `None` when no option gave one.
    pub fn read(&self) -> anyhow::Result<Option<String>> {
        let [value_option, file_option, env_option] = self.names;
        Ok(Some(match (self.value, self.file, self.env) {
            (Some(v), _, _) if !v.is_empty() => v.to_owned(),
            (Some(_), _, _) => read_secret_from_stdin(self.prompt, value_option)?,
            (None, Some(file), _) => std::fs::read_to_string(file)
                .with_context(|| format!("{file_option} {}", file.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
            (None, None, Some(name)) => std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .with_context(|| {
                    format!("{env_option} {name}: that environment variable is not set")
                })?,
            (None, None, None) => return Ok(None),
        }))
    }
}

/// A secret typed on a terminal is not echoed; piped in, it is the first line. `option` names
/// the flag that asked for it in errors.
fn read_secret_from_stdin(prompt: &str, option: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    let stdin = std::io::stdin();
    let terminal = stdin.is_terminal();
    if terminal {
        eprint!("{prompt}");
    }
    let _quiet = terminal.then(EchoOff::new).flatten();
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .with_context(|| format!("{option}: reading it from standard input"))?;
    if terminal {
        eprintln!();
    }
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

/// Terminal echo off while it lives.
struct EchoOff(libc::termios);

impl EchoOff {
    fn new() -> Option<Self> {
        // SAFETY: termios is plain data; tcgetattr fills it for fd 0 or fails.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return None;
            }
            let mut quiet = saved;
            quiet.c_lflag &= !libc::ECHO;
            (libc::tcsetattr(0, libc::TCSANOW, &quiet) == 0).then_some(EchoOff(saved))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `new`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.0);
        }
    }
}

/// Resolves `online` for `job` and rewrites its patch request to the cache keys it downloaded;
/// returns those keys (a farm submission uploads them).
pub async fn prepare(
    job: &mut Job,
    online: &Online,
    engine: &Engine,
) -> anyhow::Result<Vec<CacheKey>> {
    let base = aru::service_url()?;
    let proxy = match base.scheme() {
        "https" => online.https_proxy.as_deref(),
        _ => online.http_proxy.as_deref(),
    };
    let client = AruClient::new(base, online.credentials.clone(), proxy)?;
    client.check_credentials().await?;
    let (request, wanted_for): (&mut PatchRequest, Vec<Wanted>) = match job {
        Job::Create(create) => {
            let wanted = create_wanted(create, online);
            (&mut create.patches, wanted)
        }
        Job::Rebase(rebase) => match &mut rebase.target {
            RebaseTarget::Build(create) => {
                let wanted = create_wanted(create, online);
                (&mut create.patches, wanted)
            }
            RebaseTarget::Image(_) => {
                bail!("--user: a rebase onto an existing --targetImage applies no patches")
            }
        },
        Job::Update(update) => {
            let inspected = patchfarm_engine::recipe::inspect::inspect(
                engine,
                &update.from_image,
                &update.platform,
                true,
            )
            .await
            .context("--fromImage: reading the image's Oracle Home to ask for its patches")?;
            let version = inspected
                .wls_version
                .clone()
                .context("--fromImage: the image has no Oracle Home whose version could be read")?;
            let products = inspected
                .oracle_installed_products
                .clone()
                .unwrap_or_default();
            let wanted = Wanted {
                kind: update.kind.clone().unwrap_or_else(|| {
                    if products.contains("INFRA") {
                        "fmw"
                    } else {
                        "wls"
                    }
                    .into()
                }),
                version,
                architecture: update.platform.architecture.clone(),
                recommended: online.recommended,
                latest_psu: online.latest_psu,
                ids: online.ids.clone(),
                installed_psu: inspected
                    .oracle_patches
                    .iter()
                    .flatten()
                    .find_map(|p| installed_psu(&p.description)),
                installed_upis: inspected
                    .oracle_patches
                    .iter()
                    .flatten()
                    .filter_map(|p| p.unique_patch_id.clone())
                    .collect(),
            };
            (&mut update.patches, vec![wanted])
        }
        other => bail!("--user: {} takes no patches", other.verb()),
    };
    let work = tempfile::Builder::new()
        .prefix(".aru-")
        .tempdir_in(prepare_dir(engine)?)
        .context("a work directory for patch downloads")?;
    let mut keys: Vec<CacheKey> = Vec::new();
    for wanted in &wanted_for {
        let resolution = aru::resolve(&client, wanted).await?;
        for note in &resolution.notes {
            eprintln!("{note}");
        }
        for key in aru::fetch_into_cache(
            &client,
            &engine.cache,
            &resolution.patches,
            &wanted.architecture,
            work.path(),
        )
        .await?
        {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    *request = PatchRequest {
        ids: keys.iter().map(ToString::to_string).collect(),
        catalog: None,
        ..request.clone()
    };
    if let Some(wanted) = wanted_for.first() {
        if let Some(key) = opatch_online(&client, request, wanted, engine, work.path()).await? {
            keys.push(key);
        }
    }
    Ok(keys)
}

/// WIT resolves the OPatch patch online too: when the job upgrades OPatch as asked
/// (`--opatchBugNumber`, or `--opatchMode opatch`), the version given, else the newest one the
/// service has, is fetched into the cache like the patches and pinned in the request.
async fn opatch_online(
    client: &AruClient,
    request: &mut PatchRequest,
    wanted: &Wanted,
    engine: &Engine,
    work: &std::path::Path,
) -> anyhow::Result<Option<CacheKey>> {
    let asked = request.opatch_bug.is_some()
        || request.mode == patchfarm_engine::opatch::OpatchMode::Opatch;
    if request.skip_opatch_update || !asked {
        return Ok(None);
    }
    let given = request.opatch_bug.clone();
    let (bug, version) = match given.as_deref().map(|b| b.split_once('_')) {
        Some(Some((bug, version))) => (bug.to_string(), Some(version.to_string())),
        Some(None) => (given.clone().unwrap_or_default(), None),
        None => (
            patchfarm_engine::recipe::patching::default_opatch_bug(&wanted.version).to_string(),
            None,
        ),
    };
    let chosen = aru::resolve_opatch(client, &bug, version.as_deref())
        .await
        .with_context(|| {
            format!("--opatchBugNumber {bug}: asking Oracle's patch service for OPatch")
        })?;
    eprintln!("OPatch: {bug}_{} ({})", chosen.version, chosen.description);
    let keys = aru::fetch_into_cache(
        client,
        &engine.cache,
        std::slice::from_ref(&chosen),
        &wanted.architecture,
        work,
    )
    .await?;
    request.opatch_bug = Some(format!("{bug}_{}", chosen.version));
    Ok(keys.into_iter().next())
}

fn prepare_dir(engine: &Engine) -> anyhow::Result<std::path::PathBuf> {
    let dir = engine.cache.root().to_path_buf();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// One query per architecture built (a generic patch is shared by all).
fn create_wanted(create: &CreateRequest, online: &Online) -> Vec<Wanted> {
    let mut architectures: Vec<&Platform> = Vec::new();
    for p in &create.platforms {
        if !architectures
            .iter()
            .any(|a| a.architecture == p.architecture)
        {
            architectures.push(p);
        }
    }
    architectures
        .into_iter()
        .map(|p| Wanted {
            kind: create.kind.clone(),
            version: create.version.clone(),
            architecture: p.architecture.clone(),
            recommended: online.recommended,
            latest_psu: online.latest_psu,
            ids: online.ids.clone(),
            installed_psu: None,
            installed_upis: Vec::new(),
        })
        .collect()
}

/// The PSU version in an installed patch's description, as WIT's `InstalledPatch` reads it:
/// `WLS PATCH SET UPDATE 12.2.1.4.250114`, or `…12.2.1.4.0(ID:250114.0)`.
fn installed_psu(description: &str) -> Option<String> {
    let rest = description.split("WLS PATCH SET UPDATE ").nth(1)?;
    let word = rest.split_whitespace().next()?;
    if let Some((version, id)) = word.split_once("(ID:") {
        let prefix = version.rsplit_once('.').map(|(p, _)| p)?;
        let id = id.split('.').next()?;
        return Some(format!("{prefix}.{id}"));
    }
    let parts: Vec<&str> = word.split('.').collect();
    (parts.len() == 5 && parts.iter().all(|p| p.parse::<u32>().is_ok()) && parts[4] != "0")
        .then(|| word.to_owned())
}

#[cfg(test)]
mod tests {
    #[test]
    fn installed_psus_are_read_as_wit_reads_them() {
        use super::installed_psu;
        assert_eq!(
            installed_psu("WLS PATCH SET UPDATE 12.2.1.4.250114").as_deref(),
            Some("12.2.1.4.250114")
        );
        assert_eq!(
            installed_psu("WLS PATCH SET UPDATE 12.2.1.4.0(ID:250114.0)").as_deref(),
            Some("12.2.1.4.250114")
        );
        assert_eq!(installed_psu("WLS PATCH SET UPDATE 12.2.1.4.0"), None);
        assert_eq!(installed_psu("ADR FOR WEBLOGIC SERVER"), None);
    }
}
