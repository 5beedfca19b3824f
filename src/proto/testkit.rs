//! The scripted client the IMAP, POP3 and SMTP transcript tests share: it drives a
//! [`PreAuth`] machine the way the session driver does, so tests read as `C:`/`S:`
//! transcripts with exact bytes. The backend login tests share the step helpers below.

use super::{Action, BackendLogin, Credentials, LoginFailure, LoginStep, PreAuth};

/// How a burst of client input ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum End {
    NeedInput,
    Closed,
    StartTls,
    Auth(Credentials),
}

/// A scripted client around a machine (built and greeted by the protocol's tests).
pub(crate) struct Client<M> {
    pub machine: M,
    /// Every reply action, one entry per write (to check replies are never merged).
    pub writes: Vec<Vec<u8>>,
}

impl<M: PreAuth> Client<M> {
    pub fn new(machine: M) -> Self {
        Client {
            machine,
            writes: Vec::new(),
        }
    }

    /// C: `input` (all at once, fed as the buffer allows); returns everything S: wrote
    /// and how the burst ended.
    pub fn send(&mut self, input: &[u8]) -> (Vec<u8>, End) {
        let mut rest = input;
        let mut output = Vec::new();
        loop {
            let room = rest.len().min(self.machine.free_space());
            self.machine.receive(&rest[..room]);
            rest = &rest[room..];
            let (bytes, end) = match self.machine.next_action() {
                Action::NeedInput if rest.is_empty() => return (output, End::NeedInput),
                Action::NeedInput => continue,
                Action::Reply(bytes) => (bytes, None),
                Action::ReplyAndClose(bytes) => (bytes, Some(End::Closed)),
                Action::StartTls(bytes) => (bytes, Some(End::StartTls)),
                Action::Authenticate(credentials) => (Vec::new(), Some(End::Auth(credentials))),
            };
            if !bytes.is_empty() {
                self.writes.push(bytes.clone());
            }
            output.extend_from_slice(&bytes);
            if let Some(end) = end {
                return (output, end);
            }
        }
    }

    /// C: `input` / S: `expected`, and the dialogue goes on.
    pub fn says(&mut self, input: &[u8], expected: &[u8]) -> &mut Self {
        self.expect(input, expected, End::NeedInput)
    }

    /// C: `input` / S: `expected`, and the burst ends with `end`.
    pub fn expect(&mut self, input: &[u8], expected: &[u8], end: End) -> &mut Self {
        let (output, got) = self.send(input);
        assert_eq!(
            String::from_utf8_lossy(&output),
            String::from_utf8_lossy(expected),
            "reply to {:?}",
            String::from_utf8_lossy(input)
        );
        assert_eq!(got, end, "after {:?}", String::from_utf8_lossy(input));
        self
    }

    /// C: `input` / S: nothing yet, authentication starts; returns the credentials.
    pub fn logs_in(&mut self, input: &[u8]) -> Credentials {
        match self.send(input) {
            (output, End::Auth(credentials)) if output.is_empty() => credentials,
            other => panic!("expected authentication, got {other:?}"),
        }
    }

    /// Drains the machine's log lines.
    pub fn logs(&mut self) -> Vec<String> {
        std::iter::from_fn(|| self.machine.take_log()).collect()
    }
}

/// B→N `reply`, then N→B must be `expected`.
pub(crate) fn step(login: &mut impl BackendLogin, reply: &[u8], expected: LoginStep) {
    assert_eq!(
        login.receive(reply),
        expected,
        "after {:?}",
        String::from_utf8_lossy(reply)
    );
}

/// N→B: `bytes`.
pub(crate) fn send(bytes: &[u8]) -> LoginStep {
    LoginStep::Send(bytes.to_vec())
}

/// The login fails on an invalid backend reply, shown in the log as `shown`.
pub(crate) fn invalid(buffered: &[u8], shown: &str) -> LoginStep {
    LoginStep::Failed(LoginFailure {
        buffered: buffered.to_vec(),
        log: format!("upstream sent invalid response: \"{shown}\""),
    })
}
