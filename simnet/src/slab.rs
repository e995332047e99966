//! Messages in flight, kept in one vector instead of a heap allocation
//! each.
//!
//! Every simulated message lives from its sending to its delivery, a few
//! events later on a LAN. Boxing each one costs an allocation and a free,
//! and scatters messages over the heap; here a message is written into a
//! slot of one vector and the event carries the slot's number. Freed slots
//! are reused last-in first-out, so the slot a new message takes is most
//! often one still in the cache.

use tiersync_engine::Message;

/// The number of a slot in a [`MessageSlab`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot(u32);

/// Messages in flight.
#[derive(Debug, Default)]
pub struct MessageSlab {
    slots: Vec<Message>,
    free: Vec<u32>,
}

impl MessageSlab {
    /// Stores `msg` until [`take`](Self::take) hands it back.
    #[inline]
    pub fn put(&mut self, msg: Message) -> Slot {
        match self.free.pop() {
            Some(i) => {
                // The placeholder owns nothing: no drop to run.
                let placeholder = std::mem::replace(&mut self.slots[i as usize], msg);
                debug_assert!(matches!(placeholder, Message::ReportAck));
                std::mem::forget(placeholder);
                Slot(i)
            }
            None => {
                let i = u32::try_from(self.slots.len())
                    .expect("fewer than 2^32 messages are in flight at once");
                self.slots.push(msg);
                Slot(i)
            }
        }
    }

    /// The message in `slot`, which stays stored.
    #[inline]
    pub fn get(&self, slot: Slot) -> &Message {
        &self.slots[slot.0 as usize]
    }

    /// Takes the message out of `slot` and frees the slot. A freed slot
    /// holds a placeholder (`ReportAck`, which owns nothing) until reused.
    #[inline]
    pub fn take(&mut self, slot: Slot) -> Message {
        self.free.push(slot.0);
        std::mem::replace(&mut self.slots[slot.0 as usize], Message::ReportAck)
    }

    /// Messages stored now.
    pub fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Whether no message is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiersync_engine::Revision;

    #[test]
    fn messages_come_back_as_stored_and_slots_are_reused() {
        let mut slab = MessageSlab::default();
        let a = slab.put(Message::Check { req: 1, have: Revision(3) });
        let b = slab.put(Message::Wake { revision: Revision(9) });
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.get(a), &Message::Check { req: 1, have: Revision(3) });
        assert_eq!(slab.take(a), Message::Check { req: 1, have: Revision(3) });
        // The freed slot is the next one used.
        let c = slab.put(Message::ReportAck);
        assert_eq!(c, a);
        assert_eq!(slab.take(b), Message::Wake { revision: Revision(9) });
        assert_eq!(slab.take(c), Message::ReportAck);
        assert!(slab.is_empty());
    }
}
