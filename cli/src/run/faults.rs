//! The faults of one `eo run`: when to SIGKILL or wipe which node, and the
//! fault proxies on the links.
//!
//! - `--kill-every MS`: every MS milliseconds one running node, picked by the
//!   seeded rng, is SIGKILLed, reaped and restarted on the same data directory.
//! - `--wipe-disk-every MS`: likewise for a sender, whose directory is moved to
//!   `lost/` first (a lost disk; the old log stays as the verifier's evidence).
//!   A new life starts its workload from item 1, so a sender that lost its disk
//!   more often than it can finish a workload would never finish: each sender
//!   loses its disk at most [`WIPES_PER_SENDER_MAX`] times, then the run heals.
//! - `--drop`, `--dup`, `--delay`: one [`Proxy`] per directed link (node A's
//!   route to peer B): A is given the proxy's address for B, and the proxy forwards
//!   to B's real address, dropping, duplicating and delaying data frames.
//!   Handshake frames pass intact. Without these options nodes dial each other
//!   directly.

use super::cluster::Plan;
use eo_impl::core::NodeId;
use eo_impl::runtime::proxy::{Faults, Proxy, ProxyError, ProxyStats};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The most disk losses per sender in one run (then it is only killed).
pub const WIPES_PER_SENDER_MAX: u32 = 3;

/// A fault the schedule asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL a random running node and restart it.
    Kill,
    /// SIGKILL a random running sender, move its directory away, restart it empty.
    Wipe,
}

/// When the next kill and wipe are due, and the rng that picks their victims.
pub struct Schedule {
    kill_every: Option<Duration>,
    wipe_every: Option<Duration>,
    next_kill: Option<Instant>,
    next_wipe: Option<Instant>,
    rng: ChaCha8Rng,
}

impl Schedule {
    pub fn new(kill_every_ms: Option<u64>, wipe_every_ms: Option<u64>, seed: u64) -> Schedule {
        Schedule {
            kill_every: kill_every_ms.map(Duration::from_millis),
            wipe_every: wipe_every_ms.map(Duration::from_millis),
            next_kill: None,
            next_wipe: None,
            // Its own stream: the proxies derive theirs from the seed otherwise.
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x6b69_6c6c),
        }
    }

    /// The clock starts: the first faults are one period away.
    pub fn start(&mut self, now: Instant) {
        self.next_kill = self.kill_every.map(|p| now + p);
        self.next_wipe = self.wipe_every.map(|p| now + p);
    }

    /// The next fault due at `now`, if any (call until `None`). A period is
    /// counted from the previous fault's due time; if the supervisor fell behind
    /// by more than a period, the missed faults are skipped, not bunched.
    pub fn due(&mut self, now: Instant) -> Option<Fault> {
        let advance = |next: &mut Option<Instant>, every: Option<Duration>| -> bool {
            match (*next, every) {
                (Some(at), Some(p)) if at <= now => {
                    let mut following = at + p;
                    if following <= now {
                        following = now + p;
                    }
                    *next = Some(following);
                    true
                }
                _ => false,
            }
        };
        if advance(&mut self.next_wipe, self.wipe_every) {
            return Some(Fault::Wipe);
        }
        if advance(&mut self.next_kill, self.kill_every) {
            return Some(Fault::Kill);
        }
        None
    }

    /// One of `candidates`, uniformly, or `None` if there is none.
    pub fn pick(&mut self, candidates: &[usize]) -> Option<usize> {
        if candidates.is_empty() {
            return None;
        }
        Some(candidates[self.rng.random_range(0..candidates.len())])
    }
}

/// Every node's route to every peer: the peer's own address, or a proxy's.
pub struct Links {
    /// (from, to) → the address `from` dials for `to`.
    routes: BTreeMap<(NodeId, NodeId), SocketAddr>,
    proxies: Vec<Proxy>,
}

impl Links {
    /// No links (what is left after [`Links::stop`]).
    pub fn none() -> Links {
        Links {
            routes: BTreeMap::new(),
            proxies: Vec::new(),
        }
    }

    /// Routes for every (node, peer) of `plan`: direct without faults, through a
    /// proxy seeded from `seed` and the link otherwise.
    pub fn start(
        plan: &Plan,
        listens: &BTreeMap<NodeId, SocketAddr>,
        faults: Faults,
        seed: u64,
    ) -> Result<Links, ProxyError> {
        faults.check()?;
        let mut links = Links::none();
        for node in &plan.nodes {
            for &peer in &node.peers {
                let target = listens[&peer];
                let addr = if faults.any() {
                    let link_seed = seed
                        ^ (u64::from(node.id) << 32 | u64::from(peer)).wrapping_mul(0x9E37_79B9);
                    let proxy = Proxy::start(target, faults, link_seed)?;
                    let addr = proxy.addr();
                    links.proxies.push(proxy);
                    addr
                } else {
                    target
                };
                links.routes.insert((node.id, peer), addr);
            }
        }
        Ok(links)
    }

    /// The address `from` dials for `to`.
    pub fn addr(&self, from: NodeId, to: NodeId) -> SocketAddr {
        self.routes[&(from, to)]
    }

    /// The proxies' counts, summed.
    pub fn stats(&self) -> ProxyStats {
        sum(self.proxies.iter().map(Proxy::stats))
    }

    /// Stops every proxy; their final counts, summed.
    pub fn stop(self) -> ProxyStats {
        sum(self.proxies.into_iter().map(Proxy::stop))
    }
}

fn sum(stats: impl Iterator<Item = ProxyStats>) -> ProxyStats {
    stats.fold(ProxyStats::default(), |a, b| ProxyStats {
        connections: a.connections + b.connections,
        refused: a.refused + b.refused,
        handshake_frames: a.handshake_frames + b.handshake_frames,
        data_frames: a.data_frames + b.data_frames,
        dropped: a.dropped + b.dropped,
        duplicated: a.duplicated + b.duplicated,
        delayed: a.delayed + b.delayed,
        bad_frames: a.bad_frames + b.bad_frames,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_come_one_period_apart_and_missed_ones_are_skipped() {
        let mut s = Schedule::new(Some(100), None, 1);
        let t0 = Instant::now();
        s.start(t0);
        assert_eq!(s.due(t0), None);
        assert_eq!(s.due(t0 + Duration::from_millis(100)), Some(Fault::Kill));
        assert_eq!(s.due(t0 + Duration::from_millis(150)), None);
        // Far behind: one fault, not ten.
        assert_eq!(s.due(t0 + Duration::from_millis(1_100)), Some(Fault::Kill));
        assert_eq!(s.due(t0 + Duration::from_millis(1_100)), None);
    }

    #[test]
    fn the_victim_is_one_of_the_candidates() {
        let mut s = Schedule::new(None, Some(10), 3);
        assert_eq!(s.pick(&[]), None);
        for _ in 0..100 {
            assert!([2, 5, 7].contains(&s.pick(&[2, 5, 7]).unwrap()));
        }
    }
}
