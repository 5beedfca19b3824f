//! The pre-auth command buffer shared by every protocol's machine.

/// The pre-auth command buffer: fixed size, never compacted while it holds unconsumed
/// bytes, reset to empty only when everything has been consumed (reference §4.1).
///
/// Bytes before `last` from earlier commands are kept, like nginx's buffer: a stale
/// IMAP tag reads them.
pub struct CommandBuffer {
    pub data: Vec<u8>,
    pub pos: usize,
    pub last: usize,
}

impl CommandBuffer {
    pub fn new(size: usize) -> Self {
        CommandBuffer {
            data: vec![0; size],
            pos: 0,
            last: 0,
        }
    }

    pub fn free_space(&self) -> usize {
        self.data.len() - self.last
    }

    pub fn is_full(&self) -> bool {
        self.last == self.data.len()
    }

    /// Drops everything (STARTTLS, or all consumed).
    pub fn reset(&mut self) {
        self.pos = 0;
        self.last = 0;
    }

    /// Resets only if every byte has been consumed (nginx's "buffer empty" moment).
    pub fn reset_if_consumed(&mut self) {
        if self.pos == self.last {
            self.reset();
        }
    }

    /// Appends what fits of `data` (the driver never offers more than `free_space`).
    pub fn append(&mut self, data: &[u8]) {
        let take = data.len().min(self.free_space());
        self.data[self.last..self.last + take].copy_from_slice(&data[..take]);
        self.last += take;
    }

    /// The unconsumed bytes: what a client pipelined after the current command.
    pub fn unconsumed(&self) -> &[u8] {
        &self.data[self.pos..self.last]
    }
}
