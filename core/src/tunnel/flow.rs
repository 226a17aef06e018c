//! Flow-control credit accounting, one pair of windows per stream and one for the connection.
//!
//! Every window starts at a protocol constant ([`INITIAL_STREAM_WINDOW`],
//! [`INITIAL_CONNECTION_WINDOW`]), so the two ends never need to agree on configuration: a
//! receiver that wants a larger window grants the difference with a WINDOW_UPDATE right away.
//! A receiver announces consumed bytes back to the sender in batches, once at least half of its
//! window is owed.

use super::frame::MAX_STREAM_ID;

/// Credit a sender has on a new stream before any WINDOW_UPDATE.
pub const INITIAL_STREAM_WINDOW: u32 = 16 * 1024;

/// Credit a sender has on a new connection before any WINDOW_UPDATE.
pub const INITIAL_CONNECTION_WINDOW: u32 = 64 * 1024;

/// Largest size of any window.
pub const MAX_WINDOW: u32 = MAX_STREAM_ID;

/// What the sender may still send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendCredit {
    available: u32,
}

impl SendCredit {
    pub(crate) const fn new(initial: u32) -> Self {
        Self { available: initial }
    }

    pub(crate) const fn available(self) -> usize {
        self.available as usize
    }

    /// Uses `n` bytes of credit; callers never take more than [`Self::available`].
    pub(crate) fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.available(), "credit overdrawn");
        self.available -= n.min(self.available()) as u32;
    }

    /// Adds a peer's WINDOW_UPDATE; `Err` when it would push the window past [`MAX_WINDOW`].
    pub(crate) fn grant(&mut self, increment: u32) -> Result<(), ()> {
        match self.available.checked_add(increment) {
            Some(sum) if sum <= MAX_WINDOW => {
                self.available = sum;
                Ok(())
            }
            _ => Err(()),
        }
    }
}

/// What the peer may still send us, and what we owe it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecvCredit {
    /// Bytes the peer may still send before it runs out of credit.
    remaining: u32,
    /// The window we want the peer to have (the configured size).
    target: u32,
    /// Bytes the application consumed that we have not granted back yet.
    owed: u32,
}

impl RecvCredit {
    /// A window that starts at the protocol's `initial` credit and wants to be `target` large;
    /// the increment to announce right away is returned with it (`None` when none is needed).
    pub(crate) fn new(initial: u32, target: u32) -> (Self, Option<u32>) {
        let target = target.clamp(initial, MAX_WINDOW);
        let credit = Self {
            remaining: target,
            target,
            owed: 0,
        };
        let bump = target - initial;
        (credit, (bump > 0).then_some(bump))
    }

    pub(crate) const fn remaining(self) -> usize {
        self.remaining as usize
    }

    /// Bytes received but neither released by the application nor owed back yet.
    pub(crate) const fn unreleased(self) -> usize {
        (self.target - self.remaining - self.owed) as usize
    }

    /// The peer sent `n` bytes; `Err` with the credit it had when that overruns it.
    pub(crate) fn receive(&mut self, n: usize) -> Result<(), usize> {
        if n > self.remaining() {
            return Err(self.remaining());
        }
        self.remaining -= n as u32;
        Ok(())
    }

    /// The application consumed `n` received bytes. Returns the WINDOW_UPDATE increment to send
    /// once at least half of the window is owed (batching), else `None`.
    pub(crate) fn release(&mut self, n: usize) -> Option<u32> {
        self.owed += n.min(self.unreleased()) as u32;
        if self.owed >= self.target / 2 && self.owed > 0 {
            Some(self.flush())
        } else {
            None
        }
    }

    /// Takes every owed byte as one increment (0 when nothing is owed).
    pub(crate) fn flush(&mut self) -> u32 {
        let owed = self.owed;
        self.remaining += owed;
        self.owed = 0;
        owed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_credit_is_consumed_and_granted() {
        let mut credit = SendCredit::new(10);
        credit.consume(4);
        assert_eq!(credit.available(), 6);
        credit.grant(100).unwrap();
        assert_eq!(credit.available(), 106);
    }

    #[test]
    fn send_credit_rejects_overflow_past_the_max_window() {
        let mut credit = SendCredit::new(MAX_WINDOW - 1);
        assert_eq!(credit.grant(1), Ok(()));
        assert_eq!(credit.grant(1), Err(()));
        assert_eq!(SendCredit::new(5).grant(u32::MAX), Err(()));
    }

    #[test]
    fn recv_credit_announces_the_raise_to_its_target() {
        let (credit, bump) = RecvCredit::new(16, 100);
        assert_eq!(bump, Some(84));
        assert_eq!(credit.remaining(), 100);
        let (credit, bump) = RecvCredit::new(16, 4);
        assert_eq!(
            bump, None,
            "a target below the initial window is raised to it"
        );
        assert_eq!(credit.remaining(), 16);
    }

    #[test]
    fn recv_credit_rejects_overrun() {
        let (mut credit, _) = RecvCredit::new(10, 10);
        assert_eq!(credit.receive(6), Ok(()));
        assert_eq!(credit.receive(5), Err(4));
        assert_eq!(credit.receive(4), Ok(()));
        assert_eq!(credit.receive(1), Err(0));
    }

    #[test]
    fn recv_credit_batches_updates_until_half_is_owed() {
        let (mut credit, _) = RecvCredit::new(100, 100);
        credit.receive(100).unwrap();
        assert_eq!(credit.release(30), None);
        assert_eq!(credit.release(19), None);
        assert_eq!(credit.release(1), Some(50));
        assert_eq!(credit.remaining(), 50);
        assert_eq!(credit.release(50), Some(50));
        assert_eq!(credit.remaining(), 100);
    }

    #[test]
    fn recv_credit_never_grants_more_than_was_received() {
        let (mut credit, _) = RecvCredit::new(100, 100);
        credit.receive(10).unwrap();
        assert_eq!(credit.release(1000), None);
        assert_eq!(credit.flush(), 10);
        assert_eq!(credit.remaining(), 100);
    }
}
