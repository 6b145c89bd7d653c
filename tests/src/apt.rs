//! A local apt repository for `--packageManager APTGET`: stand-in packages built with
//! `dpkg-deb` (each installs one marker file, `/usr/share/patchfarm-fake/<name>`), indexed with
//! `dpkg-scanpackages`, served over loopback HTTP by Python's http.server. Versions are low
//! (`0.1`), so a package the base already has stays as it is.

use crate::run;
use crate::tools::free_port;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The served repository; the server stops when this drops.
pub struct AptRepo {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl AptRepo {
    /// Builds one stand-in package per name and serves them.
    pub fn serve(packages: &[&str]) -> AptRepo {
        crate::require_tool("dpkg-deb");
        crate::require_tool("dpkg-scanpackages");
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        for name in packages {
            let root = dir.path().join("build").join(name);
            std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
            std::fs::create_dir_all(root.join("usr/share/patchfarm-fake")).unwrap();
            std::fs::write(
                root.join("DEBIAN/control"),
                format!("Package: {name}\nVersion: 0.1\nArchitecture: all\nMaintainer: patchfarm tests <tests@patchfarm.invalid>\nDescription: stand-in for {name}\n"),
            )
            .unwrap();
            std::fs::write(
                root.join("usr/share/patchfarm-fake").join(name),
                format!("{name} from the local repository\n"),
            )
            .unwrap();
            run(Command::new("dpkg-deb")
                .args(["--root-owner-group", "--build"])
                .arg(&root)
                .arg(repo.join(format!("{name}_0.1_all.deb"))));
        }
        let index = run(Command::new("dpkg-scanpackages")
            .arg(".")
            .current_dir(&repo)
            .stderr(Stdio::null()));
        std::fs::write(repo.join("Packages"), index).unwrap();
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(&repo)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        crate::tools::wait_port(port);
        AptRepo {
            port,
            child,
            _dir: dir,
        }
    }

    /// Points a Debian root filesystem's apt at this repository only.
    pub fn use_in(&self, rootfs: &Path) {
        let lists = rootfs.join("etc/apt/sources.list.d");
        let _ = std::fs::remove_dir_all(&lists);
        std::fs::create_dir_all(&lists).unwrap();
        std::fs::write(
            rootfs.join("etc/apt/sources.list"),
            format!("deb [trusted=yes] http://127.0.0.1:{}/ ./\n", self.port),
        )
        .unwrap();
    }
}

impl Drop for AptRepo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
