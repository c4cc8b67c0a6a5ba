//! Access Analyzer runs one policy generation job per account at a time. Resources of one
//! account take turns in the order they asked, so a busy account cannot starve one of them
//! (ConflictException alone would let whoever retries first win every time).

use std::collections::{BTreeMap, VecDeque};

/// Per account: who waits (in order) and who holds the account's one job.
#[derive(Debug, Default)]
pub struct AccountQueue {
    accounts: BTreeMap<String, Turns>,
}

#[derive(Debug, Default)]
struct Turns {
    waiting: VecDeque<String>,
    running: Option<String>,
}

impl AccountQueue {
    /// Whether `key` may start a job in `account` now; if not, it keeps its place in line.
    /// Returns the number of resources ahead of it when it may not.
    pub fn try_start(&mut self, account: &str, key: &str) -> Result<(), usize> {
        let turns = self.accounts.entry(account.to_string()).or_default();
        if turns.running.as_deref() == Some(key) {
            return Ok(());
        }
        if !turns.waiting.iter().any(|k| k == key) {
            turns.waiting.push_back(key.to_string());
        }
        if turns.running.is_some() {
            return Err(turns.waiting.iter().position(|k| k == key).unwrap_or(0) + 1);
        }
        match turns.waiting.iter().position(|k| k == key) {
            Some(0) => {
                turns.waiting.pop_front();
                turns.running = Some(key.to_string());
                Ok(())
            }
            Some(ahead) => Err(ahead),
            None => unreachable!("just queued"),
        }
    }

    /// `key` polls a job it started earlier (perhaps before a restart): it holds the account.
    pub fn resume(&mut self, account: &str, key: &str) {
        let turns = self.accounts.entry(account.to_string()).or_default();
        turns.waiting.retain(|k| k != key);
        turns.running = Some(key.to_string());
    }

    /// `key`'s start was refused (another job runs in the account): first in line again.
    pub fn refused(&mut self, account: &str, key: &str) {
        let turns = self.accounts.entry(account.to_string()).or_default();
        if turns.running.as_deref() == Some(key) {
            turns.running = None;
        }
        turns.waiting.retain(|k| k != key);
        turns.waiting.push_front(key.to_string());
    }

    /// `key`'s job ended (or it gave up waiting): the next in line may start.
    pub fn finished(&mut self, account: &str, key: &str) {
        if let Some(turns) = self.accounts.get_mut(account) {
            turns.waiting.retain(|k| k != key);
            if turns.running.as_deref() == Some(key) {
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

    #[test]
    fn one_job_per_account_in_the_order_asked() {
        let mut q = AccountQueue::default();
        assert_eq!(q.try_start("111", "a"), Ok(()));
        assert_eq!(q.try_start("111", "b"), Err(1));
        assert_eq!(q.try_start("111", "c"), Err(2));
        // Another account is independent.
        assert_eq!(q.try_start("222", "x"), Ok(()));
        // Asking again keeps the place; the holder may always go on.
        assert_eq!(q.try_start("111", "c"), Err(2));
        assert_eq!(q.try_start("111", "a"), Ok(()));
        q.finished("111", "a");
        // c retried first, but b asked first.
        assert_eq!(q.try_start("111", "c"), Err(1));
        assert_eq!(q.try_start("111", "b"), Ok(()));
        q.finished("111", "b");
        assert_eq!(q.try_start("111", "c"), Ok(()));
    }

    #[test]
    fn a_refused_start_keeps_the_front_and_a_resumed_job_holds_the_account() {
        let mut q = AccountQueue::default();
        assert_eq!(q.try_start("111", "a"), Ok(()));
        assert_eq!(q.try_start("111", "b"), Err(1));
        // Someone else's job runs in the account: a waits at the front, b stays behind it.
        q.refused("111", "a");
        assert_eq!(q.try_start("111", "b"), Err(1));
        assert_eq!(q.try_start("111", "a"), Ok(()));
        q.finished("111", "a");
        // After a restart, b finds its job in status and polls it: c must wait.
        let mut q = AccountQueue::default();
        q.resume("111", "b");
        assert_eq!(q.try_start("111", "c"), Err(1));
        q.finished("111", "b");
        assert_eq!(q.try_start("111", "c"), Ok(()));
        q.finished("111", "c");
        assert!(q.accounts.is_empty(), "nothing left behind");
    }
}
