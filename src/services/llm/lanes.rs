//! Spreads provider calls over several HTTP clients ("lanes") so that concurrent calls are
//! never capped by one HTTP/2 connection.
//!
//! A hosted provider's API is HTTP/2 over TLS, and its server caps the streams open at once on
//! one connection (`SETTINGS_MAX_CONCURRENT_STREAMS`, typically 100 to 256). hyper's client
//! pool never opens a second connection when that cap is reached (hyperium/hyper#2197): every
//! new request goes to the same shared connection and waits there for a free stream. LLM
//! answers stream for many seconds, so once warm, one client would serve only about a hundred
//! concurrent chats per provider, and the next user would wait for someone else's answer to
//! end before theirs began.
//!
//! Each lane is its own client, hence its own connection pool. A call takes a place in the
//! first lane with fewer than [`STREAMS_PER_LANE`] calls in flight (a new lane is opened when
//! all are full), and keeps it until its response, streamed or not, is dropped. 100 is the
//! least a server should allow (RFC 9113, 6.5.2), so no lane's connection is asked for more
//! streams than it takes. Filling lanes in order keeps calls on warm connections and lets the
//! connections of lanes no longer needed close when idle. All lanes share one TLS
//! configuration, so the platform's root certificates are loaded and held once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

/// Calls in flight per lane; see the module documentation.
pub const STREAMS_PER_LANE: usize = 100;
/// Lanes opened at most (25,600 calls at [`STREAMS_PER_LANE`]); past that, calls share the
/// least busy lane.
const MAX_LANES: usize = 256;

/// Builds the client of a new lane.
pub type MakeClient = Box<dyn Fn() -> reqwest::Result<reqwest::Client> + Send + Sync>;

/// The lanes, opened on demand.
pub struct Lanes {
    lanes: RwLock<Vec<Arc<Lane>>>,
    make_client: MakeClient,
    streams_per_lane: usize,
}

struct Lane {
    client: reqwest::Client,
    in_flight: AtomicUsize,
}

/// A call's place in a lane, given back when dropped.
pub struct LaneTicket {
    lane: Arc<Lane>,
}

impl LaneTicket {
    /// The client to make the call with.
    pub fn client(&self) -> &reqwest::Client {
        &self.lane.client
    }
}

impl Drop for LaneTicket {
    fn drop(&mut self) {
        self.lane.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("open", &self.open())
            .field("streams_per_lane", &self.streams_per_lane)
            .finish_non_exhaustive()
    }
}

impl Lanes {
    /// Opens the first lane at once, so a client that cannot be built fails at startup.
    pub fn new(make_client: MakeClient, streams_per_lane: usize) -> reqwest::Result<Self> {
        let first = Lane::new(make_client()?);
        Ok(Self {
            lanes: RwLock::new(vec![first]),
            make_client,
            streams_per_lane: streams_per_lane.max(1),
        })
    }

    /// The first lane's client, for building requests (any lane may send them).
    pub fn first_client(&self) -> reqwest::Client {
        self.read()[0].client.clone()
    }

    /// How many lanes are open.
    pub fn open(&self) -> usize {
        self.read().len()
    }

    /// A place for one call: in the first lane with room, else in a new lane, else (all
    /// [`MAX_LANES`] full, or a new client failed to build) in the least busy lane.
    pub fn acquire(&self) -> LaneTicket {
        if let Some(ticket) = self.take_room(&self.read()) {
            return ticket;
        }
        let mut lanes = self
            .lanes
            .write()
            .unwrap_or_else(|poison| poison.into_inner());
        // Another call may have opened a lane, or freed a place, while this one waited.
        if let Some(ticket) = self.take_room(&lanes) {
            return ticket;
        }
        if lanes.len() < MAX_LANES {
            match (self.make_client)() {
                Ok(client) => {
                    let lane = Lane::new(client);
                    lanes.push(lane.clone());
                    tracing::debug!(lanes = lanes.len(), "opened another LLM client lane");
                    return Lane::enter(lane);
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot open another LLM client lane");
                }
            }
        }
        let least_busy = lanes
            .iter()
            .min_by_key(|lane| lane.in_flight.load(Ordering::Acquire))
            .cloned()
            .unwrap_or_else(|| lanes[0].clone());
        Lane::enter(least_busy)
    }

    fn take_room(&self, lanes: &[Arc<Lane>]) -> Option<LaneTicket> {
        lanes.iter().find_map(|lane| {
            lane.in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |calls| {
                    (calls < self.streams_per_lane).then_some(calls + 1)
                })
                .ok()
                .map(|_| LaneTicket { lane: lane.clone() })
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<Arc<Lane>>> {
        self.lanes
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Lane {
    fn new(client: reqwest::Client) -> Arc<Self> {
        Arc::new(Self {
            client,
            in_flight: AtomicUsize::new(0),
        })
    }

    /// A place in this lane regardless of its room.
    fn enter(lane: Arc<Self>) -> LaneTicket {
        lane.in_flight.fetch_add(1, Ordering::AcqRel);
        LaneTicket { lane }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lanes(streams_per_lane: usize) -> Lanes {
        // Which client a lane holds does not matter here.
        let client = reqwest::Client::new();
        Lanes::new(Box::new(move || Ok(client.clone())), streams_per_lane).unwrap()
    }

    fn in_flight(lanes: &Lanes) -> Vec<usize> {
        lanes
            .read()
            .iter()
            .map(|lane| lane.in_flight.load(Ordering::Acquire))
            .collect()
    }

    #[test]
    fn calls_fill_the_first_lane_before_another_opens() {
        let lanes = lanes(3);
        let tickets: Vec<_> = (0..7).map(|_| lanes.acquire()).collect();
        assert_eq!(in_flight(&lanes), [3, 3, 1]);
        drop(tickets);
        assert_eq!(in_flight(&lanes), [0, 0, 0]);
    }

    #[test]
    fn a_freed_place_in_an_earlier_lane_is_taken_first() {
        let lanes = lanes(2);
        let mut tickets: Vec<_> = (0..4).map(|_| lanes.acquire()).collect();
        tickets.remove(0);
        let _next = lanes.acquire();
        assert_eq!(in_flight(&lanes), [2, 2]);
        assert_eq!(lanes.open(), 2);
    }

    #[test]
    fn past_the_last_lane_calls_share_the_least_busy_one() {
        let lanes = lanes(1);
        let mut tickets: Vec<_> = (0..MAX_LANES).map(|_| lanes.acquire()).collect();
        tickets.swap_remove(5);
        tickets.push(lanes.acquire());
        tickets.push(lanes.acquire());
        assert_eq!(lanes.open(), MAX_LANES);
        let loads = in_flight(&lanes);
        assert_eq!(loads.iter().sum::<usize>(), MAX_LANES + 1);
        assert!(loads.iter().all(|&calls| calls <= 2), "{loads:?}");
    }

    #[test]
    fn concurrent_calls_never_overfill_a_lane() {
        let lanes = Arc::new(lanes(10));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let lanes = lanes.clone();
                std::thread::spawn(move || (0..25).map(|_| lanes.acquire()).collect::<Vec<_>>())
            })
            .collect();
        let tickets: Vec<_> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(tickets.len(), 200);
        assert_eq!(in_flight(&lanes), [10; 20]);
    }
}
