//! Build steps in the farm: an agent says at registration whether it can run them (its probe
//! step passed, or `--no-build-steps`); a job that runs an Oracle installer waits, saying why in
//! `jobs show` and `agents list`, while only agents that cannot are up, and runs on the first
//! agent that can.

use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::oui::shell_installer_zip;
use patchfarm_e2e::tools::steps_available;
use patchfarm_e2e::weblogic;
use patchfarm_e2e::wls::unpack;
use patchfarm_proto::v1::JobState;
use std::time::{Duration, Instant};

const VERSION: &str = "14.1.1.0.0";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_running_an_installer_waits_for_an_agent_that_can_run_steps() {
    if !steps_available("a_job_running_an_installer_waits_for_an_agent_that_can_run_steps") {
        return;
    }
    let mut farm = Farm::start(1, &[]);
    farm.cluster.wait_leader(&[1]).await;
    let jdk = farm.dir.path().join("jdk.tar.gz");
    weblogic::fake_jdk_tgz(&jdk, "17.0.99");
    farm.add_installer("jdk", "17", &jdk);
    let installer = shell_installer_zip(farm.dir.path(), VERSION);
    farm.add_installer("wls", VERSION, &installer);

    farm.start_agent("agent-1", &["--no-build-steps"]);
    let tag = format!("{}/wls/installed:1", farm.registry.host());
    let id = farm.submit(&[
        "create",
        "--tag",
        &tag,
        "--fromImage",
        &farm.base,
        "--jdkVersion",
        "17",
        "--version",
        VERSION,
    ]);

    // agent-1 is up and idle, yet the job waits, and says why.
    let until = Instant::now() + Duration::from_secs(30);
    let waiting = loop {
        let job = farm.job(&id).await;
        assert_eq!(job.state(), JobState::Queued, "{job:?}");
        if job.waiting.contains("agent-1") {
            break job.waiting;
        }
        assert!(Instant::now() < until, "no reason given: {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        waiting.contains(&format!("wls_{VERSION}"))
            && waiting.contains("cannot run build steps: turned off with --no-build-steps"),
        "{waiting}"
    );
    let shown = farm.ok(&["jobs", "show", &id]);
    assert!(
        shown.contains("waiting: no up agent can take it"),
        "{shown}"
    );
    let agents = farm.ok(&["agents", "list"]);
    assert!(
        agents.contains("no: turned off with --no-build-steps"),
        "{agents}"
    );

    farm.start_agent("agent-2", &[]);
    let done = farm
        .wait_done(std::slice::from_ref(&id), Duration::from_secs(120))
        .await;
    assert_eq!(
        done[0].state(),
        JobState::Succeeded,
        "{:?}; agent-2's log: {}",
        done[0].error,
        farm.agent_log("agent-2")
    );
    let started = format!("job started job={id} ");
    assert!(farm.agent_log("agent-2").contains(&started));
    assert!(!farm.agent_log("agent-1").contains(&started));
    let agents = farm.ok(&["agents", "list", "--json"]);
    let agents: serde_json::Value = serde_json::from_str(&agents).unwrap();
    let runner = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "agent-2")
        .unwrap();
    assert_eq!(runner["buildSteps"], true, "{agents}");

    // The installer ran inside the image, as the Oracle Home's owner, with WIT's arguments.
    let (_work, rootfs) = unpack(&tag);
    let ran =
        std::fs::read_to_string(rootfs.join("u01/oracle/wlserver/server/bin/installed-by.txt"))
            .unwrap();
    assert!(!ran.starts_with("uid=0 "), "not as root: {ran}");
    assert!(
        ran.contains("-silent -responseFile") && ran.contains("-jreLoc /u01/jdk"),
        "{ran}"
    );
    let registry_xml =
        std::fs::read_to_string(rootfs.join("u01/oracle/inventory/registry.xml")).unwrap();
    assert!(registry_xml.contains(VERSION), "{registry_xml}");
}
