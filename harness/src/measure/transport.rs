//! Remote frees in batches: how a block allocated by one worker reaches the
//! worker that frees it.
//!
//! A handoff must cost the sender about what the workload's pattern costs
//! (one store), not a channel message per block, and the receiver must not
//! poll after every action. So:
//!
//! - Every sender owns a fixed set of [`Batch`]es (a [`BATCH`]-slot array of
//!   `(pointer, size)`), allocated before any phase; it keeps one *open*
//!   batch per destination and appends each handed-off block to it.
//! - A full batch goes to the destination's *inbox*, a bounded lock-free
//!   queue of batch indices (`crossbeam_queue::ArrayQueue`, preallocated,
//!   so sending never allocates). The sender takes an empty batch from its
//!   own *spare* queue; receivers return emptied batches there. If none is
//!   spare (every batch in flight) the sender frees what its own inbox holds
//!   while it waits, and releases its subject's span (the GIL) so the
//!   receivers can run.
//! - A receiver looks at its inbox every [`POLL_EVERY`] actions and while
//!   it quiesces; a worker that receives nothing (no remote frees in the
//!   workload) never looks at all: the driver runs a loop without polling.
//! - At the end of a phase every worker sends its partial batches, counts
//!   itself done, and keeps receiving until every worker is done and its
//!   inbox is empty ([`Transport::quiesce`]), so no block is in flight
//!   between phases and the remote frees belong to the phase that caused
//!   them.
//!
//! Blocks wait in a batch until it fills: up to `BATCH - 1` blocks per
//! destination are live a little longer than the workload says. That is the
//! price of not measuring a channel; xmalloc-test itself passes blocks in
//! batches.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;

use crate::subjects::Span;

/// Blocks per batch.
pub const BATCH: usize = 64;
/// Actions a worker runs between looks at its inbox.
pub const POLL_EVERY: usize = 64;
/// A batch index meaning "no open batch".
const NONE: u32 = u32::MAX;

/// A block on its way to be freed elsewhere.
#[derive(Clone, Copy)]
pub struct Item {
    pub ptr: *mut u8,
    pub size: usize,
}

/// A fixed-size array of blocks for one destination.
struct Batch {
    /// The sender that owns it (where it goes back when emptied).
    owner: usize,
    len: usize,
    items: [Item; BATCH],
}

/// The batches, the inboxes and the spare queues of one cell.
pub struct Transport {
    threads: usize,
    batches: Box<[UnsafeCell<Batch>]>,
    inbox: Box<[ArrayQueue<u32>]>,
    spare: Box<[ArrayQueue<u32>]>,
}

// SAFETY: a batch is touched only by whoever holds its index: the sender
// while the batch is open, the receiver after popping it from its inbox;
// indices move between threads only through the `ArrayQueue`s, whose push
// and pop synchronise (release/acquire), so the batch's contents written by
// one holder are visible to the next. The pointers in a batch are blocks
// whose ownership travels with it.
unsafe impl Sync for Transport {}
// SAFETY: as above; nothing in it is tied to a thread.
unsafe impl Send for Transport {}

/// One worker's open batches, one per destination.
pub struct Outbox {
    /// The worker it belongs to.
    me: usize,
    open: Box<[u32]>,
}

// SAFETY: the open batches belong to this outbox's worker, which carries
// the outbox to whatever thread runs it.
unsafe impl Send for Outbox {}

impl Transport {
    /// Batches, queues and spares for `threads` workers.
    pub fn new(threads: usize) -> Transport {
        let others = threads.saturating_sub(1).max(1);
        // One open batch per destination and as many in flight.
        let per_sender = 2 * others + 2;
        let empty = Item {
            ptr: std::ptr::null_mut(),
            size: 0,
        };
        let batches: Box<[UnsafeCell<Batch>]> = (0..threads * per_sender)
            .map(|i| {
                UnsafeCell::new(Batch {
                    owner: i / per_sender,
                    len: 0,
                    items: [empty; BATCH],
                })
            })
            .collect();
        let spare: Box<[ArrayQueue<u32>]> = (0..threads)
            .map(|s| {
                let q = ArrayQueue::new(per_sender);
                for i in 0..per_sender {
                    let _ = q.push((s * per_sender + i) as u32);
                }
                q
            })
            .collect();
        let inbox = (0..threads)
            .map(|_| ArrayQueue::new(others * per_sender))
            .collect();
        Transport {
            threads,
            batches,
            inbox,
            spare,
        }
    }

    /// An outbox for worker `me`, with no batch open yet.
    pub fn outbox(&self, me: usize) -> Outbox {
        Outbox {
            me,
            open: vec![NONE; self.threads].into_boxed_slice(),
        }
    }

    /// The batch behind an index.
    ///
    /// # Safety
    /// The caller holds index `b` (see the `Sync` impl).
    #[allow(clippy::mut_from_ref)]
    unsafe fn batch(&self, b: u32) -> &mut Batch {
        // SAFETY: the caller holds `b`, so nobody else touches the batch.
        unsafe { &mut *self.batches[b as usize].get() }
    }

    /// Hands block `item` from `out`'s worker to worker `to`.
    #[inline]
    pub fn send(
        &self,
        out: &mut Outbox,
        to: usize,
        item: Item,
        alloc: &dyn GlobalAlloc,
        align: usize,
        span: &mut Span<'_>,
    ) {
        let mut b = out.open[to];
        if b == NONE {
            b = self.take_spare(out.me, alloc, align, span);
            out.open[to] = b;
        }
        // SAFETY: `b` is open in `me`'s outbox: `me` holds it.
        let batch = unsafe { self.batch(b) };
        batch.items[batch.len] = item;
        batch.len += 1;
        if batch.len == BATCH {
            // Capacity covers every batch of every sender: never full.
            let _ = self.inbox[to].push(b);
            out.open[to] = NONE;
        }
    }

    /// An empty batch of `me`'s; waits (receiving meanwhile) if none is
    /// spare.
    #[cold]
    fn take_spare(
        &self,
        me: usize,
        alloc: &dyn GlobalAlloc,
        align: usize,
        span: &mut Span<'_>,
    ) -> u32 {
        loop {
            if let Some(b) = self.spare[me].pop() {
                return b;
            }
            self.receive(me, alloc, align);
            span.unlocked(std::thread::yield_now);
        }
    }

    /// Frees every block waiting in `me`'s inbox; returns how many.
    #[inline]
    pub fn receive(&self, me: usize, alloc: &dyn GlobalAlloc, align: usize) -> usize {
        self.receive_with(me, &mut |item| {
            // SAFETY: every item in a batch is a live block of `item.size`
            // bytes allocated by this subject with `align`, handed over
            // exactly once; its new owner frees it here.
            unsafe {
                alloc.dealloc(
                    item.ptr,
                    Layout::from_size_align_unchecked(item.size, align),
                )
            }
        })
    }

    /// Empties `me`'s inbox, calling `free` on every block (which must free
    /// it), and returns the batches to their owners.
    #[inline]
    pub fn receive_with(&self, me: usize, free: &mut dyn FnMut(Item)) -> usize {
        let mut n = 0;
        while let Some(b) = self.inbox[me].pop() {
            // SAFETY: popped from `me`'s inbox: `me` holds `b` now.
            let batch = unsafe { self.batch(b) };
            for &item in &batch.items[..batch.len] {
                free(item);
            }
            n += batch.len;
            batch.len = 0;
            // A sender's spare queue holds all of its batches: never full.
            let _ = self.spare[batch.owner].push(b);
        }
        n
    }

    /// Sends `me`'s partial batches.
    pub fn flush(&self, out: &mut Outbox) {
        for (to, b) in out.open.iter_mut().enumerate() {
            if *b == NONE {
                continue;
            }
            // SAFETY: open in `me`'s outbox: held by the caller.
            if unsafe { self.batch(*b) }.len > 0 {
                let _ = self.inbox[to].push(*b);
                *b = NONE;
            }
        }
    }

    /// Ends a phase for worker `me` (see the module docs): sends its
    /// partial batches, counts it in `done`, and frees (with `free`) what
    /// reaches it until `done` reaches `target` (it only grows: phase `k`
    /// of every worker ends at `k × threads`) and nothing is in flight.
    pub fn quiesce(
        &self,
        me: usize,
        out: &mut Outbox,
        done: &AtomicU64,
        target: u64,
        span: &mut Span<'_>,
        free: &mut dyn FnMut(Item),
    ) {
        self.flush(out);
        done.fetch_add(1, Ordering::AcqRel);
        loop {
            self.receive_with(me, free);
            // Every sender pushed its last batch before counting itself
            // done, so once all are done one more pass empties the inbox.
            if done.load(Ordering::Acquire) >= target {
                self.receive_with(me, free);
                return;
            }
            if self.inbox[me].is_empty() {
                span.unlocked(std::thread::yield_now);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subjects::null::NULL;

    #[test]
    fn blocks_arrive_in_batches_and_every_one_is_freed_once() {
        let t = Transport::new(3);
        let mut outs: Vec<Outbox> = (0..3).map(|i| t.outbox(i)).collect();
        let layout = Layout::from_size_align(32, 8).unwrap();
        let mut sent = Vec::new();
        let mut span = Span::none();
        for i in 0..(BATCH * 5 + 7) {
            // SAFETY: non-zero size.
            let p = unsafe { NULL.alloc(layout) };
            sent.push(p as usize);
            let to = 1 + i % 2;
            t.send(
                &mut outs[0],
                to,
                Item { ptr: p, size: 32 },
                &NULL,
                8,
                &mut span,
            );
        }
        let mut got = Vec::new();
        let mut take = |item: Item| got.push(item.ptr as usize);
        assert_eq!(t.receive_with(1, &mut take), 2 * BATCH, "only full batches");
        t.flush(&mut outs[0]);
        t.receive_with(1, &mut take);
        t.receive_with(2, &mut take);
        got.sort_unstable();
        sent.sort_unstable();
        assert_eq!(got, sent);
        for p in got {
            // SAFETY: each block was allocated with `layout` above.
            unsafe { NULL.dealloc(p as *mut u8, layout) };
        }
        // Every batch is back with its owner.
        assert_eq!(t.spare[0].len(), t.spare[0].capacity());
    }

    #[test]
    fn quiesce_waits_for_every_sender_and_frees_every_block_once() {
        use crate::subjects::testing::Counting;
        let t = Transport::new(2);
        let done = AtomicU64::new(0);
        let counting = Counting::default();
        let layout = Layout::from_size_align(16, 8).unwrap();
        std::thread::scope(|s| {
            for me in 0..2 {
                let (t, done, a) = (&t, &done, &counting);
                s.spawn(move || {
                    let mut out = t.outbox(me);
                    let mut span = Span::none();
                    // Far more than fit in flight: senders wait for spares
                    // and free what reaches them meanwhile.
                    for _ in 0..1000 {
                        // SAFETY: non-zero size.
                        let p = unsafe { a.alloc(layout) };
                        t.send(&mut out, 1 - me, Item { ptr: p, size: 16 }, a, 8, &mut span);
                    }
                    let mut free = |item: Item| {
                        // SAFETY: a block of `layout` handed over once.
                        unsafe { a.dealloc(item.ptr, layout) };
                    };
                    t.quiesce(me, &mut out, done, 2, &mut span, &mut free);
                });
            }
        });
        assert_eq!(counting.counts(), (2000, 2000, 0));
        assert!(t.inbox.iter().all(|q| q.is_empty()));
    }
}
