//! rpm databases as OL8 and OL9 images carry them, made by the real rpm: packages built with
//! rpmbuild and installed into a root (SQLite, as rpm ≥ 4.16 writes it), and the same headers
//! loaded into a Berkeley DB hash `Packages` by Berkeley DB's own db_load (as OL8's rpm 4.14
//! wrote it), checked readable by rpm's Berkeley DB reader.

use crate::tools::{require_tool, run};
use std::path::Path;
use std::process::Command;

/// A release package `oraclelinux-release-VERSION-RELEASE.x86_64` owning /etc/os-release (a
/// link to /usr/lib/os-release, as on Oracle Linux) and a package whose header spans several
/// database pages, installed into `root` with rpm. Returns what `rpm -qf /etc/os-release` says.
pub fn install_release_packages(root: &Path, version: &str, release: &str) -> String {
    for tool in ["rpmbuild", "rpm"] {
        require_tool(tool);
    }
    let top = tempfile::tempdir().unwrap();
    let specs = [
        format!(
            "Name: oraclelinux-release\nVersion: {version}\nRelease: {release}\nSummary: os-release\n\
             License: GPL\nBuildArch: x86_64\n%description\nstand-in\n%install\n\
             mkdir -p %{{buildroot}}/etc %{{buildroot}}/usr/lib\n\
             printf 'NAME=\"Oracle Linux Server\"\\nID=\"ol\"\\nVERSION_ID=\"{version}\"\\n' > %{{buildroot}}/usr/lib/os-release\n\
             ln -s ../usr/lib/os-release %{{buildroot}}/etc/os-release\n\
             echo 'Oracle Linux Server release {version}' > %{{buildroot}}/etc/oracle-release\n\
             %files\n/etc/os-release\n/usr/lib/os-release\n/etc/oracle-release\n"
        ),
        "Name: coreutils-standin\nVersion: 8.30\nRelease: 15.0.1\nSummary: many files\n\
         License: GPL\nBuildArch: x86_64\n%description\nstand-in\n%install\n\
         mkdir -p %{buildroot}/usr/share/standin\n\
         for i in $(seq 1 400); do echo $i > %{buildroot}/usr/share/standin/a-long-file-name-$i; done\n\
         %files\n/usr/share/standin\n"
            .to_string(),
    ];
    for (i, spec) in specs.iter().enumerate() {
        let file = top.path().join(format!("{i}.spec"));
        std::fs::write(&file, spec).unwrap();
        run(Command::new("rpmbuild")
            .arg("-bb")
            .arg("--define")
            .arg(format!("_topdir {}", top.path().display()))
            .args(["--define", "_build_id_links none"])
            .arg(&file));
    }
    let mut install = Command::new("rpm");
    install.arg("--root").arg(root).args([
        "--dbpath",
        "/var/lib/rpm",
        "-i",
        "--nodeps",
        "--ignorearch",
    ]);
    for entry in std::fs::read_dir(top.path().join("RPMS/x86_64")).unwrap() {
        install.arg(entry.unwrap().path());
    }
    run(&mut install);
    run(Command::new("rpm").arg("--root").arg(root).args([
        "--dbpath",
        "/var/lib/rpm",
        "-qf",
        "/etc/os-release",
    ]))
    .trim()
    .to_string()
}

/// Replaces `root`'s SQLite rpm database with a Berkeley DB `Packages` holding the same headers
/// (and rpm's record 0, the header-number counter), as OL8's rpm keeps it.
pub fn convert_to_berkeley_db(root: &Path) {
    for tool in ["sqlite3", "db5.3_load", "rpm"] {
        require_tool(tool);
    }
    let dbpath = root.join("var/lib/rpm");
    let sqlite = dbpath.join("rpmdb.sqlite");
    let rows = run(Command::new("sqlite3")
        .arg(&sqlite)
        .arg("SELECT hnum, hex(blob) FROM Packages ORDER BY hnum"));
    let mut dump =
        String::from("VERSION=3\nformat=bytevalue\ntype=hash\ndb_pagesize=4096\nHEADER=END\n");
    let mut count = 0u32;
    for row in rows.lines() {
        let (hnum, hex) = row.split_once('|').unwrap();
        let hnum: u32 = hnum.parse().unwrap();
        dump += &format!(
            " {}\n {}\n",
            hex_of(&hnum.to_le_bytes()),
            hex.to_lowercase()
        );
        count = count.max(hnum);
    }
    dump += &format!(
        " 00000000\n {}\nDATA=END\n",
        hex_of(&(count + 1).to_le_bytes())
    );
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(dbpath.join(format!("rpmdb.sqlite{suffix}")));
    }
    let dump_file = dbpath.join("dump.txt");
    std::fs::write(&dump_file, dump).unwrap();
    run(Command::new("db5.3_load")
        .arg("-f")
        .arg(&dump_file)
        .arg(dbpath.join("Packages")));
    std::fs::remove_file(dump_file).unwrap();
    let listed = run(Command::new("rpm").arg("--dbpath").arg(&dbpath).args([
        "--define",
        "_db_backend bdb_ro",
        "-qa",
    ]));
    assert!(
        listed.contains("oraclelinux-release-"),
        "rpm's own Berkeley DB reader must read the converted database: {listed}"
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
