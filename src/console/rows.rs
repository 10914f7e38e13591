//! A console's list of message rows, kept in its display order as rows
//! change one at a time. A station event carries one changed row; applying
//! it costs about the same with 1,000 rows or 100,000: rows live in short
//! sorted chunks, an index finds a row's place by id, and the counts the
//! status bar shows are kept as rows come and go.

use std::collections::HashMap;

use crate::domain::MessageId;
use crate::store::MessageRow;

/// Rows per chunk, at most; a chunk that grows past it splits in two.
const CHUNK: usize = 128;

/// How a list is ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// The inbound queue: unacknowledged first, then precedence, then time
    /// of receipt (which, with one deadline per precedence, is time left).
    Queue,
    /// The sent list: newest first.
    Newest,
}

/// Where a row sorts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    done: bool,
    rank: u8,
    /// Nanoseconds of the receipt time; negated for newest first.
    time: i128,
    id: MessageId,
}

impl Order {
    fn key(self, r: &MessageRow) -> Key {
        let at = r.stored_at.as_nanosecond();
        match self {
            Order::Queue => Key {
                done: !r.state.is_unacknowledged(),
                rank: r.precedence.rank(),
                time: at,
                id: r.id,
            },
            Order::Newest => Key {
                done: false,
                rank: 0,
                time: -at,
                id: r.id,
            },
        }
    }
}

/// The rows of one list, in display order.
#[derive(Clone, Debug)]
pub struct Rows {
    order: Order,
    chunks: Vec<Vec<MessageRow>>,
    keys: HashMap<MessageId, Key>,
    /// Unacknowledged rows by precedence rank, FLASH first.
    unacknowledged: [usize; 4],
    exercise: usize,
}

impl Rows {
    pub fn new(order: Order) -> Rows {
        Rows {
            order,
            chunks: Vec::new(),
            keys: HashMap::new(),
            unacknowledged: [0; 4],
            exercise: 0,
        }
    }

    /// Replaces every row (a resync). Rows are large, so the sort moves
    /// small (key, position) pairs and each row moves once, into its chunk.
    pub fn replace_all(&mut self, rows: Vec<MessageRow>) {
        let order = self.order;
        let mut keyed: Vec<(Key, usize)> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| (order.key(r), i))
            .collect();
        keyed.sort_unstable();
        let mut slots: Vec<Option<MessageRow>> = rows.into_iter().map(Some).collect();
        *self = Rows::new(order);
        self.keys.reserve(keyed.len());
        let mut chunk = Vec::with_capacity(CHUNK);
        for (key, i) in keyed {
            if self.keys.contains_key(&key.id) {
                continue;
            }
            let Some(row) = slots.get_mut(i).and_then(Option::take) else {
                continue;
            };
            self.count(&row, 1);
            self.keys.insert(key.id, key);
            chunk.push(row);
            if chunk.len() == CHUNK {
                self.chunks
                    .push(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK)));
            }
        }
        if !chunk.is_empty() {
            self.chunks.push(chunk);
        }
    }

    /// Adds a row, or replaces the row with its id; returns the old one.
    pub fn upsert(&mut self, row: MessageRow) -> Option<MessageRow> {
        let old = self.remove(&row.id);
        let key = self.order.key(&row);
        self.count(&row, 1);
        self.keys.insert(row.id, key);
        let order = self.order;
        let c = self
            .chunks
            .partition_point(|chunk| chunk.last().is_some_and(|last| order.key(last) < key));
        if c == self.chunks.len() {
            match self.chunks.last_mut() {
                Some(chunk) if chunk.len() < CHUNK => chunk.push(row),
                _ => self.chunks.push(vec![row]),
            }
            return old;
        }
        let chunk = &mut self.chunks[c];
        let at = chunk.partition_point(|r| order.key(r) < key);
        chunk.insert(at, row);
        if chunk.len() > CHUNK {
            let tail = chunk.split_off(CHUNK / 2);
            self.chunks.insert(c + 1, tail);
        }
        old
    }

    /// Removes the row with `id`, if there is one.
    pub fn remove(&mut self, id: &MessageId) -> Option<MessageRow> {
        let key = self.keys.remove(id)?;
        let (c, at) = self.locate(&key)?;
        let row = self.chunks[c].remove(at);
        if self.chunks[c].is_empty() {
            self.chunks.remove(c);
        }
        self.count(&row, -1);
        Some(row)
    }

    fn locate(&self, key: &Key) -> Option<(usize, usize)> {
        let order = self.order;
        let c = self
            .chunks
            .partition_point(|chunk| chunk.last().is_some_and(|last| order.key(last) < *key));
        let chunk = self.chunks.get(c)?;
        let at = chunk.binary_search_by(|r| order.key(r).cmp(key)).ok()?;
        Some((c, at))
    }

    fn count(&mut self, r: &MessageRow, by: isize) {
        let add = |n: &mut usize| *n = n.saturating_add_signed(by);
        if r.state.is_unacknowledged() {
            add(&mut self.unacknowledged[usize::from(r.precedence.rank())]);
        }
        if r.exercise {
            add(&mut self.exercise);
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The row at display position `i`.
    pub fn get(&self, mut i: usize) -> Option<&MessageRow> {
        for chunk in &self.chunks {
            if i < chunk.len() {
                return chunk.get(i);
            }
            i -= chunk.len();
        }
        None
    }

    /// The row with `id`.
    pub fn find(&self, id: &MessageId) -> Option<&MessageRow> {
        let (c, at) = self.locate(self.keys.get(id)?)?;
        self.chunks[c].get(at)
    }

    /// The display position of the row with `id`.
    pub fn position(&self, id: &MessageId) -> Option<usize> {
        let (c, at) = self.locate(self.keys.get(id)?)?;
        Some(self.chunks[..c].iter().map(Vec::len).sum::<usize>() + at)
    }

    /// Every row, in display order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &MessageRow> {
        self.chunks.iter().flatten()
    }

    /// The rows from display position `start` on.
    pub fn iter_from(&self, mut start: usize) -> impl Iterator<Item = &MessageRow> {
        let mut first = self.chunks.len();
        for (c, chunk) in self.chunks.iter().enumerate() {
            if start < chunk.len() {
                first = c;
                break;
            }
            start -= chunk.len();
        }
        self.chunks[first.min(self.chunks.len())..]
            .iter()
            .flatten()
            .skip(start)
    }

    /// Unacknowledged rows by precedence, FLASH first.
    pub fn unacknowledged(&self) -> [usize; 4] {
        self.unacknowledged
    }

    /// Whether any row is an exercise message.
    pub fn any_exercise(&self) -> bool {
        self.exercise > 0
    }

    /// Checks the invariants: sorted, indexed, counted.
    #[cfg(test)]
    fn check(&self) -> Result<(), String> {
        let keys: Vec<Key> = self.iter().map(|r| self.order.key(r)).collect();
        if keys.windows(2).any(|w| w[0] >= w[1]) {
            return Err("rows out of order".into());
        }
        if keys.len() != self.keys.len() {
            return Err(format!(
                "{} rows but {} indexed",
                keys.len(),
                self.keys.len()
            ));
        }
        let mut counts = [0; 4];
        for r in self.iter().filter(|r| r.state.is_unacknowledged()) {
            counts[usize::from(r.precedence.rank())] += 1;
        }
        if counts != self.unacknowledged {
            return Err(format!("counts {:?} != {counts:?}", self.unacknowledged));
        }
        if self.chunks.iter().any(|c| c.is_empty() || c.len() > CHUNK) {
            return Err("a chunk is empty or too long".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{OperatorName, Precedence, StationName};
    use crate::store::{Direction, MessageState};

    fn row(n: u64, precedence: Precedence, state: MessageState) -> MessageRow {
        let at = jiff::Timestamp::from_second(1_700_000_000 + (n % 997) as i64).expect("time");
        MessageRow {
            id: MessageId(uuid::Uuid::from_u128(u128::from(n))),
            direction: Direction::In,
            peer: StationName::new("MOSCOW").expect("name"),
            serial: n,
            precedence,
            exercise: n.is_multiple_of(7),
            template_id: "general".into(),
            template_version: 1,
            released_at: at,
            stored_at: at,
            operator: OperatorName::new("op").expect("name"),
            second_operator: None,
            state,
            receipt_at: None,
            ack_by: None,
            ack_at: None,
            refusal: None,
            attachments: 0,
            attachments_done: 0,
            attachments_refused: 0,
            subject: None,
            suspect: None,
            label: None,
            amended: None,
        }
    }

    /// A small deterministic generator (xorshift), so a failure repeats.
    struct Gen(u64);

    impl Gen {
        fn next(&mut self, below: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % below
        }
    }

    #[test]
    fn changes_one_at_a_time_keep_the_order_a_full_sort_gives() {
        for order in [Order::Queue, Order::Newest] {
            let mut g = Gen(0x9e37_79b9_7f4a_7c15);
            let mut rows = Rows::new(order);
            let mut all: HashMap<MessageId, MessageRow> = HashMap::new();
            for step in 0..6000u64 {
                let n = g.next(2500);
                let precedence = Precedence::ALL[g.next(4) as usize];
                let state = if g.next(3) == 0 {
                    MessageState::Acknowledged
                } else {
                    MessageState::Received
                };
                let r = row(n, precedence, state);
                if g.next(10) == 0 {
                    assert_eq!(
                        rows.remove(&r.id).map(|o| o.id),
                        all.remove(&r.id).map(|o| o.id)
                    );
                } else {
                    let old = rows.upsert(r.clone());
                    assert_eq!(old.map(|o| o.id), all.insert(r.id, r).map(|o| o.id));
                }
                if step % 500 == 0 {
                    rows.check().expect("invariants");
                }
            }
            rows.check().expect("invariants");
            let mut sorted = Rows::new(order);
            sorted.replace_all(all.into_values().collect());
            let a: Vec<MessageId> = rows.iter().map(|r| r.id).collect();
            let b: Vec<MessageId> = sorted.iter().map(|r| r.id).collect();
            assert_eq!(a, b, "{order:?}");
            assert_eq!(rows.unacknowledged(), sorted.unacknowledged());
            for (i, id) in a.iter().enumerate().step_by(97) {
                assert_eq!(rows.position(id), Some(i));
                assert_eq!(rows.get(i).map(|r| r.id), Some(*id));
                assert_eq!(rows.iter_from(i).next().map(|r| r.id), Some(*id));
                assert_eq!(rows.find(id).map(|r| r.id), Some(*id));
            }
            assert!(rows.iter_from(rows.len()).next().is_none());
        }
    }

    #[test]
    fn the_queue_puts_unacknowledged_flash_first() {
        let mut rows = Rows::new(Order::Queue);
        rows.upsert(row(1, Precedence::Routine, MessageState::Received));
        rows.upsert(row(2, Precedence::Flash, MessageState::Acknowledged));
        rows.upsert(row(3, Precedence::Flash, MessageState::Received));
        let order: Vec<u64> = rows.iter().map(|r| r.serial).collect();
        assert_eq!(order, vec![3, 1, 2]);
        assert_eq!(rows.unacknowledged(), [1, 0, 0, 1]);
        rows.upsert(row(3, Precedence::Flash, MessageState::Acknowledged));
        let order: Vec<u64> = rows.iter().map(|r| r.serial).collect();
        // Acknowledged, both FLASH sort by receipt time.
        assert_eq!(order, vec![1, 2, 3]);
        assert_eq!(rows.unacknowledged(), [0, 0, 0, 1]);
    }

    #[test]
    fn a_resync_that_lists_a_row_twice_keeps_one() {
        let first = row(7, Precedence::Routine, MessageState::Received);
        let mut again = first.clone();
        again.precedence = Precedence::Flash;
        let mut rows = Rows::new(Order::Queue);
        rows.replace_all(vec![
            first,
            again,
            row(8, Precedence::Priority, MessageState::Received),
        ]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.unacknowledged().iter().sum::<usize>(), 2);
        rows.check().expect("invariants");
    }
}
