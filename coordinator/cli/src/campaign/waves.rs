//! Rollout waves: nobody patches a whole fleet at once. A campaign's `rollout.waves` orders its
//! domains — named namespaces or domains first (a canary), then batches of N — and the report
//! and `campaign rollout-plan` roll them wave by wave, each gated on the operator saying the
//! previous wave's Domains finished rolling (`observedGeneration == generation`, `Completed`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// `rollout:` in the campaign file.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Rollout {
    pub waves: Vec<Wave>,
}

/// One wave: the domains it names (by namespace, or `NAMESPACE/NAME`), or — with `batchSize` —
/// every domain still left, N per wave.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Wave {
    pub name: String,
    #[serde(default)]
    pub namespaces: Vec<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    #[serde(default)]
    pub batch_size: Option<u32>,
}

impl Rollout {
    /// What is wrong with the waves, each naming where.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, wave) in self.waves.iter().enumerate() {
            let at = format!("rollout.waves[{i}] ({})", wave.name);
            if wave.name.is_empty() || !names.insert(wave.name.as_str()) {
                problems.push(format!("{at}: each wave needs a name of its own"));
            }
            let selects = !wave.namespaces.is_empty() || !wave.domains.is_empty();
            match (selects, wave.batch_size) {
                (false, None) => problems.push(format!(
                    "{at}: name namespaces, domains (NAMESPACE/NAME) or a batchSize"
                )),
                (true, Some(_)) => problems.push(format!(
                    "{at}: a wave names its domains or takes the rest in batches, not both"
                )),
                (_, Some(0)) => problems.push(format!("{at}: batchSize must be 1 or more")),
                _ => {}
            }
            for domain in &wave.domains {
                if domain.split('/').count() != 2 || domain.split('/').any(str::is_empty) {
                    problems.push(format!("{at}: domain {domain:?}: expected NAMESPACE/NAME"));
                }
            }
        }
        problems
    }
}

/// The waves over `domains` (the report's entries, in order): `(name, indexes)`, none empty.
/// Domains no wave takes go last, in a wave of their own; without a rollout, one wave holds all.
pub fn assign(rollout: Option<&Rollout>, domains: &[Value]) -> Vec<(String, Vec<usize>)> {
    let key = |d: &Value| {
        (
            d["namespace"].as_str().unwrap_or("").to_string(),
            d["name"].as_str().unwrap_or("").to_string(),
        )
    };
    let mut taken = vec![false; domains.len()];
    let mut waves = Vec::new();
    for wave in rollout.map(|r| r.waves.as_slice()).unwrap_or_default() {
        let left: Vec<usize> = (0..domains.len()).filter(|&i| !taken[i]).collect();
        match wave.batch_size {
            Some(size) => {
                let chunks: Vec<Vec<usize>> = left
                    .chunks(size.max(1) as usize)
                    .map(<[usize]>::to_vec)
                    .collect();
                let several = chunks.len() > 1;
                for (n, chunk) in chunks.into_iter().enumerate() {
                    let name = if several {
                        format!("{}-{}", wave.name, n + 1)
                    } else {
                        wave.name.clone()
                    };
                    waves.push((name, chunk));
                }
            }
            None => {
                let picked: Vec<usize> = left
                    .into_iter()
                    .filter(|&i| {
                        let (namespace, name) = key(&domains[i]);
                        wave.namespaces.contains(&namespace)
                            || wave.domains.contains(&format!("{namespace}/{name}"))
                    })
                    .collect();
                if !picked.is_empty() {
                    waves.push((wave.name.clone(), picked));
                }
            }
        }
        for (_, indexes) in &waves {
            for &i in indexes {
                taken[i] = true;
            }
        }
    }
    let rest: Vec<usize> = (0..domains.len()).filter(|&i| !taken[i]).collect();
    if !rest.is_empty() {
        let name = if waves.is_empty() { "all" } else { "rest" };
        waves.push((name.to_string(), rest));
    }
    waves
}

/// The report's `waves`: each wave's domains as `NAMESPACE/NAME`.
pub fn report_waves(rollout: Option<&Rollout>, domains: &[Value]) -> Value {
    let waves: Vec<Value> = assign(rollout, domains)
        .into_iter()
        .map(|(name, indexes)| {
            let members: Vec<String> = indexes
                .iter()
                .map(|&i| {
                    format!(
                        "{}/{}",
                        domains[i]["namespace"].as_str().unwrap_or(""),
                        domains[i]["name"].as_str().unwrap_or("")
                    )
                })
                .collect();
            json!({"name": name, "domains": members})
        })
        .collect();
    Value::Array(waves)
}

/// `campaign rollout-plan`: a bash script that patches each wave's Domains, waits until the
/// operator reports each rolled, and (on a terminal) asks before the next wave.
pub fn script(report: &Value) -> String {
    let domains = report["domains"].as_array().cloned().unwrap_or_default();
    let waves = report["waves"].as_array().cloned().unwrap_or_default();
    let campaign = report["campaign"].as_str().unwrap_or("");
    let mut out = format!(
        r#"#!/usr/bin/env bash
# Rollout of campaign {campaign}, wave by wave: each wave's Domains get their new image, then the
# script waits until the operator reports every one rolled (status.observedGeneration equals
# metadata.generation and the Completed condition is True) before the next wave.
set -euo pipefail

rolled() {{ # NAMESPACE DOMAIN
  local generation observed completed
  generation=$(kubectl get domain "$2" -n "$1" -o jsonpath='{{.metadata.generation}}')
  observed=$(kubectl get domain "$2" -n "$1" -o jsonpath='{{.status.observedGeneration}}')
  completed=$(kubectl get domain "$2" -n "$1" -o jsonpath='{{.status.conditions[?(@.type=="Completed")].status}}')
  [ "$generation" = "$observed" ] && [ "$completed" = "True" ]
}}

wait_rolled() {{ # NAMESPACE DOMAIN
  until rolled "$1" "$2"; do
    echo "  waiting for domain $2 in $1 to finish rolling"
    sleep "${{ROLL_POLL_SECONDS:-15}}"
  done
}}
"#
    );
    let total = waves.len();
    for (n, wave) in waves.iter().enumerate() {
        let name = wave["name"].as_str().unwrap_or("");
        out.push_str(&format!("\necho \"wave {}/{total}: {name}\"\n", n + 1));
        let members: Vec<&Value> = wave["domains"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                domains.iter().find(|d| {
                    format!(
                        "{}/{}",
                        d["namespace"].as_str().unwrap_or(""),
                        d["name"].as_str().unwrap_or("")
                    ) == m.as_str().unwrap_or("")
                })
            })
            .collect();
        for d in &members {
            match d["kubectl"].as_str() {
                Some(patch) => out.push_str(&format!("{patch}\n")),
                None => out.push_str(&format!(
                    "echo \"  {}/{}: no new image (its job did not succeed); left as it is\"\n",
                    d["namespace"].as_str().unwrap_or(""),
                    d["name"].as_str().unwrap_or("")
                )),
            }
        }
        for d in members.iter().filter(|d| d["kubectl"].is_string()) {
            out.push_str(&format!(
                "wait_rolled {} {}\n",
                d["namespace"].as_str().unwrap_or(""),
                d["domainResource"].as_str().unwrap_or("")
            ));
        }
        if n + 1 < total {
            out.push_str(&format!(
                "if [ -t 0 ]; then read -r -p \"wave {name} rolled; Enter starts the next wave, Ctrl-C stops here \" _; fi\n"
            ));
        }
    }
    out.push_str("\necho \"every wave rolled\"\n");
    out
}
