//! A fault-injecting HTTP/1.1 proxy in front of a real registry: it forwards one request per
//! connection (forcing `Connection: close`) and, for requests matching a rule, answers an error
//! status, drops the connection or stalls instead — to test retries against real failures.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// What to do to a matching request.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this HTTP status (after reading the request body).
    Status(u16),
    /// Close the connection without answering.
    Drop,
    /// Answer nothing and keep the connection open until the client gives up (a stalled
    /// registry).
    Stall,
}

/// Inject `fault` into the first `times` requests whose request line has `method` and contains `path_part`.
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: &'static str,
    pub path_part: &'static str,
    pub fault: Fault,
    pub times: usize,
}

pub struct FaultProxy {
    pub addr: SocketAddr,
    injected: Arc<AtomicUsize>,
    /// Bytes clients sent through the proxy (request heads and bodies).
    sent: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FaultProxy {
    pub fn start(upstream: SocketAddr, rules: Vec<Rule>) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let rules = Arc::new(Mutex::new(rules));
        let injected = Arc::new(AtomicUsize::new(0));
        let sent = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (inj, stop2, sent2) = (injected.clone(), stop.clone(), sent.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = client else { continue };
                let (rules, inj, sent) = (rules.clone(), inj.clone(), sent2.clone());
                std::thread::spawn(move || {
                    let _ = serve(client, upstream, &rules, &inj, &sent);
                });
            }
        });
        FaultProxy {
            addr,
            injected,
            sent,
            stop,
        }
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> usize {
        self.injected.load(Ordering::SeqCst)
    }

    /// Bytes clients have sent through the proxy so far.
    pub fn bytes_sent(&self) -> usize {
        self.sent.load(Ordering::SeqCst)
    }

    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wake the accept loop
    }
}

fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    rules: &Mutex<Vec<Rule>>,
    injected: &AtomicUsize,
    sent: &AtomicUsize,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("connection:") {
            continue;
        }
        head.push(line);
    }
    let request_line = head.first().cloned().unwrap_or_default();
    let fault = {
        let mut rules = rules.lock().unwrap();
        rules
            .iter_mut()
            .find(|r| {
                r.times > 0
                    && request_line.starts_with(&format!("{} ", r.method))
                    && request_line.contains(r.path_part)
            })
            .map(|r| {
                r.times -= 1;
                r.fault.clone()
            })
    };
    let mut client = client;
    if let Some(fault) = fault {
        injected.fetch_add(1, Ordering::SeqCst);
        std::io::copy(
            &mut (&mut reader).take(content_length as u64),
            &mut std::io::sink(),
        )?;
        if let Fault::Stall = fault {
            // Hold the connection: returns when the client closes it.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
            return Ok(());
        }
        if let Fault::Status(code) = fault {
            write!(
                client,
                "HTTP/1.1 {code} Injected\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
        }
        return client.shutdown(std::net::Shutdown::Both);
    }
    let mut server = TcpStream::connect(upstream)?;
    for line in &head {
        server.write_all(line.as_bytes())?;
        sent.fetch_add(line.len(), Ordering::SeqCst);
    }
    server.write_all(b"Connection: close\r\n\r\n")?;
    let body = std::io::copy(&mut (&mut reader).take(content_length as u64), &mut server)?;
    sent.fetch_add(body as usize + 2, Ordering::SeqCst);
    std::io::copy(&mut server, &mut client)?;
    client.shutdown(std::net::Shutdown::Both)
}
