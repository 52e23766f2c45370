//! A small SMTP server on loopback that accepts every mail and records it: who it was
//! for, its subject, and its plain-text and HTML parts. Enough of RFC 5321 for lettre.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// One mail as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub recipients: Vec<String>,
    pub data: String,
}

impl Received {
    /// A header's value (the first of that name), unfolded.
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next().unwrap_or_default();
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    }

    pub fn subject(&self) -> String {
        self.header("Subject").unwrap_or_default()
    }

    /// The body of the part with this content type, quoted-printable soft breaks undone.
    pub fn part(&self, content_type: &str) -> Option<String> {
        let start = self.data.find(&format!("Content-Type: {content_type}"))?;
        let rest = &self.data[start..];
        let body_start = rest.find("\r\n\r\n")? + 4;
        let body = &rest[body_start..];
        let end = body.find("\r\n--").unwrap_or(body.len());
        Some(
            body[..end]
                .replace("=\r\n", "")
                .replace("=3D", "=")
                .replace("=20", " "),
        )
    }
}

#[derive(Clone)]
pub struct SmtpSink {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl SmtpSink {
    /// Listens on a free loopback port.
    pub fn start() -> SmtpSink {
        SmtpSink::on(TcpListener::bind("127.0.0.1:0").unwrap())
    }

    /// Listens on `listener` (a port chosen earlier, for a server that comes up late).
    pub fn on(listener: TcpListener) -> SmtpSink {
        let port = listener.local_addr().unwrap().port();
        let sink = SmtpSink {
            url: format!("smtp://127.0.0.1:{port}"),
            received: Arc::default(),
        };
        let received = sink.received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let received = received.clone();
                std::thread::spawn(move || serve(stream, &received));
            }
        });
        sink
    }

    pub fn mails(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn serve(stream: TcpStream, received: &Mutex<Vec<Received>>) {
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut reply = |text: &str| writer.write_all(format!("{text}\r\n").as_bytes());
    if reply("220 sink.test ESMTP").is_err() {
        return;
    }
    let mut recipients = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let answer = match verb.as_str() {
            "EHLO" | "HELO" => "250 sink.test",
            "MAIL" => {
                recipients.clear();
                "250 OK"
            }
            "RCPT" => {
                let to = command
                    .split_once(':')
                    .map(|(_, a)| a.trim().trim_matches(['<', '>']).to_owned())
                    .unwrap_or_default();
                recipients.push(to);
                "250 OK"
            }
            "DATA" => {
                let _ = reply("354 go ahead");
                let mut data = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                received.lock().unwrap().push(Received {
                    recipients: recipients.clone(),
                    data,
                });
                "250 OK queued"
            }
            "QUIT" => {
                let _ = reply("221 bye");
                return;
            }
            "RSET" | "NOOP" => "250 OK",
            _ => "502 not implemented",
        };
        if reply(answer).is_err() {
            return;
        }
    }
}
