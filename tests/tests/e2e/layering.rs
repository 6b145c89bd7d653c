//! The workspace's layering, read from `cargo metadata`: arrows only point down
//! (engine <- jobs <- {agent, cli}; proto <- client <- {agent, cli}), the agent links neither
//! the coordinator server nor raft nor sled, and no crate depends on the coordinator server.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

struct Graph {
    /// Package id → (name, ids of its normal and build dependencies).
    nodes: HashMap<String, (String, Vec<String>)>,
    /// Workspace package name → id.
    members: HashMap<String, String>,
}

fn graph() -> Graph {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // This machine's platform only: the others' crates are neither linked nor downloaded here.
    let rustc = Command::new("rustc")
        .arg("-vV")
        .output()
        .expect("rustc -vV");
    let host = String::from_utf8_lossy(&rustc.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
        .expect("rustc names its host");
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .args(["--filter-platform", &host])
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: HashMap<String, String> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let members = metadata["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|id| {
            let id = id.as_str().unwrap().to_string();
            (names[&id].clone(), id)
        })
        .collect();
    let nodes = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            let id = node["id"].as_str().unwrap().to_string();
            // Only what gets linked or runs at build time: dev-dependencies are the tests'.
            let deps = node["deps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| {
                    d["dep_kinds"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|k| k["kind"].as_str() != Some("dev"))
                })
                .map(|d| d["pkg"].as_str().unwrap().to_string())
                .collect();
            (id.clone(), (names[&id].clone(), deps))
        })
        .collect();
    Graph { nodes, members }
}

impl Graph {
    /// Names of every crate `member` pulls in (itself excluded).
    fn closure(&self, member: &str) -> BTreeSet<String> {
        let start = &self.members[member];
        let mut seen = BTreeSet::new();
        let mut todo = vec![start.clone()];
        let mut names = BTreeSet::new();
        while let Some(id) = todo.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            let (name, deps) = &self.nodes[&id];
            if &id != start {
                names.insert(name.clone());
            }
            todo.extend(deps.iter().cloned());
        }
        names
    }
}

fn assert_free_of(graph: &Graph, member: &str, forbidden: &[&str]) {
    let closure = graph.closure(member);
    let found: Vec<&&str> = forbidden.iter().filter(|f| closure.contains(**f)).collect();
    assert!(
        found.is_empty(),
        "{member} must not depend on {found:?} (see DESIGN's module map)"
    );
}

#[test]
fn the_agent_links_the_engine_jobs_and_client_never_the_coordinator() {
    let graph = graph();
    let agent = graph.closure("patchfarm-agent");
    for needed in [
        "patchfarm-engine",
        "patchfarm-jobs",
        "patchfarm-client",
        "patchfarm-proto",
    ] {
        assert!(
            agent.contains(needed),
            "the agent links {needed}: {agent:?}"
        );
    }
    assert_free_of(
        &graph,
        "patchfarm-agent",
        &["patchfarm-coordinator", "patchfarm-cli", "raft", "sled"],
    );
}

#[test]
fn arrows_only_point_down() {
    let graph = graph();
    // The engine knows nothing of the farm's wire or consensus.
    assert_free_of(
        &graph,
        "patchfarm-engine",
        &["patchfarm-proto", "tonic", "raft", "sled", "patchfarm-jobs"],
    );
    assert_free_of(
        &graph,
        "patchfarm-jobs",
        &["patchfarm-client", "patchfarm-coordinator", "raft", "sled"],
    );
    assert_free_of(
        &graph,
        "patchfarm-client",
        &["patchfarm-engine", "patchfarm-coordinator", "raft", "sled"],
    );
    assert_free_of(
        &graph,
        "patchfarm-cli",
        &["patchfarm-coordinator", "raft", "sled"],
    );
    // The coordinator server is a leaf: no workspace crate links it.
    for member in graph.members.keys() {
        if member != "patchfarm-coordinator" {
            assert_free_of(&graph, member, &["patchfarm-coordinator"]);
        }
    }
}
