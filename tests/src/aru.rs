//! A stand-in for Oracle's patch service (ARU): `aru_server.py` (a real HTTP server with Basic
//! authentication) answering from XML written here in the format WIT's client parses.

use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// One patch as the service lists it.
#[derive(Clone, Debug)]
pub struct AruPatch {
    pub bug: String,
    /// The release's name: the version the patch is for.
    pub version: String,
    pub release_id: String,
    pub product_id: String,
    pub description: String,
    /// `Oracle WebLogic Server 12.2.1.4.260120` for a PSU, else empty.
    pub psu_bundle: String,
    pub file_name: String,
    /// The SHA-256 the service publishes (the zip's own unless a test lies).
    pub sha256: String,
}

pub struct AruServer {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl AruServer {
    /// Serves as `user` / `password`.
    pub fn start(user: &str, password: &str) -> AruServer {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("files")).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/aru_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .args([user, password])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs the ARU stand-in");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the server prints its port");
        AruServer { child, port, dir }
    }

    /// `PATCHFARM_ARU_URL` for this server.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/Orion/Services", self.port)
    }

    fn write(&self, name: &str, body: &str) {
        std::fs::write(self.dir.path().join(name), body).unwrap();
    }

    /// The release table: (id, name, text) as ARU lists them.
    pub fn releases(&self, releases: &[(&str, &str, &str)]) {
        let entries: String = releases
            .iter()
            .map(|(id, name, text)| {
                format!("<release id=\"{id}\" name=\"{name}\"><![CDATA[{text}]]></release>\n")
            })
            .collect();
        self.write(
            "releases.xml",
            &format!("<results md5_sum=\"0\">\n{entries}</results>\n"),
        );
    }

    /// Publishes `zip` as `bug`'s file; returns the patch as listed (digest of the zip).
    #[allow(clippy::too_many_arguments)]
    pub fn patch(
        &self,
        bug: &str,
        version: &str,
        release_id: &str,
        product_id: &str,
        description: &str,
        psu_bundle: &str,
        zip: &Path,
    ) -> AruPatch {
        let bytes = std::fs::read(zip).unwrap();
        let file_name = format!("p{bug}_{}_Generic.zip", version.replace('.', ""));
        std::fs::write(self.dir.path().join("files").join(&file_name), &bytes).unwrap();
        AruPatch {
            bug: bug.into(),
            version: version.into(),
            release_id: release_id.into(),
            product_id: product_id.into(),
            description: description.into(),
            psu_bundle: psu_bundle.into(),
            file_name,
            sha256: hex::encode(Sha256::digest(&bytes)).to_uppercase(),
        }
    }

    fn entry(&self, p: &AruPatch) -> String {
        let psu = if p.psu_bundle.is_empty() {
            String::new()
        } else {
            format!("<psu_bundle>{}</psu_bundle>", p.psu_bundle)
        };
        format!(
            r#"<patch has_prereqs="n" has_postreqs="n" is_system_patch="n">
  <bug><number>{bug}</number><abstract><![CDATA[{description}]]></abstract></bug>
  <name>{bug}</name><type>Patch</type><status>Available</status>
  <product id="{product}" bugdb_id="5242"><![CDATA[product]]></product>
  <release id="{release}" name="{version}" platform_patch_not_required="Y"><![CDATA[release {version}]]></release>
  <platform id="2000" bugdb_id="289"><![CDATA[Generic Platform]]></platform>
  <language id="0" iso_code="EN"><![CDATA[American English]]></language>
  {psu}
  <files><file>
    <name>{file}</name><size>0</size>
    <download_url host="http://127.0.0.1:{port}"><![CDATA[/Orion/Services/download/{file}?aru=1&patch_file={file}]]></download_url>
    <digest type="SHA-256">{sha256}</digest>
    <digest type="SHA-1">0000000000000000000000000000000000000000</digest>
  </file></files>
</patch>
"#,
            bug = p.bug,
            description = p.description,
            product = p.product_id,
            release = p.release_id,
            version = p.version,
            file = p.file_name,
            port = self.port,
            sha256 = p.sha256,
        )
    }

    fn results(&self, patches: &[&AruPatch]) -> String {
        let entries: String = patches.iter().map(|p| self.entry(p)).collect();
        format!("<results md5_sum=\"0\">\n{entries}</results>\n")
    }

    /// What a search for the bug answers (every version of it).
    pub fn bug(&self, bug: &str, versions: &[&AruPatch]) {
        self.write(&format!("bug-{bug}.xml"), &self.results(versions));
    }

    /// The recommended patches of a product's release.
    pub fn recommended(&self, product_id: &str, release_id: &str, patches: &[&AruPatch]) {
        self.write(
            &format!("recommended-{product_id}-{release_id}.xml"),
            &self.results(patches),
        );
    }

    /// What the conflict check answers: each set of bug numbers conflicts.
    pub fn conflicts(&self, sets: &[&[&str]]) {
        let sets: String = sets
            .iter()
            .map(|set| {
                let patches: String = set
                    .iter()
                    .map(|bug| format!("<patch flag=\"candidate\"><bug><number>{bug}</number></bug><patch_name>{bug}</patch_name></patch>"))
                    .collect();
                format!("<set><merge_patches>{patches}</merge_patches></set>")
            })
            .collect();
        self.write(
            "conflicts.xml",
            &format!("<conflict_check platform_id=\"2000\"><conflict_free_list></conflict_free_list><conflict_sets>{sets}</conflict_sets><messages></messages></conflict_check>"),
        );
    }

    /// The last conflict check request the server was sent.
    pub fn conflict_request(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("conflict-request.xml")).unwrap_or_default()
    }

    /// The requests the server saw (paths and whether they carried credentials).
    pub fn requests(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("requests.log")).unwrap_or_default()
    }
}

impl Drop for AruServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
