//! Image signatures in sigstore's format — what `cosign` writes and the containers tools
//! (`skopeo`, podman: `sigstoreSigned` policies with `use-sigstore-attachments`) verify: a
//! "simple signing" payload naming the repository and manifest digest, signed with ECDSA P-256 /
//! SHA-256, attached as the one layer of a manifest tagged `sha256-<hex>.sig` in the image's
//! repository (`attach`).

pub mod attach;
pub mod referrers;

use crate::digest::Digest;
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};
use std::path::Path;

/// The signature layer's media type and the annotation holding the signature (cosign's).
pub const PAYLOAD_MEDIA_TYPE: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
const PAYLOAD_TYPE: &str = "cosign container image signature";

/// DER of a P-256 SubjectPublicKeyInfo before its 65-byte uncompressed point: id-ecPublicKey with
/// prime256v1. Any other key is not one this format uses.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("{path}: {reason}")]
    Key { path: String, reason: String },
    #[error("signing failed")]
    Signing,
    #[error("{0}")]
    Invalid(String),
}

/// The farm's (or the user's) signing key. Its Debug never shows the key.
pub struct Signer {
    pair: EcdsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(ECDSA P-256, key redacted)")
    }
}

impl Signer {
    /// Reads an ECDSA P-256 private key in PKCS#8 PEM (`openssl genpkey -algorithm EC
    /// -pkeyopt ec_paramgen_curve:P-256`).
    pub fn from_pem_file(path: &Path) -> Result<Self, SignError> {
        let fail = |reason: String| SignError::Key {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(&pem)
            .map_err(|_| fail("not a PKCS#8 private key in PEM (BEGIN PRIVATE KEY)".into()))?;
        let rng = SystemRandom::new();
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            der.secret_pkcs8_der(),
            &rng,
        )
        .map_err(|e| fail(format!("not an ECDSA P-256 key ({e})")))?;
        Ok(Signer { pair, rng })
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        use ring::signature::KeyPair;
        PublicKey {
            point: self.pair.public_key().as_ref().to_vec(),
        }
    }

    /// The matching public key, as PEM (`BEGIN PUBLIC KEY`).
    pub fn public_key_pem(&self) -> String {
        use ring::signature::KeyPair;
        let mut der = P256_SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.pair.public_key().as_ref());
        let body = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("base64 is ASCII"))
            .collect();
        format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            lines.join("\n")
        )
    }

    /// The DER signature of `payload`.
    pub fn sign(&self, payload: &[u8]) -> Result<Vec<u8>, SignError> {
        self.pair
            .sign(&self.rng, payload)
            .map(|s| s.as_ref().to_vec())
            .map_err(|_| SignError::Signing)
    }
}

/// A public key that verifies signatures.
#[derive(Clone, Debug)]
pub struct PublicKey {
    point: Vec<u8>,
}

impl PublicKey {
    pub fn from_pem(pem: &[u8], shown: &str) -> Result<Self, SignError> {
        let der = SubjectPublicKeyInfoDer::from_pem_slice(pem).map_err(|_| SignError::Key {
            path: shown.into(),
            reason: "not a public key in PEM (BEGIN PUBLIC KEY)".into(),
        })?;
        let point = der
            .as_ref()
            .strip_prefix(&P256_SPKI_PREFIX[..])
            .filter(|p| p.len() == 65)
            .ok_or_else(|| SignError::Key {
                path: shown.into(),
                reason: "not an ECDSA P-256 public key".into(),
            })?;
        Ok(PublicKey {
            point: point.to_vec(),
        })
    }

    pub fn from_pem_file(path: &Path) -> Result<Self, SignError> {
        let pem = std::fs::read(path).map_err(|e| SignError::Key {
            path: path.display().to_string(),
            reason: format!("cannot read it: {e}"),
        })?;
        Self::from_pem(&pem, &path.display().to_string())
    }

    pub fn verifies(&self, payload: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(payload, signature)
            .is_ok()
    }
}

/// A DSSE envelope (what cosign attaches as an attestation) of `body` of `payload_type`, signed
/// over DSSE's pre-authentication encoding.
pub fn dsse_envelope(
    signer: &Signer,
    payload_type: &str,
    body: &[u8],
) -> Result<Vec<u8>, SignError> {
    use base64::Engine as _;
    let signature = signer.sign(&pae(payload_type, body))?;
    let b64 = &base64::engine::general_purpose::STANDARD;
    Ok(serde_json::to_vec(&serde_json::json!({
        "payloadType": payload_type,
        "payload": b64.encode(body),
        "signatures": [{"keyid": "", "sig": b64.encode(signature)}],
    }))
    .expect("a JSON value serializes"))
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The simple-signing payload for `digest` in `repository` (`HOST[:PORT]/REPO`, no tag), as
/// cosign writes it.
pub fn payload(repository: &str, digest: &Digest) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "critical": {
            "identity": {"docker-reference": repository},
            "image": {"docker-manifest-digest": digest.to_string()},
            "type": PAYLOAD_TYPE,
        },
        "optional": null,
    }))
    .expect("a JSON value serializes")
}

/// What a verified payload claims: the repository and the manifest digest.
pub fn read_payload(bytes: &[u8]) -> Result<(String, String), SignError> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| SignError::Invalid(format!("payload is not JSON: {e}")))?;
    let critical = &value["critical"];
    if critical["type"] != PAYLOAD_TYPE {
        return Err(SignError::Invalid(format!(
            "payload type {} is not a container image signature",
            critical["type"]
        )));
    }
    match (
        critical["identity"]["docker-reference"].as_str(),
        critical["image"]["docker-manifest-digest"].as_str(),
    ) {
        (Some(repository), Some(digest)) => Ok((repository.to_string(), digest.to_string())),
        _ => Err(SignError::Invalid(
            "payload names no docker-reference or docker-manifest-digest".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A PKCS#8 P-256 key as `openssl genpkey` writes it (generated by ring here).
    fn key_file(dir: &Path) -> std::path::PathBuf {
        let rng = SystemRandom::new();
        let der = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let body = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, der.as_ref());
        let path = dir.join("key.pem");
        std::fs::write(
            &path,
            format!("-----BEGIN PRIVATE KEY-----\n{body}\n-----END PRIVATE KEY-----\n"),
        )
        .unwrap();
        path
    }

    #[test]
    fn a_signature_verifies_with_its_key_only() {
        let dir = tempfile::tempdir().unwrap();
        let signer = Signer::from_pem_file(&key_file(dir.path())).unwrap();
        assert!(!format!("{signer:?}").contains("BEGIN"));
        let public = PublicKey::from_pem(signer.public_key_pem().as_bytes(), "pub").unwrap();
        let digest = Digest::of_bytes(b"manifest");
        let body = payload("r.example:5000/wls/base", &digest);
        let signature = signer.sign(&body).unwrap();
        assert!(public.verifies(&body, &signature));
        assert!(!public.verifies(&payload("r.example:5000/other", &digest), &signature));
        let elsewhere = tempfile::tempdir().unwrap();
        let other = Signer::from_pem_file(&key_file(elsewhere.path())).unwrap();
        let stranger = PublicKey::from_pem(other.public_key_pem().as_bytes(), "pub").unwrap();
        assert!(!stranger.verifies(&body, &signature));
        assert_eq!(
            read_payload(&body).unwrap(),
            ("r.example:5000/wls/base".to_string(), digest.to_string())
        );
        std::fs::write(dir.path().join("bad.pem"), "not a key").unwrap();
        let error = Signer::from_pem_file(&dir.path().join("bad.pem")).unwrap_err();
        assert!(error.to_string().contains("PKCS#8"), "{error}");
    }
}
