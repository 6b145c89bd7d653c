//! Scheduler choices: affinity with a bounded wait, slots, fairness between submitters.

use super::*;
use patchfarm_proto::v1::{CatalogEntry, HeartbeatRequest, JobSpec};

fn queued(id: &str, submitter: &str, inputs: &[&str]) -> Job {
    Job {
        id: id.into(),
        state: JobState::Queued as i32,
        spec: Some(JobSpec {
            verb: Some(patchfarm_proto::v1::job_spec::Verb::Noop(Default::default())),
            submitter: submitter.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn scheduler(affinity_wait_ms: i64) -> Arc<Scheduler> {
    let s = Scheduler::new(Options {
        affinity_wait_ms,
        ..Default::default()
    });
    let state = sled::Config::new().temporary(true).open().unwrap();
    let state = StateMachine::open(&state).unwrap();
    for (key, digest) in [("jdk_8", "sha256:j8"), ("jdk_11", "sha256:j11")] {
        s.observe(
            &Change::Catalog(CatalogEntry {
                key: key.into(),
                digest: digest.into(),
                ..Default::default()
            }),
            &state,
        );
    }
    for name in ["a", "b", "idle"] {
        s.observe(
            &Change::Agent(Agent {
                name: name.into(),
                slots: 1,
                up: true,
                ..Default::default()
            }),
            &state,
        );
    }
    let cached = |digests: &[&str]| HeartbeatRequest {
        cached_digests: digests.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    };
    s.heartbeat("a", cached(&["sha256:j8"]), 0);
    s.heartbeat("b", cached(&["sha256:j11"]), 0);
    s.heartbeat("idle", cached(&[]), 0);
    for job in [
        queued("job-1", "ann", &["jdk_11"]),
        queued("job-2", "ann", &["jdk_8"]),
    ] {
        s.observe(&Change::Job(Box::new(job)), &state);
    }
    s
}

#[test]
fn jobs_go_where_their_inputs_are_and_idle_agents_get_them_after_the_wait() {
    let s = scheduler(2_000);
    // The idle agent holds nothing; both jobs' inputs sit on free agents: it waits.
    assert!(s.pick("idle", 1, 0, 100).is_empty());
    // Each agent gets the job whose installer it holds, though job-1 is older.
    assert_eq!(s.pick("a", 1, 0, 100), ["job-2"]);
    assert_eq!(s.pick("b", 1, 0, 100), ["job-1"]);
    assert_eq!(s.affinity_counts(), (2, 2));

    // After the affinity wait, an idle agent is not starved.
    let s = scheduler(2_000);
    assert_eq!(s.pick("idle", 1, 0, 2_500), ["job-1"]);
    // Slots: "idle" has one, now reserved.
    assert!(s.pick("idle", 1, 0, 2_500).is_empty());
}

#[test]
fn fairness_serves_the_least_served_submitter_first() {
    let s = scheduler(0);
    let state = sled::Config::new().temporary(true).open().unwrap();
    let state = StateMachine::open(&state).unwrap();
    s.observe(&Change::Job(Box::new(queued("job-3", "bob", &[]))), &state);
    let first = s.pick("idle", 1, 0, 0);
    s.release(&first);
    s.observe(
        &Change::Job(Box::new(Job {
            state: JobState::Succeeded as i32,
            ..queued(&first[0], "", &[])
        })),
        &state,
    );
    let second = s.pick("idle", 1, 0, 0);
    // ann and bob alternate: whoever went first, the other comes next.
    let who = |id: &str| if id == "job-3" { "bob" } else { "ann" };
    assert_ne!(who(&first[0]), who(&second[0]), "{first:?} then {second:?}");
}

#[test]
fn a_campaign_runs_at_most_its_parallel_limit() {
    let s = scheduler(0);
    let state = sled::Config::new().temporary(true).open().unwrap();
    let state = StateMachine::open(&state).unwrap();
    s.observe(
        &Change::Agent(Agent {
            name: "big".into(),
            slots: 8,
            up: true,
            ..Default::default()
        }),
        &state,
    );
    s.heartbeat("big", HeartbeatRequest::default(), 0);
    for i in 0..4 {
        let mut job = queued(&format!("job-c{i}"), "", &[]);
        let spec = job.spec.as_mut().unwrap();
        spec.campaign = "cpu".into();
        spec.campaign_parallel = 2;
        s.observe(&Change::Job(Box::new(job)), &state);
    }
    let picked = s.pick("big", 8, 0, 0);
    let campaign_jobs = picked.iter().filter(|id| id.starts_with("job-c")).count();
    assert_eq!(campaign_jobs, 2, "{picked:?}");
}

#[test]
fn a_job_running_an_installer_waits_for_an_agent_that_can_run_steps_and_says_why() {
    let s = scheduler(0);
    let state = sled::Config::new().temporary(true).open().unwrap();
    let state = StateMachine::open(&state).unwrap();
    s.observe(
        &Change::Catalog(CatalogEntry {
            key: "wls_14.1.1.0.0".into(),
            digest: "sha256:oui".into(),
            runs_steps: true,
            ..Default::default()
        }),
        &state,
    );
    let installs = queued("job-oui", "carl", &["jdk_8", "wls_14.1.1.0.0"]);
    s.observe(&Change::Job(Box::new(installs)), &state);
    // a, b and idle were registered without build steps: none takes it, and it says why.
    for agent in ["a", "b", "idle"] {
        let picked = s.pick(agent, 1, 0, 0);
        assert!(
            !picked.contains(&"job-oui".to_string()),
            "{agent}: {picked:?}"
        );
        s.release(&picked);
    }
    let why = s.waiting("job-oui", 0).expect("a reason");
    assert!(why.contains("wls_14.1.1.0.0"), "{why}");
    assert!(why.contains("idle cannot run build steps"), "{why}");
    // The job without an installer to run may go anywhere: no reason given.
    assert_eq!(s.waiting("job-1", 0), None);

    s.observe(
        &Change::Agent(Agent {
            name: "runner".into(),
            slots: 1,
            up: true,
            steps: Some(patchfarm_proto::v1::BuildSteps {
                available: true,
                unavailable_reason: String::new(),
                network_refused: false,
            }),
            ..Default::default()
        }),
        &state,
    );
    s.heartbeat("runner", HeartbeatRequest::default(), 0);
    assert_eq!(s.waiting("job-oui", 0), None, "an agent may take it now");
    let picked = s.pick("runner", 1, 0, 0);
    assert_eq!(picked, ["job-oui"]);
}

#[test]
fn steps_that_ask_for_the_network_go_only_to_agents_that_give_it() {
    use patchfarm_proto::v1::{BuildCommandsFiles, BuildSteps, CreateJob, InstallSpec};
    let s = scheduler(0);
    let state = sled::Config::new().temporary(true).open().unwrap();
    let state = StateMachine::open(&state).unwrap();
    let runner = |name: &str, network_refused: bool| {
        Change::Agent(Agent {
            name: name.into(),
            slots: 1,
            up: true,
            steps: Some(BuildSteps {
                available: true,
                unavailable_reason: String::new(),
                network_refused,
            }),
            ..Default::default()
        })
    };
    s.observe(&runner("offline", true), &state);
    s.heartbeat("offline", HeartbeatRequest::default(), 0);
    let mut job = queued("job-net", "carl", &["jdk_8"]);
    job.spec.as_mut().unwrap().verb =
        Some(patchfarm_proto::v1::job_spec::Verb::Create(CreateJob {
            tag: "registry.example:5000/wls/net:1".into(),
            from_image: "registry.example:5000/os:1".into(),
            install: Some(InstallSpec {
                r#type: "wls".into(),
                version: "14.1.1.0.0".into(),
                jdk_version: "8".into(),
                chown: "oracle:oracle".into(),
                wdt: Some(patchfarm_proto::v1::WdtFiles {
                    version: "none".into(),
                    ..Default::default()
                }),
                patches: Some(Default::default()),
                ..Default::default()
            }),
            build_commands: Some(BuildCommandsFiles {
                file: "commands.txt".into(),
                files: Vec::new(),
            }),
            step_network: true,
            platforms: vec!["linux/amd64".into()],
            ..Default::default()
        }));
    if let Err(e) = patchfarm_jobs::Job::from_spec(job.spec.as_ref().unwrap()) {
        panic!("the test's spec is valid: {e}");
    }
    s.observe(&Change::Job(Box::new(job)), &state);
    for agent in ["a", "offline"] {
        let picked = s.pick(agent, 1, 0, 0);
        assert!(!picked.contains(&"job-net".to_string()), "{agent} took it");
        s.release(&picked);
    }
    let why = s.waiting("job-net", 0).expect("a reason");
    assert!(
        why.contains("offline gives build steps no network")
            && why.contains("a cannot run build steps"),
        "{why}"
    );
    s.observe(&runner("online", false), &state);
    s.heartbeat("online", HeartbeatRequest::default(), 0);
    assert_eq!(s.pick("online", 1, 0, 0), ["job-net"]);
}

#[test]
fn an_agent_coming_back_up_is_not_marked_down_by_its_heartbeat_from_before() {
    let s = scheduler(0);
    let state = StateMachine::open(&sled::Config::new().temporary(true).open().unwrap()).unwrap();
    let long_ago = crate::raft::now_ms() - 10 * s.ttl_ms();
    s.heartbeat("a", HeartbeatRequest::default(), long_ago);
    let agent = |up| {
        Change::Agent(Agent {
            name: "a".into(),
            slots: 1,
            up,
            ..Default::default()
        })
    };
    s.observe(&agent(false), &state);
    // Registered again: the record is up before the registration's heartbeat is recorded.
    s.observe(&agent(true), &state);
    let (down, _) = s.lapsed(crate::raft::now_ms());
    assert!(!down.contains(&"a".to_string()), "{down:?}");
}

#[test]
fn heartbeats_carry_cache_changes_once_the_leader_holds_the_whole_list() {
    let s = scheduler(0);
    let cached = |name: &str| {
        let view = s.lock();
        let mut held: Vec<String> = view.agents[name]
            .live
            .as_ref()
            .unwrap()
            .cached
            .iter()
            .cloned()
            .collect();
        held.sort();
        held
    };
    let delta = |added: &[&str], removed: &[&str]| HeartbeatRequest {
        cached_delta: true,
        cached_added: added.iter().map(|d| d.to_string()).collect(),
        cached_removed: removed.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    };
    // "a" sent its whole list (sha256:j8) when the scheduler was set up: changes apply to it.
    let answer = s.heartbeat("a", delta(&["sha256:j11"], &["sha256:j8"]), 1);
    assert!(!answer.send_cache);
    assert_eq!(cached("a"), ["sha256:j11"]);
    let answer = s.heartbeat("a", delta(&[], &[]), 2);
    assert!(!answer.send_cache);
    assert_eq!(cached("a"), ["sha256:j11"]);
    // A leader that never had the list (a new one, or after a registration) asks for it and
    // ignores the changes it cannot place.
    s.lock().agents.get_mut("b").unwrap().live = None;
    let answer = s.heartbeat("b", delta(&["sha256:x"], &[]), 3);
    assert!(answer.send_cache);
    assert!(cached("b").is_empty());
    let whole = HeartbeatRequest {
        cached_digests: vec!["sha256:j11".into(), "sha256:x".into()],
        ..Default::default()
    };
    assert!(!s.heartbeat("b", whole, 4).send_cache);
    assert_eq!(cached("b"), ["sha256:j11", "sha256:x"]);
}

#[test]
fn registry_only_jobs_are_leased_in_batches_beside_the_slots() {
    use patchfarm_proto::v1::{job_spec::Verb, rebase_job::Target, RebaseJob};
    let s = scheduler(0);
    let state = sled::Config::new().temporary(true).open().unwrap();
    let state = StateMachine::open(&state).unwrap();
    for (name, registry_slots) in [("batch", 4), ("older", 0)] {
        s.observe(
            &Change::Agent(Agent {
                name: name.into(),
                slots: 1,
                registry_slots,
                up: true,
                ..Default::default()
            }),
            &state,
        );
        s.heartbeat(name, HeartbeatRequest::default(), 0);
    }
    for i in 0..6 {
        let mut job = queued(&format!("rebase-{i}"), "ops", &[]);
        job.spec.as_mut().unwrap().verb = Some(Verb::Rebase(RebaseJob {
            source_image: format!("registry.example/domains/d{i}:1"),
            tag: format!("registry.example/domains/d{i}:2"),
            target: Some(Target::TargetImage("registry.example/wls/base:2".into())),
            platform: "linux/amd64".into(),
            ..Default::default()
        }));
        s.observe(&Change::Job(Box::new(job)), &state);
    }
    let picked = s.pick("batch", 1, 4, 0);
    let rebases = picked.iter().filter(|id| id.starts_with("rebase-")).count();
    assert_eq!(
        (picked.len(), rebases),
        (5, 4),
        "one job for the slot, four rebases beside it: {picked:?}"
    );
    assert!(
        s.pick("batch", 1, 4, 0).is_empty(),
        "the slot and the registry slots are taken"
    );
    let picked = s.pick("older", 1, 4, 0);
    assert_eq!(
        picked.len(),
        1,
        "an agent without registry slots runs rebases in its slots: {picked:?}"
    );
    s.release(&["rebase-0".to_string()]);
    let picked = s.pick("batch", 0, 4, 0);
    assert_eq!(picked.len(), 1, "one registry slot freed: {picked:?}");
}
