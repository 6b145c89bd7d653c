//! Build steps in the farm: an agent says at registration whether it can run them (its probe
//! step passed, or `--no-build-steps`); a job that runs an Oracle installer, a patch only OPatch
//! applies, asks OPatch itself (`--opatchMode opatch`) or brings build commands (their file and
//! the files its COPY reads travel through the artifact store) waits, saying why in `jobs show` and
//! `agents list`, while only agents that cannot are up, and runs on the first agent that can;
//! a job needing no steps runs on the agent without them meanwhile.

use patchfarm_e2e::farm::Farm;
use patchfarm_e2e::opatch::home_with_opatch_zip;
use patchfarm_e2e::oui::shell_installer_zip;
use patchfarm_e2e::tools::steps_available;
use patchfarm_e2e::weblogic::{self, patch_zip, Act, WLS_VERSION};
use patchfarm_e2e::wls::unpack;
use patchfarm_proto::v1::JobState;
use std::time::{Duration, Instant};

const VERSION: &str = "14.1.1.0.0";

/// Caches the fixtures in the farm: a JDK, the `.bin` installer (wls 14.1.1.0.0), an installed
/// home with OPatch (wls 12.2.1.4.0), a patch only OPatch applies and a copy patch.
fn upload(farm: &Farm) {
    let d = farm.dir.path();
    let jdk = d.join("jdk.tar.gz");
    weblogic::fake_jdk_tgz(&jdk, "17.0.99");
    farm.add_installer("jdk", "17", &jdk);
    farm.add_installer("wls", VERSION, &shell_installer_zip(d, VERSION));
    let home = d.join("home-with-opatch.zip");
    home_with_opatch_zip(&home, WLS_VERSION);
    farm.add_installer("wls", WLS_VERSION, &home);
    let make = Act::Make {
        dir: "lib",
        target: "ioracle",
    };
    let copy = Act::Copy {
        dir: "lib",
        name: "fix.txt",
        content: b"fixed",
    };
    for (bug, action) in [("38000001", make), ("38000002", copy)] {
        let zip = patch_zip(d, bug, WLS_VERSION, &[], &[action]);
        farm.ok(&[
            "cache",
            "addPatch",
            "--patchId",
            &format!("{bug}_{WLS_VERSION}"),
            "--path",
            &zip.display().to_string(),
        ]);
    }
}

/// Waits until job `id` says why it waits, naming agent-1; returns the reason.
async fn waiting(farm: &Farm, id: &str) -> String {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let job = farm.job(id).await;
        assert_eq!(job.state(), JobState::Queued, "{job:?}");
        if job.waiting.contains("agent-1") {
            return job.waiting;
        }
        assert!(Instant::now() < until, "no reason given: {job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_run_steps_wait_for_an_agent_that_can_and_say_why() {
    if !steps_available("jobs_that_run_steps_wait_for_an_agent_that_can_and_say_why") {
        return;
    }
    let mut farm = Farm::start(1, &[]);
    farm.cluster.wait_leader(&[1]).await;
    upload(&farm);
    farm.start_agent("agent-1", &["--no-build-steps"]);
    let host = farm.registry.host();
    let tag = |name: &str| format!("{host}/wls/{name}");
    let create = |tag: &str, version: &str, extra: &[&str]| {
        let mut args = vec![
            "create",
            "--tag",
            tag,
            "--fromImage",
            &farm.base,
            "--jdkVersion",
            "17",
            "--version",
            version,
        ];
        args.extend_from_slice(extra);
        farm.submit(&args)
    };
    let (installed, by_make, by_mode) =
        (tag("installed:1"), tag("opatch:make"), tag("opatch:mode"));
    let make_patch = format!("38000001_{WLS_VERSION}");
    let copy_patch = format!("38000002_{WLS_VERSION}");
    // WIT's installer options travel with the job: the files as the job's own.
    let response = farm.dir.path().join("custom.rsp");
    std::fs::write(
        &response,
        "[GENERIC]\nINSTALL_TYPE=WebLogic Server\n# the farm's own\n",
    )
    .unwrap();
    let pointer = farm.dir.path().join("oraInst.loc");
    std::fs::write(
        &pointer,
        "inventory_loc=/u01/inventory\ninst_group=oracle\n",
    )
    .unwrap();
    let (response_arg, pointer_arg) = (
        response.display().to_string(),
        pointer.display().to_string(),
    );
    let installer_id = create(
        &installed,
        VERSION,
        &[
            "--installerResponseFile",
            &response_arg,
            "--inventoryPointerFile",
            &pointer_arg,
            "--inventoryPointerInstallLoc",
            "/u01/pointer",
        ],
    );
    let make_id = create(&by_make, WLS_VERSION, &["--patches", &make_patch]);
    let mode_id = create(
        &by_mode,
        WLS_VERSION,
        &["--patches", &copy_patch, "--opatchMode", "opatch"],
    );
    let commands = farm.dir.path().join("commands.txt");
    std::fs::write(
        &commands,
        "[final-build-commands]\nCOPY files/note.txt /u01/notes/\nRUN echo \"built by $(id -un)\" > /u01/oracle/who.txt\n",
    )
    .unwrap();
    let note = farm.dir.path().join("note.txt");
    std::fs::write(&note, "carried to the agent\n").unwrap();
    let by_commands = tag("commands:1");
    let commands_id = create(
        &by_commands,
        WLS_VERSION,
        &[
            "--additionalBuildCommands",
            &commands.display().to_string(),
            "--additionalBuildFiles",
            &note.display().to_string(),
        ],
    );
    // A job needing no steps runs on agent-1 meanwhile.
    let plain_id = create(&tag("plain:1"), WLS_VERSION, &["--patches", &copy_patch]);
    let plain = farm
        .wait_done(std::slice::from_ref(&plain_id), Duration::from_secs(60))
        .await;
    assert_eq!(
        plain[0].state(),
        JobState::Succeeded,
        "{:?}",
        plain[0].error
    );

    // agent-1 is up and idle, yet these wait, and say why.
    for (id, why) in [
        (
            &installer_id,
            format!("building with wls_{VERSION} runs a build step"),
        ),
        (
            &make_id,
            format!("building with {make_patch} runs a build step"),
        ),
        (&mode_id, "it runs build steps itself".to_string()),
        (&commands_id, "it runs build steps itself".to_string()),
    ] {
        let waiting = waiting(&farm, id).await;
        assert!(
            waiting.contains(&why)
                && waiting.contains("cannot run build steps: turned off with --no-build-steps"),
            "{waiting}"
        );
    }
    let shown = farm.ok(&["jobs", "show", &installer_id]);
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
    let ids = [installer_id, make_id, mode_id, commands_id];
    for job in farm.wait_done(&ids, Duration::from_secs(120)).await {
        assert_eq!(
            job.state(),
            JobState::Succeeded,
            "{:?}; agent-2's log: {}",
            job.error,
            farm.agent_log("agent-2")
        );
        let started = format!("job started job={} ", job.id);
        assert!(farm.agent_log("agent-2").contains(&started));
        assert!(!farm.agent_log("agent-1").contains(&started));
    }
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
    let (_work, rootfs) = unpack(&installed);
    let ran =
        std::fs::read_to_string(rootfs.join("u01/oracle/wlserver/server/bin/installed-by.txt"))
            .unwrap();
    assert!(!ran.starts_with("uid=0 "), "not as root: {ran}");
    assert!(
        ran.contains("-silent -responseFile") && ran.contains("-jreLoc /u01/jdk"),
        "{ran}"
    );
    assert!(ran.contains("-invPtrLoc /u01/pointer/oraInst.loc"), "{ran}");
    let home_file = |p: &str| std::fs::read_to_string(rootfs.join("u01/oracle").join(p)).unwrap();
    assert_eq!(
        home_file("inventory/response-used.rsp"),
        std::fs::read_to_string(&response).unwrap()
    );
    assert_eq!(
        home_file("inventory/pointer-used.loc"),
        std::fs::read_to_string(&pointer).unwrap()
    );
    let registry_xml =
        std::fs::read_to_string(rootfs.join("u01/oracle/inventory/registry.xml")).unwrap();
    assert!(registry_xml.contains(VERSION), "{registry_xml}");
    // The build commands ran with the file their COPY named.
    let (_work, rootfs) = unpack(&by_commands);
    let read = |p: &str| std::fs::read_to_string(rootfs.join(p)).unwrap();
    assert_eq!(read("u01/notes/note.txt"), "carried to the agent\n");
    assert_eq!(read("u01/oracle/who.txt"), "built by oracle\n");
    // OPatch applied the patches of the other two.
    for tag in [&by_make, &by_mode] {
        let (_work, rootfs) = unpack(tag);
        assert!(
            rootfs
                .join("u01/oracle/OPatch/applied-by-opatch.txt")
                .is_file(),
            "{tag}: OPatch applied its patch"
        );
    }
}
