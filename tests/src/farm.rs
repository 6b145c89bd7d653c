//! A whole farm for end-to-end tests: a coordinator `Cluster` with an `oci:` artifact store, a
//! real registry with the busybox base, and `patchfarm-agent` processes (SIGKILL-able), plus the
//! fixture installers and patches uploaded through `patchfarm --farm cache …`.

use crate::cluster::Cluster;
use crate::weblogic::{self, Act, WLS_VERSION};
use crate::{busybox_base, Registry};
use patchfarm_proto::v1::{GetJobRequest, Job, JobState, ListJobsRequest};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `patchfarm-agent`, next to the `patchfarm` binary.
pub fn agent_bin() -> PathBuf {
    crate::patchfarm_bin().with_file_name("patchfarm-agent")
}

pub struct Farm {
    pub cluster: Cluster,
    pub registry: Registry,
    pub base: String,
    /// Agents' caches, logs, the artifact store and fixture inputs.
    pub dir: tempfile::TempDir,
    agents: BTreeMap<String, (Vec<String>, Option<Child>)>,
}

impl Farm {
    /// `coordinators` nodes with quick heartbeats (TTL 1.5 s) and an `oci:` artifact store.
    pub fn start(coordinators: u64, extra: &[&str]) -> Farm {
        Self::build(coordinators, extra, false)
    }

    /// As `start`, with the artifact store in the farm's registry (`HOST/pf/artifacts`).
    pub fn start_with_registry_store(coordinators: u64) -> Farm {
        Self::build(coordinators, &[], true)
    }

    fn build(coordinators: u64, extra: &[&str], registry_store: bool) -> Farm {
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::start();
        let store = if registry_store {
            format!("--artifact-store={}/pf/artifacts", registry.host())
        } else {
            format!(
                "--artifact-store=oci:{}",
                dir.path().join("store").display()
            )
        };
        let mut args = vec![store.as_str(), "--heartbeat-ttl-ms=1500", "--lease-ms=6000"];
        args.extend_from_slice(extra);
        let cluster = Cluster::start_with_args(coordinators, &args);
        let base = busybox_base(&registry);
        Farm {
            cluster,
            registry,
            base,
            dir,
            agents: BTreeMap::new(),
        }
    }

    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// Starts agent `name` (its certificate is `name` in the cluster's certificate set).
    pub fn start_agent(&mut self, name: &str, extra: &[&str]) {
        let mut args = vec![
            format!("--name={name}"),
            format!("--coordinator={}", self.cluster.addresses().join(",")),
            format!(
                "--cache-dir={}",
                self.dir.path().join(format!("{name}-cache")).display()
            ),
            format!("--tls-dir={}", self.cluster.certs_dir().display()),
            "--slots=2".into(),
        ];
        // A flag given in `extra` replaces the default one; certificates named one by one
        // replace the certificate directory.
        let explicit = extra.iter().any(|e| e.starts_with("--tls-cert"));
        args.retain(|a| {
            let flag = a.split('=').next().unwrap();
            let replaced = extra.iter().any(|e| e.split('=').next() == Some(flag));
            let dropped = explicit && flag == "--tls-dir";
            !(replaced || dropped)
        });
        args.extend(extra.iter().map(|a| a.to_string()));
        self.agents.insert(name.to_string(), (args, None));
        self.spawn_agent(name);
    }

    fn spawn_agent(&mut self, name: &str) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.agent_log_path(name))
            .unwrap();
        let (args, child) = self.agents.get_mut(name).unwrap();
        *child = Some(
            Command::new(agent_bin())
                .args(args.iter())
                .env("RUST_LOG", "info,h2=warn,tower=warn")
                .env("SOURCE_DATE_EPOCH", "0")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }

    /// SIGKILL.
    pub fn kill_agent(&mut self, name: &str) {
        if let Some(mut child) = self.agents.get_mut(name).unwrap().1.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then waits for the agent to exit; returns whether it exited cleanly.
    pub fn terminate_agent(&mut self, name: &str) -> bool {
        let mut child = self.agents.get_mut(name).unwrap().1.take().unwrap();
        crate::run(Command::new("kill").args(["-TERM", &child.id().to_string()]));
        child.wait().unwrap().success()
    }

    pub fn restart_agent(&mut self, name: &str) {
        assert!(self.agents[name].1.is_none(), "{name} is still running");
        self.spawn_agent(name);
    }

    pub fn agent_log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    pub fn agent_log(&self, name: &str) -> String {
        std::fs::read_to_string(self.agent_log_path(name)).unwrap_or_default()
    }

    /// `patchfarm --farm … --tls-dir … ARGS`.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cluster.cli(args)
    }

    /// As `cli`, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "patchfarm {args:?} failed: {}\nlogs in {}",
            String::from_utf8_lossy(&out.stderr),
            self.dir.path().display()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Uploads the fixture Oracle Home (wls), a fake JDK (jdk_17) and patches PSU and REC.
    pub fn upload_weblogic(&self) {
        let d = self.dir.path();
        let home = d.join("wls.zip");
        weblogic::oracle_home_zip(&home, WLS_VERSION);
        let jdk = d.join("jdk.tar.gz");
        weblogic::fake_jdk_tgz(&jdk, "17.0.99");
        let jar = |entry: &'static str, content: &'static [u8]| Act::Jar {
            dir: "wlserver/server/lib",
            jar: "weblogic.jar",
            entry,
            content,
        };
        let psu = weblogic::patch_zip(
            d,
            crate::wls::PSU,
            WLS_VERSION,
            &[],
            &[jar("weblogic/Server.class", b"PSU Server")],
        );
        let rec = weblogic::patch_zip(
            d,
            crate::wls::REC,
            WLS_VERSION,
            &[],
            &[jar("weblogic/Util.class", b"REC Util")],
        );
        self.add_installer("wls", WLS_VERSION, &home);
        self.add_installer("jdk", "17", &jdk);
        for (bug, zip) in [(crate::wls::PSU, psu), (crate::wls::REC, rec)] {
            self.ok(&[
                "cache",
                "addPatch",
                "--patchId",
                &crate::wls::key(bug),
                "--path",
                &zip.display().to_string(),
            ]);
        }
    }

    pub fn add_installer(&self, kind: &str, version: &str, path: &Path) {
        let args = crate::tools::add_installer_args(kind, version, path);
        self.ok(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    /// Submits `verb ARGS` through the farm; returns the job id.
    pub fn submit(&self, args: &[&str]) -> String {
        self.ok(args).trim().to_string()
    }

    /// Waits until every job in `ids` has ended; returns them.
    pub async fn wait_done(&self, ids: &[String], within: Duration) -> Vec<Job> {
        let deadline = Instant::now() + within;
        loop {
            let mut jobs = Vec::new();
            for id in ids {
                jobs.push(self.job(id).await);
            }
            let open: Vec<_> = jobs
                .iter()
                .filter(|j| matches!(j.state(), JobState::Queued | JobState::Leased))
                .map(|j| j.id.clone())
                .collect();
            if open.is_empty() {
                return jobs;
            }
            assert!(
                Instant::now() < deadline,
                "jobs still open after {within:?}: {open:?}; logs in {}",
                self.dir.path().display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The first job found under a lease (polls until one is).
    pub async fn leased_job(&self, within: Duration) -> Job {
        let client = self.cluster.client();
        let until = Instant::now() + within;
        loop {
            let jobs = client
                .call(|mut c| async move {
                    c.list_jobs(ListJobsRequest {
                        state: JobState::Leased as i32,
                        ..Default::default()
                    })
                    .await
                })
                .await
                .unwrap()
                .jobs;
            if let Some(job) = jobs.into_iter().next() {
                return job;
            }
            assert!(
                Instant::now() < until,
                "no job got leased within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The job's current record.
    pub async fn job(&self, id: &str) -> Job {
        let request = GetJobRequest { id: id.to_string() };
        self.cluster
            .client()
            .call(|mut c| {
                let request = request.clone();
                async move { c.get_job(request).await }
            })
            .await
            .unwrap()
    }

    /// How many times agent `name` fetched each digest from the artifact store (its log).
    pub fn fetches(&self, name: &str) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for line in self.agent_log(name).lines() {
            if line.contains("artifact fetched") {
                if let Some(digest) = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("digest="))
                {
                    *counts.entry(digest.to_string()).or_default() += 1;
                }
            }
        }
        counts
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        for (_, child) in self.agents.values_mut() {
            if let Some(mut child) = child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            // Keep the logs of a failed test.
            let kept = self.dir.path().to_path_buf();
            let _ = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap()).keep();
            eprintln!("farm logs kept in {}", kept.display());
        }
    }
}
