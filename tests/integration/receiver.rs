//! Real HTTP receivers on loopback that behave, or misbehave, on purpose.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a receiver answers.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Status, extra headers, body.
    Answer(u16, Vec<(String, String)>, Vec<u8>),
    /// Accepts the request and never answers.
    Hang,
    /// Answers 200 and then sends one byte a second.
    Drip,
    /// Answers 200 after a pause.
    Slow(Duration),
    /// Reads a few bytes of the request and closes with the rest unread, which makes the
    /// kernel answer with a TCP reset.
    Reset,
    /// Answers with the status the function gives for the request's body, after a pause.
    Decide(Decider, Duration),
}

/// What decides the status of each request, from its body.
pub type Decide = dyn Fn(&[u8]) -> u16 + Send + Sync;

/// A status for each request body, decided by the test.
#[derive(Clone)]
pub struct Decider(pub Arc<Decide>);

impl std::fmt::Debug for Decider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Decider")
    }
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub at: Instant,
}

#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub received: Arc<Mutex<Vec<Received>>>,
    behaviour: Arc<Mutex<Behaviour>>,
    /// Requests being answered now, and the most there ever were at once.
    active: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Receiver {
    pub fn start(behaviour: Behaviour) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let receiver = Receiver {
            url,
            received: Arc::default(),
            behaviour: Arc::new(Mutex::new(behaviour)),
            active: Arc::default(),
            peak: Arc::default(),
        };
        let shared = receiver.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        receiver
    }

    pub fn answering(status: u16) -> Receiver {
        Receiver::start(Behaviour::Answer(status, Vec::new(), Vec::new()))
    }

    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }

    /// How many requests arrived (without copying them).
    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn requests(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The most requests this receiver was answering at the same time.
    pub fn peak_concurrency(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    fn serve(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        if matches!(*self.behaviour.lock().unwrap(), Behaviour::Reset) {
            let mut first = [0u8; 16];
            let _ = stream.read_exact(&mut first);
            return;
        }
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 8192];
        let header_end = loop {
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                break end;
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
        let headers: HashMap<String, String> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = buffer[header_end + 4..].to_vec();
        while body.len() < length {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
            }
        }
        self.received.lock().unwrap().push(Received {
            headers,
            body: body.clone(),
            at: Instant::now(),
        });
        let now_active = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now_active, Ordering::SeqCst);
        let behaviour = self.behaviour.lock().unwrap().clone();
        // The count drops before the answer's last bytes go out: once the client has them
        // it may start its next request at once, and that one must not overlap this one.
        let done = || {
            self.active.fetch_sub(1, Ordering::SeqCst);
        };
        self.answer(&mut stream, behaviour, &body, done);
    }

    fn answer(&self, stream: &mut TcpStream, behaviour: Behaviour, body: &[u8], done: impl FnOnce()) {
        match behaviour {
            Behaviour::Decide(Decider(decide), pause) => {
                let status = decide(body);
                std::thread::sleep(pause);
                self.answer(
                    stream,
                    Behaviour::Answer(status, Vec::new(), Vec::new()),
                    body,
                    done,
                );
            }
            Behaviour::Answer(status, extra, body) => {
                done();
                let mut response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                    body.len()
                );
                for (k, v) in extra {
                    response.push_str(&format!("{k}: {v}\r\n"));
                }
                response.push_str("\r\n");
                let _ = stream.write_all(response.as_bytes());
                let _ = stream.write_all(&body);
            }
            Behaviour::Hang => {
                std::thread::sleep(Duration::from_secs(60));
                done();
            }
            Behaviour::Slow(pause) => {
                std::thread::sleep(pause);
                done();
                let _ =
                    stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
            Behaviour::Reset => done(),
            Behaviour::Drip => {
                done();
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n");
                for _ in 0..60 {
                    if stream.write_all(b"x").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An HTTPS endpoint whose certificate is self-signed (`tests/fixtures/self-signed.crt`,
/// for 127.0.0.1): a client that checks certificates must refuse it. Returns its URL.
pub fn tls_with_self_signed_certificate() -> String {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    hookboard::delivery::http::install_crypto();
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let cert = CertificateDer::from_pem_file(fixtures.join("self-signed.crt")).unwrap();
    let key = PrivateKeyDer::from_pem_file(fixtures.join("self-signed.key")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let config = config.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let Ok(mut connection) = rustls::ServerConnection::new(config) else {
                    return;
                };
                // The handshake ends when the client refuses the certificate.
                let mut tls = rustls::Stream::new(&mut connection, &mut stream);
                let mut buffer = [0u8; 1024];
                let _ = tls.read(&mut buffer);
            });
        }
    });
    url
}
