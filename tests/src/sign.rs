//! Signed images checked without patchfarm's code: keys made by openssl, sigstore attachments
//! fetched by skopeo, signatures verified by openssl (and by skopeo's own `sigstoreSigned` policy
//! where its build has sigstore verification; Debian's does not).

use crate::tools::run;
use std::path::{Path, PathBuf};
use std::process::Command;

/// An ECDSA P-256 key pair written by openssl: (private PKCS#8 PEM, public PEM).
pub fn key_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (private, public) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    run(Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
        ])
        .arg(&private));
    run(Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public));
    (private, public)
}

/// Whether `image` carries a sigstore signature by `public`, checked without patchfarm's code:
/// skopeo copies the `sha256-<hex>.sig` manifest and its payloads out of the registry, openssl
/// verifies each ECDSA signature, and the payload must name the image's repository and digest.
/// Where skopeo can check sigstore policies itself (Debian's build cannot: "sigstore disabled"),
/// its `sigstoreSigned` policy must agree.
pub fn independently_verified(
    dir: &Path,
    host: &str,
    public: &Path,
    image: &str,
) -> Result<(), String> {
    let by_skopeo = skopeo_policy(dir, host, public, image);
    let by_openssl = openssl_verified(dir, public, image);
    match by_skopeo {
        Err(e) if e.contains("sigstore disabled") => {
            eprintln!("note: this skopeo is built without sigstore verification; openssl checks the signatures");
        }
        other => assert_eq!(
            other.is_ok(),
            by_openssl.is_ok(),
            "skopeo's policy and openssl disagree on {image}: {other:?} / {by_openssl:?}"
        ),
    }
    by_openssl
}

pub fn openssl_verified(dir: &Path, public: &Path, image: &str) -> Result<(), String> {
    use base64::Engine as _;
    let (repo, _) = image.rsplit_once(':').unwrap();
    let digest = crate::wls::raw_digest(image);
    let signatures = format!("{repo}:{}.sig", digest.replace(':', "-"));
    let layout = dir.join(format!("sig-{}", digest.replace(':', "-")));
    let _ = std::fs::remove_dir_all(&layout);
    let copied = Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{signatures}"))
        .arg(format!("oci:{}:s", layout.display()))
        .output()
        .unwrap();
    if !copied.status.success() {
        return Err(format!(
            "no signature: {}",
            String::from_utf8_lossy(&copied.stderr)
        ));
    }
    let manifest = crate::wls::raw(&signatures);
    let mut valid = 0;
    for layer in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            layer["mediaType"],
            "application/vnd.dev.cosign.simplesigning.v1+json"
        );
        let blob = layout.join("blobs/sha256").join(
            layer["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        );
        let signature = base64::engine::general_purpose::STANDARD
            .decode(
                layer["annotations"]["dev.cosignproject.cosign/signature"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap();
        std::fs::write(dir.join("sig.der"), signature).unwrap();
        let verified = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify"])
            .arg(public)
            .arg("-signature")
            .arg(dir.join("sig.der"))
            .arg(&blob)
            .output()
            .unwrap();
        let payload: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&blob).unwrap()).unwrap();
        let critical = &payload["critical"];
        if verified.status.success()
            && critical["type"] == "cosign container image signature"
            && critical["identity"]["docker-reference"] == repo
            && critical["image"]["docker-manifest-digest"] == digest.as_str()
        {
            valid += 1;
        }
    }
    if valid > 0 {
        Ok(())
    } else {
        Err(format!("no signature by {} for {image}", public.display()))
    }
}

/// The layers (descriptor, bytes) of the attachment `sha256-<hex>.<suffix>` of `image`, read
/// with skopeo.
pub fn attachment(dir: &Path, image: &str, suffix: &str) -> Vec<(serde_json::Value, Vec<u8>)> {
    let (repo, _) = image.rsplit_once(':').unwrap();
    let digest = crate::wls::raw_digest(image);
    let at = format!("{repo}:{}.{suffix}", digest.replace(':', "-"));
    let layout = dir.join(format!("{suffix}-{}", digest.replace(':', "-")));
    run(Command::new("skopeo")
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{at}"))
        .arg(format!("oci:{}:a", layout.display())));
    crate::wls::raw(&at)["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let hex = l["digest"].as_str().unwrap().trim_start_matches("sha256:");
            (
                l.clone(),
                std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap(),
            )
        })
        .collect()
}

pub fn sha256_file(path: &Path) -> String {
    run(Command::new("sha256sum").arg(path))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// skopeo copying `image` under a policy requiring a sigstore signature by `public`.
pub fn skopeo_policy(dir: &Path, host: &str, public: &Path, image: &str) -> Result<(), String> {
    let policy = dir.join("policy.json");
    std::fs::write(
        &policy,
        serde_json::json!({
            "default": [{"type": "reject"}],
            "transports": {"docker": {host: [{
                "type": "sigstoreSigned",
                "keyPath": public,
                "signedIdentity": {"type": "matchRepository"},
            }]}},
        })
        .to_string(),
    )
    .unwrap();
    let registries_d = dir.join("registries.d");
    std::fs::create_dir_all(&registries_d).unwrap();
    std::fs::write(
        registries_d.join("default.yaml"),
        "default-docker:\n  use-sigstore-attachments: true\n",
    )
    .unwrap();
    let out = Command::new("skopeo")
        .arg("--policy")
        .arg(&policy)
        .arg("--registries.d")
        .arg(&registries_d)
        .args(["copy", "-q", "--src-tls-verify=false"])
        .arg(format!("docker://{image}"))
        .arg(format!("oci:{}:x", dir.join("pulled").display()))
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

pub fn signature_layers(host_image: &str) -> usize {
    let (repo, _) = host_image.rsplit_once(':').unwrap();
    let digest = crate::wls::raw_digest(host_image);
    let sig = format!("{repo}:{}.sig", digest.replace(':', "-"));
    crate::wls::raw(&sig)["layers"].as_array().unwrap().len()
}
