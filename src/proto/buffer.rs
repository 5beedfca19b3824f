//! The pre-auth command buffer shared by every protocol's parser (reference §4.1).

/// Fixed size, never compacted while it holds unconsumed bytes, reset to empty only when
/// everything has been consumed: the *total* of bytes received between two "buffer
/// empty" moments must fit, as in nginx.
///
/// Bytes before `pos` from earlier commands are kept, like nginx's buffer: IMAP's stale
/// tag reads them.
pub(crate) struct CommandBuffer {
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

    /// Appends what fits of `bytes` (the driver never offers more than `free_space`).
    pub fn append(&mut self, bytes: &[u8]) {
        let take = bytes.len().min(self.free_space());
        self.data[self.last..self.last + take].copy_from_slice(&bytes[..take]);
        self.last += take;
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

    /// The unconsumed bytes (pipelined after a login command), leaving the buffer empty.
    pub fn take_unconsumed(&mut self) -> Vec<u8> {
        let rest = self.data[self.pos..self.last].to_vec();
        self.reset();
        rest
    }

    /// Everything buffered since the last reset (what nginx logs for a too-long command).
    pub fn contents(&self) -> &[u8] {
        &self.data[..self.last]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_is_bounded_and_reset_waits_for_consumption() {
        let mut buffer = CommandBuffer::new(4);
        buffer.append(b"abcdef");
        assert_eq!(buffer.contents(), b"abcd");
        assert!(buffer.is_full());
        buffer.pos = 2;
        buffer.reset_if_consumed();
        assert_eq!(buffer.last, 4, "unconsumed bytes stay");
        assert_eq!(buffer.take_unconsumed(), b"cd");
        assert_eq!((buffer.pos, buffer.last, buffer.free_space()), (0, 0, 4));
    }
}
