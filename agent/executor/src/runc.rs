//! One step under runc: a runtime config from `oci-spec`'s types (new pid, mount, ipc, uts,
//! cgroup and — unless asked otherwise — network namespaces; memory and pid limits; inputs bound
//! read-only under `/tmp`, a tmpfs no layer keeps), `runc run` in the foreground with its output
//! streamed line by line, killed at the step's time limit.

use super::{ExecError, Step, TAIL_LINES};
use oci_spec::runtime::{
    LinuxMemoryBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResourcesBuilder, Mount,
    MountBuilder, ProcessBuilder, RootBuilder, Spec, UserBuilder,
};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, BufReader};

/// runc on PATH.
pub(crate) fn binary() -> Result<PathBuf, String> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("runc"))
        .find(|p| p.is_file())
        .ok_or_else(|| "runc is not installed (Debian's package runc)".to_string())
}

fn spec_error(e: impl std::fmt::Display) -> ExecError {
    ExecError::Unavailable(format!("runtime config: {e}"))
}

fn tmpfs(destination: &str, options: &[&str]) -> Result<Mount, ExecError> {
    MountBuilder::default()
        .destination(destination)
        .typ("tmpfs")
        .source("tmpfs")
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_error)
}

/// Docker's default capability set: what a Dockerfile's RUN has, so package managers can drop to
/// their own users (apt's `_apt`) and programs can chown what they install.
fn docker_capabilities() -> Result<oci_spec::runtime::LinuxCapabilities, ExecError> {
    use oci_spec::runtime::Capability::*;
    let set: oci_spec::runtime::Capabilities = [
        Chown,
        DacOverride,
        Fsetid,
        Fowner,
        Mknod,
        NetRaw,
        Setgid,
        Setuid,
        Setfcap,
        Setpcap,
        NetBindService,
        SysChroot,
        Kill,
        AuditWrite,
    ]
    .into_iter()
    .collect();
    oci_spec::runtime::LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set)
        .build()
        .map_err(spec_error)
}

/// The runtime config for `step` over `rootfs`.
fn spec(rootfs: &Path, step: &Step) -> Result<Spec, ExecError> {
    let mut spec = Spec::default();
    spec.set_hostname(Some("patchfarm-step".into()));
    spec.set_root(Some(
        RootBuilder::default()
            .path(rootfs)
            .readonly(false)
            .build()
            .map_err(spec_error)?,
    ));
    let mut process = ProcessBuilder::default()
        .args(step.args.clone())
        .env(step.env.clone())
        .cwd(&step.cwd)
        .user(
            UserBuilder::default()
                .uid(step.uid)
                .gid(step.gid)
                .build()
                .map_err(spec_error)?,
        )
        .no_new_privileges(true)
        .build()
        .map_err(spec_error)?;
    process.set_capabilities(Some(docker_capabilities()?));
    process.set_rlimits(spec.process().as_ref().and_then(|p| p.rlimits().clone()));
    spec.set_process(Some(process));

    let mut mounts = spec.mounts().clone().unwrap_or_default();
    mounts.push(tmpfs("/tmp", &["nosuid", "nodev", "mode=1777"])?);
    mounts.push(tmpfs("/run", &["nosuid", "nodev", "mode=755"])?);
    for input in &step.inputs {
        if !input.dest.starts_with("/tmp/") || input.dest.contains("/../") {
            return Err(ExecError::Unavailable(format!(
                "input {} goes to {}: inputs are mounted under /tmp/, which no layer keeps",
                input.host.display(),
                input.dest
            )));
        }
        mounts.push(
            MountBuilder::default()
                .destination(&input.dest)
                .typ("bind")
                .source(&input.host)
                .options(
                    ["rbind", "ro", "nosuid", "nodev"]
                        .map(String::from)
                        .to_vec(),
                )
                .build()
                .map_err(spec_error)?,
        );
    }
    spec.set_mounts(Some(mounts));

    let mut linux = spec.linux().clone().unwrap_or_default();
    if step.network {
        if let Some(namespaces) = linux.namespaces_mut() {
            namespaces.retain(|n| n.typ() != LinuxNamespaceType::Network);
        }
    }
    linux.set_resources(Some(
        LinuxResourcesBuilder::default()
            .memory(
                LinuxMemoryBuilder::default()
                    .limit(step.memory_limit as i64)
                    .build()
                    .map_err(spec_error)?,
            )
            .pids(
                LinuxPidsBuilder::default()
                    .limit(4096)
                    .build()
                    .map_err(spec_error)?,
            )
            .build()
            .map_err(spec_error)?,
    ));
    spec.set_linux(Some(linux));
    Ok(spec)
}

fn container_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!(
        "patchfarm-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    )
}

pub(crate) async fn run(
    rootfs: &Path,
    bundle: &Path,
    state: &Path,
    step: &Step,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<(), ExecError> {
    let runc = binary().map_err(ExecError::Unavailable)?;
    let config = serde_json::to_vec_pretty(&spec(rootfs, step)?).expect("spec serializes");
    std::fs::write(bundle.join("config.json"), config).map_err(|e| ExecError::Io {
        what: format!("writing {}/config.json", bundle.display()),
        source: e,
    })?;
    let id = container_id();
    let mut child = tokio::process::Command::new(&runc)
        .arg("--root")
        .arg(state)
        .args(["run", "--bundle"])
        .arg(bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| ExecError::Io {
            what: format!("starting {}", runc.display()),
            source: e,
        })?;
    let (lines_tx, mut lines) = tokio::sync::mpsc::channel::<String>(256);
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = lines_tx.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stream).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).await.is_err() {
                    break;
                }
            }
        });
    }
    drop(lines_tx);
    let mut tail: VecDeque<String> = VecDeque::with_capacity(TAIL_LINES);
    let deadline = tokio::time::Instant::now() + step.time_limit;
    let mut timed_out = false;
    loop {
        tokio::select! {
            line = lines.recv() => match line {
                Some(line) => {
                    on_line(&line);
                    if tail.len() == TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
                None => break,
            },
            _ = tokio::time::sleep_until(deadline), if !timed_out => {
                timed_out = true;
                let _ = tokio::process::Command::new(&runc)
                    .arg("--root").arg(state).args(["kill", &id, "KILL"])
                    .output().await;
            }
        }
    }
    let status = child.wait().await.map_err(|e| ExecError::Io {
        what: "waiting for runc".into(),
        source: e,
    })?;
    let _ = tokio::process::Command::new(&runc)
        .arg("--root")
        .arg(state)
        .args(["delete", "--force", &id])
        .output()
        .await;
    let tail = tail.into_iter().collect::<Vec<_>>().join("\n");
    if timed_out {
        return Err(ExecError::TimedOut {
            step: step.describe(),
            limit: step.time_limit,
            tail,
        });
    }
    if !status.success() {
        return Err(ExecError::Failed {
            step: step.describe(),
            status: status.to_string(),
            tail,
        });
    }
    Ok(())
}
