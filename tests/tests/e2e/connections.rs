//! A coordinator's listener is bounded: thousands of sockets opened and left idle, or TLS
//! handshakes begun and never finished, neither exhaust its descriptors nor keep real clients
//! out for longer than the idle timeout.

use patchfarm_e2e::cluster::Cluster;
use patchfarm_proto::v1::ClusterStatusRequest;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sockets_and_stalled_handshakes_are_capped_and_closed() {
    let cluster =
        Cluster::start_with_args(1, &["--max-connections", "256", "--idle-timeout-secs", "1"]);
    cluster.wait_leader(&[1]).await;
    let pid = cluster.pid(1).unwrap();
    let descriptors = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let before = descriptors();

    // 2,000 sockets opened and left; every other one sends the start of a TLS ClientHello.
    let address = cluster.address(1);
    let mut idle = Vec::new();
    let opened = Instant::now();
    for i in 0..2000 {
        let mut socket = TcpStream::connect(&address).unwrap();
        if i % 2 == 0 {
            let _ = socket.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
        }
        idle.push(socket);
    }
    eprintln!("opened 2,000 sockets in {:?}", opened.elapsed());
    let held = descriptors();
    assert!(
        held <= before + 256 + 16,
        "the coordinator holds {held} descriptors with 2,000 sockets open at it (had {before}; cap 256)"
    );

    // A real client is served once the idle sockets time out.
    let client = cluster.client();
    let started = Instant::now();
    let status = loop {
        let asked = client
            .call(|mut c| async move { c.cluster_status(ClusterStatusRequest {}).await })
            .await;
        match asked {
            Ok(status) => break status,
            Err(e) if started.elapsed() < Duration::from_secs(30) => {
                eprintln!("not yet served: {e}");
            }
            Err(e) => panic!("a real client was kept out: {e}"),
        }
    };
    assert_eq!(status.leader, 1);
    eprintln!("served after {:?}", started.elapsed());

    // Every idle socket was closed by the coordinator (end of stream or reset, not silence).
    let mut buf = [0u8; 64];
    for socket in &mut idle {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let read = socket.read(&mut buf);
        assert!(
            !matches!(&read, Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)),
            "an idle socket was left open: {read:?}"
        );
    }
    eprintln!("all closed after {:?}", started.elapsed());
    drop(idle);
    // Its descriptors came back (a few may belong to the client just served).
    let after = descriptors();
    assert!(
        after <= before + 16,
        "{after} descriptors after, {before} before"
    );
}
