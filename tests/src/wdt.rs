//! A WDT stand-in installed like the real one (`cache addInstaller --type wdt`): its
//! `createDomain.sh`, `updateDomain.sh` and `deployApps.sh` check their arguments like WDT and
//! write a domain (see `wdt_standin.sh`); plus the models and archives tests give it.

use std::io::Write;
use std::path::Path;

const STANDIN: &str = include_str!("wdt_standin.sh");
const TOOLS: &[&str] = &["createDomain", "updateDomain", "deployApps"];

/// Writes a `weblogic-deploy` zip of the stand-in, version `version`.
pub fn write_wdt_standin_zip(path: &Path, version: &str) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let dir = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    let text = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
    for d in [
        "weblogic-deploy/",
        "weblogic-deploy/bin/",
        "weblogic-deploy/lib/",
    ] {
        zip.add_directory(d, dir).unwrap();
    }
    zip.start_file("weblogic-deploy/VERSION.txt", text).unwrap();
    zip.write_all(format!("WebLogic Deploy Tooling {version}\n").as_bytes())
        .unwrap();
    zip.start_file("weblogic-deploy/lib/standin.sh", text)
        .unwrap();
    zip.write_all(STANDIN.as_bytes()).unwrap();
    for tool in TOOLS {
        zip.start_file(format!("weblogic-deploy/bin/{tool}.sh"), dir)
            .unwrap();
        zip.write_all(
            format!(
                "#!/bin/sh\nexec /bin/sh \"$(dirname \"$0\")/../lib/standin.sh\" {tool} \"$@\"\n"
            )
            .as_bytes(),
        )
        .unwrap();
        zip.start_file(format!("weblogic-deploy/bin/{tool}.cmd"), text)
            .unwrap();
        zip.write_all(b"@rem Windows\r\n").unwrap();
    }
    zip.finish().unwrap();
}

/// A WDT model naming domain `name` with servers `servers`.
pub fn model(name: &str, servers: &[&str]) -> String {
    let mut text = format!(
        "domainInfo:\n  AdminUserName: '@@SECRET:__weblogic-credentials__:username@@'\ntopology:\n  Name: {name}\n  AdminServerName: {}\n  Server:\n",
        servers[0]
    );
    for server in servers {
        text.push_str(&format!("    {server}:\n      ListenPort: 7001\n"));
    }
    text
}

/// A WDT archive holding application `app` (a directory with one page) under
/// `wlsdeploy/applications/`.
pub fn write_archive(path: &Path, app: &str, page: &str) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let text = zip::write::SimpleFileOptions::default().unix_permissions(0o644);
    zip.start_file(format!("wlsdeploy/applications/{app}/index.html"), text)
        .unwrap();
    zip.write_all(page.as_bytes()).unwrap();
    zip.finish().unwrap();
}
