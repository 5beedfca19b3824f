//! `cargo +nightly fuzz run dns_answer`: the DNS answer parser of the SMTP client host
//! lookup, on any datagram and on well-formed answers built from the input.
//!
//! Raw: byte 0 picks the query type (bits 0-1: A, PTR, AAAA, other) and whether the id
//! matches (bit 2 set: it does not); the rest is the datagram, whose own first two
//! bytes are the id we wait for. Asserts: a datagram is taken as our answer only with
//! our id and the response bit; an error is its RCODE; records are of the type asked
//! (A gives IPv4, AAAA IPv6, PTR names of at most 255 bytes).
//!
//! Built: the same input read as a list of records (type, owner compressed or not,
//! data) and encoded as a server would; the parser must give back exactly the
//! records of the type asked, in order.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use mailproxy::net::dns::{decode_response, encode_query, Answer, DnsError};

const TYPE_A: u16 = 1;
const TYPE_PTR: u16 = 12;
const TYPE_AAAA: u16 = 28;
const QTYPES: [u16; 4] = [TYPE_A, TYPE_PTR, TYPE_AAAA, 16];

fn check_raw(control: u8, msg: &[u8]) {
    let qtype = QTYPES[usize::from(control & 3)];
    let own = msg
        .get(..2)
        .map(|id| u16::from_be_bytes([id[0], id[1]]))
        .unwrap_or(0);
    let id = own ^ u16::from(control >> 2 & 1);
    let Some(verdict) = decode_response(msg, id, qtype) else {
        return;
    };
    assert!(
        msg.len() >= 12 && id == own && msg[2] & 0x80 != 0,
        "not our answer"
    );
    match verdict {
        Err(DnsError::Rcode(code)) => assert!(code != 0 && code == msg[3] & 15),
        Err(DnsError::TimedOut) => panic!("a datagram cannot time out"),
        Ok(answers) => {
            assert_eq!(msg[3] & 15, 0);
            for answer in answers {
                match answer {
                    Answer::Name(name) => {
                        assert_eq!(qtype, TYPE_PTR);
                        assert!(name.len() <= 255, "{} bytes", name.len());
                    }
                    Answer::Addr(IpAddr::V4(_)) => assert_eq!(qtype, TYPE_A),
                    Answer::Addr(IpAddr::V6(_)) => assert_eq!(qtype, TYPE_AAAA),
                }
            }
        }
    }
}

/// Reads bytes off the input, 0 when it runs out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }
    fn take(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

fn check_built(data: &[u8]) {
    let mut input = Bytes(data);
    let control = input.byte();
    let qtype = QTYPES[usize::from(control & 3)];
    let id = u16::from_be_bytes([input.byte(), input.byte()]);
    let mut msg = encode_query(id, "7.2.0.192.in-addr.arpa", qtype).unwrap();
    msg[2] = 0x81;
    msg[3] = 0x80;
    let mut expected = Vec::new();
    let mut too_long = false;
    let count = usize::from(input.byte() % 8);
    msg[6..8].copy_from_slice(&(count as u16).to_be_bytes());
    for _ in 0..count {
        let kind = input.byte();
        let rtype = [TYPE_A, TYPE_PTR, TYPE_AAAA, 5, 16][usize::from(kind % 5)];
        if kind & 0x80 != 0 {
            msg.extend_from_slice(&[0xc0, 12]);
        } else {
            msg.extend_from_slice(b"\x04mail\x07example\x00");
        }
        msg.extend_from_slice(&rtype.to_be_bytes());
        msg.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        let rdata = match rtype {
            TYPE_A => input.take(4),
            TYPE_AAAA => input.take(16),
            TYPE_PTR => {
                let mut wire = Vec::new();
                let mut labels = Vec::new();
                for _ in 0..1 + input.byte() % 6 {
                    let len = 1 + input.byte() % 63;
                    let label = input.take(usize::from(len));
                    wire.push(len);
                    wire.extend_from_slice(&label);
                    labels.push(String::from_utf8_lossy(&label).into_owned());
                }
                wire.push(0);
                if qtype == TYPE_PTR {
                    let name = labels.join(".");
                    too_long |= name.len() > 255;
                    expected.push(Answer::Name(name));
                }
                wire
            }
            _ => {
                let len = input.byte() % 32;
                input.take(usize::from(len))
            }
        };
        match (rtype, qtype) {
            (TYPE_A, TYPE_A) => expected.push(Answer::Addr(
                <[u8; 4]>::try_from(rdata.as_slice()).unwrap().into(),
            )),
            (TYPE_AAAA, TYPE_AAAA) => expected.push(Answer::Addr(
                <[u8; 16]>::try_from(rdata.as_slice()).unwrap().into(),
            )),
            _ => {}
        }
        msg.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        msg.extend_from_slice(&rdata);
    }
    let decoded = decode_response(&msg, id, qtype);
    if too_long {
        assert_eq!(decoded, None, "a PTR name over 255 bytes must be refused");
    } else {
        assert_eq!(decoded, Some(Ok(expected)));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some((&control, msg)) = data.split_first() {
        check_raw(control, msg);
    }
    check_built(data);
});
