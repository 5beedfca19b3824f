//! A minimal DNS stub resolver over UDP, for SMTP's client host name lookup (`resolver`,
//! reference §7.2): PTR for the client address, then A and AAAA to confirm the name.
//!
//! nginx talks to the configured name servers itself instead of using the system
//! resolver, so `/etc/hosts` and nsswitch play no part; we do the same. One query is
//! sent to the first server and resent to the next one every [`RESEND`] until an
//! answer with our id and question arrives or the `resolver_timeout` runs out. Like
//! nginx, a successful answer without any record counts as "Host not found".
//!
//! An answer nginx's resolver (`ngx_resolver_process_a`, `_ptr`) would not take is
//! ignored as it ignores it, so the lookup goes on waiting (and resending) and, if no
//! server answers better, times out, which SMTP reports as `[TEMPUNAVAIL]`: an address
//! record of the other family (an A record in the answer to an AAAA query), an A record
//! that is not 4 bytes, a record of another class, an A/AAAA answer with neither an
//! address nor a CNAME, a PTR answer without a PTR record. The reason is kept
//! ([`Lookup::ignored`]) for the error log, in nginx's words. A CNAME without
//! addresses is followed, as nginx follows it (at most [`MAX_RECURSION`] times).

use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::time::{timeout_at, Instant};

/// How often an unanswered query is sent again (to the next server).
const RESEND: Duration = Duration::from_secs(1);
/// A UDP DNS message without EDNS is at most 512 bytes; allow for larger ones.
const MAX_MESSAGE: usize = 4096;
const TYPE_A: u16 = 1;
const TYPE_CNAME: u16 = 5;
const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;
/// CNAMEs followed before a name counts as not found (`NGX_RESOLVER_MAX_RECURSION`).
pub const MAX_RECURSION: usize = 50;

/// Why a lookup failed, with nginx's numbering for its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsError {
    /// RCODE 1..=5 (3 = NXDOMAIN, also used for an empty answer).
    Rcode(u8),
    TimedOut,
}

impl DnsError {
    pub const NXDOMAIN: DnsError = DnsError::Rcode(3);

    /// `(N: text)` as nginx's `ngx_resolver_strerror` words it.
    pub fn describe(self) -> String {
        let (code, text) = match self {
            DnsError::TimedOut => (110, "Operation timed out"),
            DnsError::Rcode(code) => (
                i32::from(code),
                match code {
                    1 => "Format error",
                    2 => "Server failure",
                    3 => "Host not found",
                    4 => "Unimplemented",
                    5 => "Operation refused",
                    _ => "Unknown error",
                },
            ),
        };
        format!("{code}: {text}")
    }
}

/// A lookup's result and the answers it ignored on the way (nginx's error log lines:
/// `unexpected A record in DNS response`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup<T> {
    pub result: Result<T, DnsError>,
    pub ignored: Vec<String>,
}

/// The name a PTR lookup of `addr` gives (the first PTR record, without the final dot).
pub async fn reverse(servers: &[SocketAddr], addr: IpAddr, limit: Duration) -> Lookup<String> {
    let deadline = Instant::now() + limit;
    let mut ignored = Vec::new();
    let reply = query(
        servers,
        &reverse_name(addr),
        TYPE_PTR,
        deadline,
        &mut ignored,
    )
    .await;
    let result = match reply {
        Ok(Reply::Found(answers)) => answers
            .into_iter()
            .find_map(|a| match a {
                Answer::Name(name) => Some(name),
                Answer::Addr(_) => None,
            })
            .ok_or(DnsError::NXDOMAIN),
        Ok(Reply::Cname(_)) => Err(DnsError::NXDOMAIN),
        Err(e) => Err(e),
    };
    Lookup { result, ignored }
}

/// The addresses of `name`, as nginx's `ngx_resolve_name` finds them: an A query when
/// `ipv4`, an AAAA query when `ipv6` (`resolver ... ipv4=off ipv6=off`), sent together;
/// either one timing out or failing fails the lookup, an empty answer is no addresses,
/// and no address at all is "Host not found". A CNAME-only answer is followed.
pub async fn forward(
    servers: &[SocketAddr],
    name: &str,
    ipv4: bool,
    ipv6: bool,
    limit: Duration,
) -> Lookup<Vec<IpAddr>> {
    let deadline = Instant::now() + limit;
    let mut ignored = Vec::new();
    let mut name = name.to_owned();
    for _ in 0..=MAX_RECURSION {
        let (mut notes4, mut notes6) = (Vec::new(), Vec::new());
        let ask = |qtype, on: bool, notes| {
            let name = name.clone();
            async move {
                match on {
                    true => Some(query(servers, &name, qtype, deadline, notes).await),
                    false => None,
                }
            }
        };
        let (a, aaaa) = tokio::join!(
            ask(TYPE_A, ipv4, &mut notes4),
            ask(TYPE_AAAA, ipv6, &mut notes6)
        );
        ignored.append(&mut notes4);
        ignored.append(&mut notes6);
        let replies: Vec<Result<Reply, DnsError>> = [a, aaaa].into_iter().flatten().collect();
        match combine(replies) {
            Step::Done(result) => return Lookup { result, ignored },
            Step::Follow(target) => name = target,
        }
    }
    Lookup {
        result: Err(DnsError::NXDOMAIN),
        ignored,
    }
}

enum Step {
    Done(Result<Vec<IpAddr>, DnsError>),
    Follow(String),
}

/// nginx's verdict on the A and AAAA replies of one name: a timeout wins (its timer
/// covers both), then an error code, then the addresses; without any, a CNAME is
/// followed, else the name is not found.
fn combine(replies: Vec<Result<Reply, DnsError>>) -> Step {
    if replies.contains(&Err(DnsError::TimedOut)) {
        return Step::Done(Err(DnsError::TimedOut));
    }
    let mut addrs = Vec::new();
    let mut cname = None;
    for reply in replies {
        match reply {
            Err(e) => return Step::Done(Err(e)),
            Ok(Reply::Found(answers)) => {
                addrs.extend(answers.into_iter().filter_map(|a| match a {
                    Answer::Addr(ip) => Some(ip),
                    Answer::Name(_) => None,
                }))
            }
            Ok(Reply::Cname(target)) => cname = Some(target),
        }
    }
    if !addrs.is_empty() {
        return Step::Done(Ok(addrs));
    }
    match cname {
        Some(target) => Step::Follow(target),
        None => Step::Done(Err(DnsError::NXDOMAIN)),
    }
}

/// `4.3.2.1.in-addr.arpa` / nibble-reversed `ip6.arpa`.
pub fn reverse_name(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            format!("{d}.{c}.{b}.{a}.in-addr.arpa")
        }
        IpAddr::V6(v6) => {
            let mut name = String::with_capacity(72);
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 15, byte >> 4));
            }
            name.push_str("ip6.arpa");
            name
        }
    }
}

/// One record of an answer that [`decode_response`] keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Name(String),
    Addr(IpAddr),
}

/// What an answer nginx takes says: its records of the type asked (none: an empty
/// answer), or only a CNAME to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Found(Vec<Answer>),
    Cname(String),
}

/// One query until `deadline`; answers nginx would ignore are noted in `ignored`.
async fn query(
    servers: &[SocketAddr],
    name: &str,
    qtype: u16,
    deadline: Instant,
    ignored: &mut Vec<String>,
) -> Result<Reply, DnsError> {
    let first = servers.first().ok_or(DnsError::TimedOut)?;
    let bind: SocketAddr = if first.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind)
        .await
        .map_err(|_| DnsError::TimedOut)?;
    let id = random_id();
    let message = encode_query(id, name, qtype).ok_or(DnsError::Rcode(1))?;
    let mut buf = vec![0u8; MAX_MESSAGE];
    for attempt in 0.. {
        let server = servers[attempt % servers.len()];
        // A send error (unreachable network) is treated like a lost datagram.
        let _ = socket.send_to(&message, server).await;
        let resend_at = (Instant::now() + RESEND).min(deadline);
        loop {
            let received = timeout_at(resend_at, socket.recv_from(&mut buf)).await;
            match received {
                Err(_) if resend_at >= deadline => return Err(DnsError::TimedOut),
                Err(_) => break,
                Ok(Err(_)) => continue,
                Ok(Ok((n, from))) if servers.contains(&from) => {
                    match judge_response(&buf[..n], id, qtype) {
                        Some(Verdict::Failed(e)) => return Err(e),
                        Some(Verdict::Found(answers)) => return Ok(Reply::Found(answers)),
                        Some(Verdict::Cname(target)) => return Ok(Reply::Cname(target)),
                        Some(Verdict::Ignored(reason)) => ignored.push(reason),
                        None => {}
                    }
                }
                Ok(Ok(_)) => {}
            }
        }
    }
    Err(DnsError::TimedOut)
}

fn random_id() -> u16 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    hasher.finish() as u16
}

/// A standard query with recursion desired. `None` for a name that cannot be encoded.
/// Public for the fuzz targets (`fuzz/`) only.
#[doc(hidden)]
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(32 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        if label.is_empty() || label.len() > 63 {
            return None;
        }
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    Some(out)
}

/// `None`: not a response to our query (ignore it); else the verdict. Public for the
/// fuzz targets (`fuzz/`) only.
#[doc(hidden)]
pub fn decode_response(msg: &[u8], id: u16, qtype: u16) -> Option<Result<Vec<Answer>, DnsError>> {
    let records = match walk(msg, id)? {
        Err(e) => return Some(Err(e)),
        Ok(records) => records,
    };
    let mut found = Vec::new();
    for r in records.iter().filter(|r| r.rtype == qtype) {
        match qtype {
            TYPE_PTR => found.push(Answer::Name(read_name(msg, r.data_at)?)),
            _ => found.extend(address(msg, r).map(Answer::Addr)),
        }
    }
    Some(Ok(found))
}

/// nginx's verdict on an answer to our query (`None`: not one, ignore it silently).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// An error code (an empty PTR answer counts as NXDOMAIN).
    Failed(DnsError),
    /// The records of the type asked; empty for an empty A/AAAA answer.
    Found(Vec<Answer>),
    /// An A/AAAA answer with a CNAME and no address: look the target up.
    Cname(String),
    /// An answer nginx drops with this error log line; the query goes on waiting.
    Ignored(String),
}

/// [`decode_response`] with nginx's rules on what an answer may hold
/// (`ngx_resolver_process_a`, `ngx_resolver_process_ptr`).
pub fn judge_response(msg: &[u8], id: u16, qtype: u16) -> Option<Verdict> {
    let records = match walk(msg, id)? {
        Err(e) => return Some(Verdict::Failed(e)),
        Ok(records) => records,
    };
    if records.is_empty() {
        return Some(match qtype {
            TYPE_PTR => Verdict::Failed(DnsError::NXDOMAIN),
            _ => Verdict::Found(Vec::new()),
        });
    }
    let ignored = |reason: String| Some(Verdict::Ignored(reason));
    let mut found = Vec::new();
    let mut cname = None;
    for r in &records {
        if r.class != 1 {
            return ignored(format!("unexpected RR class {} in DNS response", r.class));
        }
        match (r.rtype, qtype) {
            (TYPE_PTR, TYPE_PTR) => {
                return Some(match read_name(msg, r.data_at) {
                    Some(name) => Verdict::Found(vec![Answer::Name(name)]),
                    None => Verdict::Ignored("invalid name in DNS response".into()),
                });
            }
            // CNAMEs are skipped; other types nginx logs and skips.
            (_, TYPE_PTR) => {}
            (TYPE_A | TYPE_AAAA, _) if r.rtype != qtype => {
                let kind = if r.rtype == TYPE_A { "A" } else { "AAAA" };
                return ignored(format!("unexpected {kind} record in DNS response"));
            }
            (TYPE_A | TYPE_AAAA, _) => match address(msg, r) {
                Some(ip) => found.push(Answer::Addr(ip)),
                None => {
                    let kind = if r.rtype == TYPE_A { "A" } else { "AAAA" };
                    return ignored(format!("invalid {kind} record in DNS response"));
                }
            },
            (TYPE_CNAME, _) => match read_name(msg, r.data_at) {
                Some(name) => cname = Some(name),
                None => return ignored("invalid name in DNS response".into()),
            },
            // DNAME and other types are skipped.
            _ => {}
        }
    }
    if qtype == TYPE_PTR {
        return ignored("no PTR type in DNS response".into());
    }
    if !found.is_empty() {
        return Some(Verdict::Found(found));
    }
    match cname {
        Some(target) => Some(Verdict::Cname(target)),
        None => ignored("no A or CNAME types in DNS response".into()),
    }
}

/// One record of an answer section: its type, class and where its data is.
struct Record {
    rtype: u16,
    class: u16,
    data_at: usize,
    len: usize,
}

/// The answer section of a response with our id (`None`: not one; a short or broken
/// message is not one either), or its error code.
fn walk(msg: &[u8], id: u16) -> Option<Result<Vec<Record>, DnsError>> {
    if msg.len() < 12 || msg[..2] != id.to_be_bytes() || msg[2] & 0x80 == 0 {
        return None;
    }
    let rcode = msg[3] & 0x0f;
    if rcode != 0 {
        return Some(Err(DnsError::Rcode(rcode)));
    }
    let count = |at: usize| usize::from(u16::from_be_bytes([msg[at], msg[at + 1]]));
    let (questions, answers) = (count(4), count(6));
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(msg, at)? + 4;
    }
    let mut records = Vec::new();
    for _ in 0..answers {
        at = skip_name(msg, at)?;
        let header = msg.get(at..at + 10)?;
        let len = usize::from(u16::from_be_bytes([header[8], header[9]]));
        let data_at = at + 10;
        msg.get(data_at..data_at + len)?;
        records.push(Record {
            rtype: u16::from_be_bytes([header[0], header[1]]),
            class: u16::from_be_bytes([header[2], header[3]]),
            data_at,
            len,
        });
        at = data_at + len;
    }
    Some(Ok(records))
}

/// The address an A (4 bytes) or AAAA (16 bytes) record holds.
fn address(msg: &[u8], r: &Record) -> Option<IpAddr> {
    let data = &msg[r.data_at..r.data_at + r.len];
    match r.rtype {
        TYPE_A => Some(IpAddr::from(<[u8; 4]>::try_from(data).ok()?)),
        TYPE_AAAA => Some(IpAddr::from(<[u8; 16]>::try_from(data).ok()?)),
        _ => None,
    }
}

/// The offset just past the (possibly compressed) name at `at`.
fn skip_name(msg: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *msg.get(at)?;
        match len {
            0 => return Some(at + 1),
            l if l & 0xc0 == 0xc0 => return Some(at + 2),
            l => at += 1 + usize::from(l),
        }
    }
}

/// The dotted name at `at`, following compression pointers (bounded, so a pointer loop
/// cannot hang us).
fn read_name(msg: &[u8], mut at: usize) -> Option<String> {
    let mut name = String::new();
    for _ in 0..128 {
        let len = *msg.get(at)?;
        if len == 0 {
            return Some(name);
        }
        if len & 0xc0 == 0xc0 {
            at = usize::from(u16::from_be_bytes([len & 0x3f, *msg.get(at + 1)?]));
            continue;
        }
        let label = msg.get(at + 1..at + 1 + usize::from(len))?;
        if !name.is_empty() {
            name.push('.');
        }
        name.push_str(&String::from_utf8_lossy(label));
        if name.len() > 255 {
            return None;
        }
        at += 1 + usize::from(len);
    }
    None
}

#[cfg(test)]
pub mod tests {
    use super::*;

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_name("127.0.0.1".parse().unwrap()),
            "1.0.0.127.in-addr.arpa"
        );
        let v6 = reverse_name("2001:db8::1".parse().unwrap());
        assert!(v6.starts_with("1.0.0.0.0.0.0.0."), "{v6}");
        assert!(v6.ends_with(".8.b.d.0.1.0.0.2.ip6.arpa"), "{v6}");
    }

    /// A reply to `query` with the given answers (`rtype`, rdata), name-compressed.
    pub fn reply(query: &[u8], rcode: u8, answers: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut out = query.to_vec();
        out[2] = 0x81;
        out[3] = 0x80 | rcode;
        out[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        for (rtype, data) in answers {
            out.extend_from_slice(&[0xc0, 12]);
            out.extend_from_slice(&rtype.to_be_bytes());
            out.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            out.extend_from_slice(data);
        }
        out
    }

    /// `name` in wire form.
    pub fn wire_name(name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for label in name.split('.') {
            out.push(label.len() as u8);
            out.extend_from_slice(label.as_bytes());
        }
        out.push(0);
        out
    }

    #[test]
    fn decodes_answers_and_errors() {
        let q = encode_query(7, "1.0.0.127.in-addr.arpa", TYPE_PTR).unwrap();
        let r = reply(&q, 0, &[(TYPE_PTR, wire_name("mail.example"))]);
        assert_eq!(
            decode_response(&r, 7, TYPE_PTR),
            Some(Ok(vec![Answer::Name("mail.example".into())]))
        );
        assert_eq!(decode_response(&r, 8, TYPE_PTR), None, "other id");
        let nx = reply(&q, 3, &[]);
        assert_eq!(
            decode_response(&nx, 7, TYPE_PTR),
            Some(Err(DnsError::NXDOMAIN))
        );
        let q = encode_query(9, "mail.example", TYPE_A).unwrap();
        let r = reply(
            &q,
            0,
            &[(TYPE_A, vec![127, 0, 0, 1]), (TYPE_AAAA, vec![0; 16])],
        );
        assert_eq!(
            decode_response(&r, 9, TYPE_A),
            Some(Ok(vec![Answer::Addr("127.0.0.1".parse().unwrap())]))
        );
        assert_eq!(decode_response(&r[..r.len() - 3], 9, TYPE_A), None);
        assert_eq!(DnsError::TimedOut.describe(), "110: Operation timed out");
        assert_eq!(DnsError::NXDOMAIN.describe(), "3: Host not found");
    }

    #[tokio::test]
    async fn talks_to_a_server_and_times_out() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            let r = reply(&buf[..n], 0, &[(TYPE_PTR, wire_name("host.test"))]);
            server.send_to(&r, from).await.unwrap();
        });
        let ip = "127.0.0.1".parse().unwrap();
        let name = reverse(&[addr], ip, Duration::from_secs(2)).await;
        assert_eq!(name.result, Ok("host.test".to_string()));
        let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let quiet = silent.local_addr().unwrap();
        let r = reverse(&[quiet], ip, Duration::from_millis(200)).await;
        assert_eq!(r.result, Err(DnsError::TimedOut));
    }

    #[test]
    fn judges_answers_as_nginx() {
        let a = encode_query(1, "mail.example", TYPE_A).unwrap();
        let aaaa = encode_query(1, "mail.example", TYPE_AAAA).unwrap();
        let ptr = encode_query(1, "1.0.0.127.in-addr.arpa", TYPE_PTR).unwrap();
        let judge = |q: &[u8], qtype, answers: &[(u16, Vec<u8>)]| {
            judge_response(&reply(q, 0, answers), 1, qtype).unwrap()
        };
        let ignored = |reason: &str| Verdict::Ignored(reason.into());
        // An address of the other family drops the whole answer.
        let mixed = [(TYPE_AAAA, vec![0; 16]), (TYPE_A, vec![127, 0, 0, 1])];
        assert_eq!(
            judge(&aaaa, TYPE_AAAA, &mixed),
            ignored("unexpected A record in DNS response")
        );
        assert_eq!(
            judge(&a, TYPE_A, &mixed),
            ignored("unexpected AAAA record in DNS response")
        );
        assert_eq!(
            judge(&a, TYPE_A, &[(TYPE_A, vec![127, 0, 1])]),
            ignored("invalid A record in DNS response")
        );
        assert_eq!(
            judge(&a, TYPE_A, &[(16, b"\x02hi".to_vec())]),
            ignored("no A or CNAME types in DNS response")
        );
        assert_eq!(
            judge(&ptr, TYPE_PTR, &[(TYPE_CNAME, wire_name("x.example"))]),
            ignored("no PTR type in DNS response")
        );
        assert_eq!(
            judge(&ptr, TYPE_PTR, &[(TYPE_A, vec![127, 0, 0, 1])]),
            ignored("no PTR type in DNS response")
        );
        // A CNAME alone is followed; with addresses the addresses count.
        let cname = (TYPE_CNAME, wire_name("host.example"));
        assert_eq!(
            judge(&a, TYPE_A, std::slice::from_ref(&cname)),
            Verdict::Cname("host.example".into())
        );
        let both = [cname, (TYPE_A, vec![127, 0, 0, 2])];
        let two = Answer::Addr("127.0.0.2".parse().unwrap());
        assert_eq!(judge(&a, TYPE_A, &both), Verdict::Found(vec![two]));
        // Empty: no addresses (the other family may have some); PTR: not found.
        assert_eq!(judge(&a, TYPE_A, &[]), Verdict::Found(Vec::new()));
        assert_eq!(
            judge(&ptr, TYPE_PTR, &[]),
            Verdict::Failed(DnsError::NXDOMAIN)
        );
        let mut other_class = reply(&a, 0, &[(TYPE_A, vec![127, 0, 0, 1])]);
        let class_at = other_class.len() - 4 - 2 - 4 - 2;
        other_class[class_at + 1] = 3;
        assert_eq!(
            judge_response(&other_class, 1, TYPE_A),
            Some(ignored("unexpected RR class 3 in DNS response"))
        );
    }

    /// The records a test name server answers a query (name, type) with; `None`: none.
    type Answers = fn(&str, u16) -> Option<Vec<(u16, Vec<u8>)>>;

    /// A test name server: answers each query with `answer(name, qtype)` (`None`: no
    /// reply), and reports the query types it saw.
    async fn name_server(
        answer: Answers,
    ) -> (
        SocketAddr,
        tokio::sync::mpsc::UnboundedReceiver<(String, u16)>,
    ) {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let (n, from) = server.recv_from(&mut buf).await.unwrap();
                let q = &buf[..n];
                let name = read_name(q, 12).unwrap();
                let at = skip_name(q, 12).unwrap();
                let qtype = u16::from_be_bytes([q[at], q[at + 1]]);
                let _ = tx.send((name.clone(), qtype));
                if let Some(answers) = answer(&name, qtype) {
                    server.send_to(&reply(q, 0, &answers), from).await.unwrap();
                }
            }
        });
        (addr, rx)
    }

    #[tokio::test]
    async fn a_wrong_type_answer_times_the_lookup_out() {
        // The AAAA query gets an A record: nginx drops it and the lookup times out,
        // although the A query was answered (SMTP's `[TEMPUNAVAIL]`).
        let (addr, _) = name_server(|_, _| Some(vec![(TYPE_A, vec![127, 0, 0, 1])])).await;
        let limit = Duration::from_millis(300);
        let lookup = forward(&[addr], "host.test", true, true, limit).await;
        assert_eq!(lookup.result, Err(DnsError::TimedOut));
        assert_eq!(lookup.ignored[0], "unexpected A record in DNS response");
        // With `ipv6=off` only the A query is sent, and it is answered.
        let lookup = forward(&[addr], "host.test", true, false, limit).await;
        assert_eq!(lookup.result, Ok(vec!["127.0.0.1".parse().unwrap()]));
        assert!(lookup.ignored.is_empty());
    }

    #[tokio::test]
    async fn asks_the_families_configured_and_follows_a_cname() {
        let (addr, mut seen) = name_server(|name, qtype| match (name, qtype) {
            ("alias.test", _) => Some(vec![(TYPE_CNAME, wire_name("host.test"))]),
            ("host.test", TYPE_AAAA) => Some(vec![(TYPE_AAAA, vec![0; 16])]),
            _ => Some(Vec::new()),
        })
        .await;
        let limit = Duration::from_secs(2);
        let lookup = forward(&[addr], "alias.test", false, true, limit).await;
        assert_eq!(lookup.result, Ok(vec!["::".parse().unwrap()]));
        let mut asked = Vec::new();
        while let Ok(q) = seen.try_recv() {
            asked.push(q);
        }
        let aaaa = |name: &str| (name.to_string(), TYPE_AAAA);
        assert_eq!(asked, [aaaa("alias.test"), aaaa("host.test")]);
        // Both families: an empty A answer and an AAAA address confirm the name.
        let lookup = forward(&[addr], "host.test", true, true, limit).await;
        assert_eq!(lookup.result, Ok(vec!["::".parse().unwrap()]));
        // No address in either: not found.
        let lookup = forward(&[addr], "none.test", true, true, limit).await;
        assert_eq!(lookup.result, Err(DnsError::NXDOMAIN));
    }

    #[tokio::test]
    async fn a_ptr_answer_without_ptr_times_out() {
        let (addr, _) = name_server(|_, _| Some(vec![(TYPE_CNAME, wire_name("x.test"))])).await;
        let ip = "127.0.0.1".parse().unwrap();
        let lookup = reverse(&[addr], ip, Duration::from_millis(300)).await;
        assert_eq!(lookup.result, Err(DnsError::TimedOut));
        assert_eq!(lookup.ignored[0], "no PTR type in DNS response");
    }
}
