//! Access Analyzer runs one policy generation job per account at a time. Resources of one
//! account take turns in the order they asked, so a busy account cannot starve one of them
//! (ConflictException alone would let whoever retries first win every time). A resource that
//! stops asking (deleted, or switched to the S3 engine) loses its place after a while, so it
//! cannot hold up the others.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

/// Per account: who waits (in order) and who holds the account's one job, each with when it
/// last asked.
#[derive(Debug)]
pub struct AccountQueue {
    accounts: BTreeMap<String, Turns>,
    /// How long a place is kept without the resource asking again.
    keep_place: Duration,
}

#[derive(Debug, Default)]
struct Turns {
    waiting: VecDeque<(String, Instant)>,
    running: Option<(String, Instant)>,
}

impl Turns {
    fn forget_silent(&mut self, now: Instant, keep_place: Duration) {
        let stale = |asked: &Instant| now.saturating_duration_since(*asked) > keep_place;
        self.waiting.retain(|(_, asked)| !stale(asked));
        if self.running.as_ref().is_some_and(|(_, asked)| stale(asked)) {
            self.running = None;
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        self.waiting.iter().position(|(k, _)| k == key)
    }
}

impl AccountQueue {
    /// Resources that ask at least every `keep_place` keep their place.
    pub fn new(keep_place: Duration) -> AccountQueue {
        AccountQueue {
            accounts: BTreeMap::new(),
            keep_place,
        }
    }

    /// Whether `key` may start a job in `account` now; if not, it keeps its place in line and
    /// learns how many are ahead of it.
    pub fn try_start(&mut self, account: &str, key: &str, now: Instant) -> Result<(), usize> {
        let turns = self.accounts.entry(account.to_string()).or_default();
        turns.forget_silent(now, self.keep_place);
        if let Some((holder, asked)) = &mut turns.running
            && holder == key
        {
            *asked = now;
            return Ok(());
        }
        match turns.position(key) {
            Some(i) => turns.waiting[i].1 = now,
            None => turns.waiting.push_back((key.to_string(), now)),
        }
        let ahead = turns.position(key).expect("just queued");
        if turns.running.is_some() {
            return Err(ahead + 1);
        }
        if ahead > 0 {
            return Err(ahead);
        }
        turns.waiting.pop_front();
        turns.running = Some((key.to_string(), now));
        Ok(())
    }

    /// `key` polls a job it started earlier (perhaps before a restart): it holds the account.
    pub fn resume(&mut self, account: &str, key: &str, now: Instant) {
        let turns = self.accounts.entry(account.to_string()).or_default();
        turns.waiting.retain(|(k, _)| k != key);
        turns.running = Some((key.to_string(), now));
    }

    /// `key`'s start was refused (another job runs in the account): first in line again.
    pub fn refused(&mut self, account: &str, key: &str, now: Instant) {
        let turns = self.accounts.entry(account.to_string()).or_default();
        if turns.running.as_ref().is_some_and(|(k, _)| k == key) {
            turns.running = None;
        }
        turns.waiting.retain(|(k, _)| k != key);
        turns.waiting.push_front((key.to_string(), now));
    }

    /// `key`'s job ended: the next in line may start.
    pub fn finished(&mut self, account: &str, key: &str) {
        if let Some(turns) = self.accounts.get_mut(account) {
            turns.waiting.retain(|(k, _)| k != key);
            if turns.running.as_ref().is_some_and(|(k, _)| k == key) {
                turns.running = None;
            }
            if turns.waiting.is_empty() && turns.running.is_none() {
                self.accounts.remove(account);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP: Duration = Duration::from_secs(60);

    #[test]
    fn one_job_per_account_in_the_order_asked() {
        let t = Instant::now();
        let mut q = AccountQueue::new(KEEP);
        assert_eq!(q.try_start("111", "a", t), Ok(()));
        assert_eq!(q.try_start("111", "b", t), Err(1));
        assert_eq!(q.try_start("111", "c", t), Err(2));
        // Another account is independent.
        assert_eq!(q.try_start("222", "x", t), Ok(()));
        // Asking again keeps the place; the holder may always go on.
        assert_eq!(q.try_start("111", "c", t), Err(2));
        assert_eq!(q.try_start("111", "a", t), Ok(()));
        q.finished("111", "a");
        // c retried first, but b asked first.
        assert_eq!(q.try_start("111", "c", t), Err(1));
        assert_eq!(q.try_start("111", "b", t), Ok(()));
        q.finished("111", "b");
        assert_eq!(q.try_start("111", "c", t), Ok(()));
    }

    #[test]
    fn a_refused_start_keeps_the_front_and_a_resumed_job_holds_the_account() {
        let t = Instant::now();
        let mut q = AccountQueue::new(KEEP);
        assert_eq!(q.try_start("111", "a", t), Ok(()));
        assert_eq!(q.try_start("111", "b", t), Err(1));
        // Someone else's job runs in the account: a waits at the front, b stays behind it.
        q.refused("111", "a", t);
        assert_eq!(q.try_start("111", "b", t), Err(1));
        assert_eq!(q.try_start("111", "a", t), Ok(()));
        q.finished("111", "a");
        // After a restart, b finds its job in status and polls it: c must wait.
        let mut q = AccountQueue::new(KEEP);
        q.resume("111", "b", t);
        assert_eq!(q.try_start("111", "c", t), Err(1));
        q.finished("111", "b");
        assert_eq!(q.try_start("111", "c", t), Ok(()));
        q.finished("111", "c");
        assert!(q.accounts.is_empty(), "nothing left behind");
    }

    #[test]
    fn a_resource_that_stops_asking_loses_its_place() {
        let t = Instant::now();
        let later = t + KEEP + Duration::from_secs(1);
        let mut q = AccountQueue::new(KEEP);
        assert_eq!(q.try_start("111", "a", t), Ok(()));
        assert_eq!(q.try_start("111", "gone", t), Err(1));
        assert_eq!(q.try_start("111", "c", t), Err(2));
        // a finishes; "gone" was deleted and never asks again; c keeps asking.
        q.finished("111", "a");
        assert_eq!(q.try_start("111", "c", t + KEEP / 2), Err(1));
        assert_eq!(q.try_start("111", "c", later), Ok(()));
        // A holder that stopped polling no longer holds the account either.
        assert_eq!(q.try_start("111", "d", later + KEEP * 2), Ok(()));
    }
}
