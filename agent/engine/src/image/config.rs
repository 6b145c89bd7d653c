//! The image config, kept as JSON so fields we do not model (healthchecks, Docker extras) survive.

use super::manifest::canonical_json;
use crate::digest::Digest;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

#[derive(Debug, thiserror::Error)]
#[error("{what} is not a valid image config: {reason}")]
pub struct ConfigError {
    pub what: String,
    pub reason: String,
}

/// An image config (OCI or Docker; the two share these fields).
#[derive(Clone, Debug, PartialEq)]
pub struct ImageConfig(Map<String, Value>);

impl ImageConfig {
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self, ConfigError> {
        let fail = |reason: String| ConfigError {
            what: what.into(),
            reason,
        };
        // oci-spec validates the shape; we keep the raw object so nothing is dropped.
        oci_spec::image::ImageConfiguration::from_reader(bytes).map_err(|e| fail(e.to_string()))?;
        match serde_json::from_slice(bytes).map_err(|e| fail(e.to_string()))? {
            Value::Object(map) => Ok(ImageConfig(map)),
            _ => Err(fail("not a JSON object".into())),
        }
    }

    /// An empty linux config for `platform`, for images built from scratch.
    pub fn empty(os: &str, architecture: &str) -> Self {
        let v = json!({"os": os, "architecture": architecture, "config": {}, "rootfs": {"type": "layers", "diff_ids": []}});
        match v {
            Value::Object(m) => ImageConfig(m),
            _ => unreachable!(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        canonical_json(&Value::Object(self.0.clone()))
    }

    fn runtime(&self) -> Option<&Map<String, Value>> {
        self.0.get("config").and_then(Value::as_object)
    }

    fn runtime_mut(&mut self) -> &mut Map<String, Value> {
        let entry = self.0.entry("config").or_insert_with(|| json!({}));
        if !entry.is_object() {
            *entry = json!({});
        }
        entry.as_object_mut().expect("just made an object")
    }

    pub fn os(&self) -> &str {
        self.0.get("os").and_then(Value::as_str).unwrap_or("linux")
    }

    pub fn architecture(&self) -> &str {
        self.0
            .get("architecture")
            .and_then(Value::as_str)
            .unwrap_or("amd64")
    }

    /// `Env` as ordered (name, value) pairs.
    pub fn env(&self) -> Vec<(String, String)> {
        self.runtime()
            .and_then(|c| c.get("Env"))
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|kv| match kv.split_once('=') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (kv.to_string(), String::new()),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn env_var(&self, name: &str) -> Option<String> {
        self.env()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Sets `name=value`, replacing an existing entry in place or appending.
    pub fn set_env(&mut self, name: &str, value: &str) {
        let mut env = self.env();
        match env.iter_mut().find(|(k, _)| k == name) {
            Some(entry) => entry.1 = value.into(),
            None => env.push((name.into(), value.into())),
        }
        let items = env
            .into_iter()
            .map(|(k, v)| Value::String(format!("{k}={v}")))
            .collect();
        self.runtime_mut().insert("Env".into(), Value::Array(items));
    }

    pub fn labels(&self) -> BTreeMap<String, String> {
        self.runtime()
            .and_then(|c| c.get("Labels"))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn set_label(&mut self, key: &str, value: &str) {
        let runtime = self.runtime_mut();
        let labels = runtime.entry("Labels").or_insert_with(|| json!({}));
        if !labels.is_object() {
            *labels = json!({});
        }
        labels[key] = json!(value);
    }

    pub fn user(&self) -> Option<String> {
        self.runtime()
            .and_then(|c| c.get("User"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    pub fn set_user(&mut self, user: &str) {
        self.runtime_mut().insert("User".into(), json!(user));
    }

    pub fn working_dir(&self) -> Option<String> {
        self.runtime()
            .and_then(|c| c.get("WorkingDir"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    }

    pub fn set_working_dir(&mut self, dir: &str) {
        self.runtime_mut().insert("WorkingDir".into(), json!(dir));
    }

    pub fn diff_ids(&self) -> Vec<String> {
        self.0
            .get("rootfs")
            .and_then(|r| r.get("diff_ids"))
            .and_then(Value::as_array)
            .map(|ids| {
                ids.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The `history` entries as they are.
    pub fn history(&self) -> Vec<Value> {
        self.0
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces the layer list: diffIDs bottom first, and the matching history.
    pub fn set_layers(&mut self, diff_ids: &[String], history: Vec<Value>) {
        self.0.insert(
            "rootfs".into(),
            json!({"type": "layers", "diff_ids": diff_ids}),
        );
        self.0.insert("history".into(), Value::Array(history));
    }

    /// A runtime setting (`Cmd`, `Entrypoint`, `ExposedPorts`, …) as raw JSON.
    pub fn runtime_value(&self, key: &str) -> Option<&Value> {
        self.runtime()
            .and_then(|c| c.get(key))
            .filter(|v| !v.is_null())
    }

    pub fn set_runtime_value(&mut self, key: &str, value: Value) {
        self.runtime_mut().insert(key.into(), value);
    }

    pub fn set_created(&mut self, created: &str) {
        self.0.insert("created".into(), json!(created));
    }

    pub fn created(&self) -> Option<String> {
        self.0
            .get("created")
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// Records a new top layer: its diffID in rootfs and a history entry.
    pub fn append_layer(
        &mut self,
        diff_id: &Digest,
        created: &str,
        created_by: &str,
        comment: &str,
    ) {
        let rootfs = self
            .0
            .entry("rootfs")
            .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
        rootfs["type"] = json!("layers");
        match rootfs.get_mut("diff_ids").and_then(Value::as_array_mut) {
            Some(ids) => ids.push(json!(diff_id.to_string())),
            None => rootfs["diff_ids"] = json!([diff_id.to_string()]),
        }
        let history = self.0.entry("history").or_insert_with(|| json!([]));
        if !history.is_array() {
            *history = json!([]);
        }
        history.as_array_mut().expect("array").push(json!({
            "created": created,
            "created_by": created_by,
            "comment": comment,
        }));
        self.0.insert("created".into(), json!(created));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_fields_and_edits_env() {
        let raw = br#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","A=1"],"Healthcheck":{"Test":["NONE"]}},"rootfs":{"type":"layers","diff_ids":[]}}"#;
        let mut c = ImageConfig::parse(raw, "t").unwrap();
        c.set_env("A", "2");
        c.set_env("B", "3");
        c.set_label("x", "y");
        let back: Value = serde_json::from_slice(&c.to_bytes()).unwrap();
        assert_eq!(back["config"]["Healthcheck"]["Test"][0], "NONE");
        assert_eq!(back["config"]["Env"], json!(["PATH=/bin", "A=2", "B=3"]));
        assert_eq!(c.labels()["x"], "y");
    }
}
