//! The HTTP clients provider calls go through, chosen so that concurrent calls to a provider
//! are never capped by one HTTP/2 connection.
//!
//! A hosted provider's API is HTTP/2 over TLS, and its server caps the streams open at once on
//! one connection (`SETTINGS_MAX_CONCURRENT_STREAMS`, typically 100 to 256). hyper's client
//! pool never opens a second connection when that cap is reached (hyperium/hyper#2197): every
//! new request goes to the same shared connection and waits there for a free stream. LLM
//! answers stream for many seconds, so once warm, one client would serve only about a hundred
//! concurrent chats per provider, and the next user would wait for someone else's answer to
//! end before theirs began.
//!
//! So calls go through lanes: each lane is a client of its own, with its own connection pool.
//! A call takes a place in the first lane of its server with fewer than [`STREAMS_PER_LANE`]
//! calls in flight (a new lane opens when all are full) and keeps it until its response,
//! streamed or not, is dropped. 100 is the least a server should allow (RFC 9113, 6.5.2), so
//! no connection is asked for more streams than it takes. Filling lanes in order keeps calls
//! on warm connections and lets the connections of lanes no longer needed close when idle.
//!
//! - A server is first called through negotiating lanes, whose clients offer HTTP/2 and
//!   HTTP/1.1 (ALPN). A plain-HTTP server (a local vLLM or Ollama) and one that answers in
//!   HTTP/1.1 stay there: HTTP/1.1 opens a connection per call in flight anyway.
//! - Once a connection to the server has negotiated HTTP/2 (learnt when the TLS handshake
//!   ends, not when the first answer arrives, which for a whole answer takes seconds), its next
//!   calls go through HTTP/2-only lanes: the pool of a client that knows its server speaks
//!   HTTP/2 opens one connection at a time, where with ALPN each call waiting for a connection
//!   opens one. So each lane holds one connection.
//! - A call through an HTTP/2-only lane that cannot connect sends its server back to
//!   negotiating.
//! - First contact: until the first connection to a server is made, one call makes it and the
//!   others wait for it (at most a second), so that a burst of calls to a server not yet known
//!   opens one connection and learns its protocol, instead of each call negotiating a TLS
//!   connection of its own. If that connection fails or is slow, the waiting calls go ahead on
//!   their own.
//!
//! All clients share one TLS configuration (the platform's root certificates are loaded and
//! held once). Servers are the configured providers' base URLs, so their number is small.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll, ready};

use hyper_util::client::legacy::connect::Connection;
use tokio::sync::Notify;
use tokio::time::Instant;
use tower::{Layer, Service};

/// Calls in flight per lane; see the module documentation.
pub const STREAMS_PER_LANE: usize = 100;
/// Lanes opened at most per server (25,600 calls at [`STREAMS_PER_LANE`]); past that, calls
/// share the least busy lane.
const MAX_LANES: usize = 256;

/// Builds the client of a new lane. A negotiating client puts the [`NoteHttp2`] it is given
/// around its connector; an HTTP/2-only client has nothing to learn and ignores it.
pub type MakeClient = Box<dyn Fn(NoteHttp2) -> reqwest::Result<reqwest::Client> + Send + Sync>;

/// The lanes of each server called so far.
pub struct Clients {
    /// Builds requests (any client may send them).
    builder: reqwest::Client,
    /// Each server by its origin. A few (the configured providers): a scan finds one without
    /// building a key per call.
    servers: RwLock<Vec<(Origin, Arc<Server>)>>,
    make_negotiating: Arc<MakeClient>,
    make_http2_only: Arc<MakeClient>,
    streams_per_lane: usize,
}

/// One server's lanes: negotiating ones until a connection to it negotiated HTTP/2, then
/// HTTP/2-only ones.
struct Server {
    negotiating: Lanes,
    http2_only: Lanes,
    contact: Arc<Contact>,
}

/// What is known of a server's protocol, shared by its lanes and the connections they make.
#[derive(Default)]
struct Contact {
    speaks_http2: AtomicBool,
    /// The first connection to the server was made or failed (since it was first called, or
    /// sent back to negotiating): calls no longer wait for it.
    contacted: AtomicBool,
    /// A call is making the first connection.
    probing: AtomicBool,
    /// Wakes the calls waiting for the first connection.
    settled: Notify,
}

impl Contact {
    /// A connection was made; `http2` if it negotiated HTTP/2.
    fn connected(&self, http2: bool) {
        if http2 {
            self.speaks_http2.store(true, Ordering::Release);
        }
        self.settle();
    }

    /// First contact is over, whether a connection was made or not.
    fn settle(&self) {
        self.contacted.store(true, Ordering::Release);
        self.probe_ended();
    }

    fn probe_ended(&self) {
        self.probing.store(false, Ordering::Release);
        self.settled.notify_waiters();
    }

    /// Waits, until `until` at most, while another call makes the first connection to the
    /// server. Returns a probe when this call is to make it.
    async fn first_contact(self: &Arc<Self>, until: Instant) -> Option<Probe> {
        if self.contacted.load(Ordering::Acquire) {
            return None;
        }
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if self.contacted.load(Ordering::Acquire) {
                return None;
            }
            if !self.probing.swap(true, Ordering::AcqRel) {
                return Some(Probe(self.clone()));
            }
            if tokio::time::timeout_at(until, settled).await.is_err() {
                return None;
            }
        }
    }
}

/// Held by the call making the first connection to a server. If that call ends without a
/// connection being made or failing (it was cancelled), another waiting call takes over.
/// (A probe outliving its server's return to negotiating may let a second call connect
/// alongside the new probe: one connection more, once.)
struct Probe(Arc<Contact>);

impl Drop for Probe {
    fn drop(&mut self) {
        self.0.probe_ended();
    }
}

/// The client one call goes through, holding the call's place in its lane until dropped.
pub struct Ticket {
    client: reqwest::Client,
    _place: Option<Place>,
    server: Arc<Server>,
    http2_only: bool,
    _probe: Option<Probe>,
}

impl Ticket {
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The call could not connect: if it went through an HTTP/2-only lane, the server's next
    /// calls negotiate the protocol again.
    pub fn connect_failed(&self) {
        let contact = &self.server.contact;
        if self.http2_only && contact.speaks_http2.swap(false, Ordering::AcqRel) {
            contact.contacted.store(false, Ordering::Release);
            tracing::warn!(
                "an HTTP/2 lane cannot connect; calls to its server negotiate the protocol again"
            );
        }
    }
}

/// A call's place in a lane, given back when dropped.
struct Place {
    lane: Arc<Lane>,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.lane.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients")
            .field("streams_per_lane", &self.streams_per_lane)
            .finish_non_exhaustive()
    }
}

impl Clients {
    /// `make_negotiating` builds a client offering HTTP/2 and HTTP/1.1, `make_http2_only` one
    /// that speaks HTTP/2 only. Fails as building the first client does.
    pub fn new(
        make_negotiating: MakeClient,
        make_http2_only: MakeClient,
        streams_per_lane: usize,
    ) -> reqwest::Result<Self> {
        Ok(Self {
            // Any client may send; what the builder's connections negotiate is not noted.
            builder: make_negotiating(NoteHttp2::default())?,
            servers: RwLock::default(),
            make_negotiating: Arc::new(make_negotiating),
            make_http2_only: Arc::new(make_http2_only),
            streams_per_lane: streams_per_lane.max(1),
        })
    }

    /// A client for building requests (`ticket` chooses the one that sends them).
    pub fn builder(&self) -> &reqwest::Client {
        &self.builder
    }

    /// The client for one call to `url`; waits (until `until` at most) while another call
    /// makes the first connection to its server.
    pub async fn ticket(&self, url: &reqwest::Url, until: Instant) -> Ticket {
        let server = self.server(url);
        let probe = server.contact.first_contact(until).await;
        let http2_only = server.contact.speaks_http2.load(Ordering::Acquire);
        let lanes = if http2_only {
            &server.http2_only
        } else {
            &server.negotiating
        };
        match lanes.acquire() {
            Some(place) => Ticket {
                client: place.lane.client.clone(),
                _place: Some(place),
                server,
                http2_only,
                _probe: probe,
            },
            // No lane could be built: the builder is a negotiating client too, but what its
            // connections negotiate is not noted, so no call waits for them.
            None => {
                server.contact.settle();
                Ticket {
                    client: self.builder.clone(),
                    _place: None,
                    server,
                    http2_only: false,
                    _probe: None,
                }
            }
        }
    }

    fn server(&self, url: &reqwest::Url) -> Arc<Server> {
        if let Some(server) = find(&read(&self.servers), url) {
            return server;
        }
        let contact = Arc::new(Contact::default());
        let lanes = |kind, make_client: &Arc<MakeClient>| Lanes {
            kind,
            lanes: RwLock::default(),
            make_client: make_client.clone(),
            note: NoteHttp2 {
                contact: contact.clone(),
            },
            streams_per_lane: self.streams_per_lane,
        };
        let server = Server {
            negotiating: lanes("negotiating", &self.make_negotiating),
            http2_only: lanes("http2", &self.make_http2_only),
            contact: contact.clone(),
        };
        let mut servers = write(&self.servers);
        // Another call may have added it while this one waited.
        if let Some(server) = find(&servers, url) {
            return server;
        }
        let server = Arc::new(server);
        servers.push((Origin::of(url), server.clone()));
        server
    }

    /// How many HTTP/2-only lanes are open to the server of `url`.
    #[cfg(test)]
    pub fn http2_lanes_open(&self, url: &reqwest::Url) -> usize {
        find(&read(&self.servers), url).map_or(0, |server| read(&server.http2_only.lanes).len())
    }
}

/// Where a server is: scheme, host and port (not userinfo, path or query).
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn of(url: &reqwest::Url) -> Self {
        Self {
            scheme: url.scheme().to_owned(),
            host: url.host_str().unwrap_or_default().to_owned(),
            port: url.port_or_known_default(),
        }
    }

    fn is_of(&self, url: &reqwest::Url) -> bool {
        self.scheme == url.scheme()
            && self.host == url.host_str().unwrap_or_default()
            && self.port == url.port_or_known_default()
    }
}

fn find(servers: &[(Origin, Arc<Server>)], url: &reqwest::Url) -> Option<Arc<Server>> {
    servers
        .iter()
        .find(|(origin, _)| origin.is_of(url))
        .map(|(_, server)| server.clone())
}

/// A layer around a negotiating client's connector: when a connection to the server negotiated
/// HTTP/2, the server's next calls go through HTTP/2-only lanes; when the first connection is
/// made (or fails), the calls waiting for it go ahead.
#[derive(Clone, Default)]
pub struct NoteHttp2 {
    contact: Arc<Contact>,
}

impl<S> Layer<S> for NoteHttp2 {
    type Service = NotingHttp2<S>;

    fn layer(&self, inner: S) -> NotingHttp2<S> {
        NotingHttp2 {
            inner,
            contact: self.contact.clone(),
        }
    }
}

/// The connector service [`NoteHttp2`] wraps.
#[derive(Clone)]
pub struct NotingHttp2<S> {
    inner: S,
    contact: Arc<Contact>,
}

impl<S, Target> Service<Target> for NotingHttp2<S>
where
    S: Service<Target>,
    S::Response: Connection,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Connecting<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, target: Target) -> Connecting<S::Future> {
        Connecting {
            inner: self.inner.call(target),
            contact: self.contact.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection being made, noted when made.
    pub struct Connecting<F> {
        #[pin]
        inner: F,
        contact: Arc<Contact>,
    }
}

impl<F, C, E> Future for Connecting<F>
where
    F: Future<Output = Result<C, E>>,
    C: Connection,
{
    type Output = Result<C, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = ready!(this.inner.poll(cx));
        match &outcome {
            Ok(connection) => this
                .contact
                .connected(connection.connected().is_negotiated_h2()),
            Err(_) => this.contact.settle(),
        }
        Poll::Ready(outcome)
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poison| poison.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|poison| poison.into_inner())
}

/// One server's lanes, opened on demand.
struct Lanes {
    /// `negotiating` or `http2`, the `kind` label of the `llm_client_lanes` gauge.
    kind: &'static str,
    lanes: RwLock<Vec<Arc<Lane>>>,
    make_client: Arc<MakeClient>,
    /// Given to each new lane's client: notes that the server speaks HTTP/2.
    note: NoteHttp2,
    streams_per_lane: usize,
}

struct Lane {
    client: reqwest::Client,
    in_flight: AtomicUsize,
}

impl Lanes {
    /// A place for one call: in the first lane with room, else in a new lane, else (all
    /// [`MAX_LANES`] full, or a new client failed to build) in the least busy lane. `None`
    /// when no lane is open and none can be.
    fn acquire(&self) -> Option<Place> {
        if let Some(place) = self.take_room(&read(&self.lanes)) {
            return Some(place);
        }
        let mut lanes = write(&self.lanes);
        // Another call may have opened a lane, or freed a place, while this one waited.
        if let Some(place) = self.take_room(&lanes) {
            return Some(place);
        }
        if lanes.len() < MAX_LANES {
            match (self.make_client)(self.note.clone()) {
                Ok(client) => {
                    let lane = Arc::new(Lane {
                        client,
                        in_flight: AtomicUsize::new(0),
                    });
                    lanes.push(lane.clone());
                    // Lanes stay open for the process's life (an idle one holds no connection).
                    metrics::gauge!("llm_client_lanes", "kind" => self.kind).increment(1.0);
                    tracing::debug!(
                        kind = self.kind,
                        lanes = lanes.len(),
                        "opened another lane to an LLM provider"
                    );
                    return Some(Lane::enter(lane));
                }
                Err(error) => tracing::warn!(%error, "cannot open another lane to an LLM provider"),
            }
        }
        lanes
            .iter()
            .min_by_key(|lane| lane.in_flight.load(Ordering::Acquire))
            .map(|lane| Lane::enter(lane.clone()))
    }

    fn take_room(&self, lanes: &[Arc<Lane>]) -> Option<Place> {
        lanes.iter().find_map(|lane| {
            lane.in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |calls| {
                    (calls < self.streams_per_lane).then_some(calls + 1)
                })
                .ok()
                .map(|_| Place { lane: lane.clone() })
        })
    }
}

impl Lane {
    /// A place in this lane regardless of its room.
    fn enter(lane: Arc<Self>) -> Place {
        lane.in_flight.fetch_add(1, Ordering::AcqRel);
        Place { lane }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn lanes(streams_per_lane: usize) -> Lanes {
        // Which client a lane holds does not matter here.
        let client = reqwest::Client::new();
        Lanes {
            kind: "negotiating",
            lanes: RwLock::default(),
            make_client: Arc::new(Box::new(move |_| Ok(client.clone()))),
            note: NoteHttp2::default(),
            streams_per_lane,
        }
    }

    fn in_flight(lanes: &Lanes) -> Vec<usize> {
        read(&lanes.lanes)
            .iter()
            .map(|lane| lane.in_flight.load(Ordering::Acquire))
            .collect()
    }

    #[test]
    fn calls_fill_the_first_lane_before_another_opens() {
        let lanes = lanes(3);
        let tickets: Vec<_> = (0..7).map(|_| lanes.acquire().unwrap()).collect();
        assert_eq!(in_flight(&lanes), [3, 3, 1]);
        drop(tickets);
        assert_eq!(in_flight(&lanes), [0, 0, 0]);
    }

    #[test]
    fn a_freed_place_in_an_earlier_lane_is_taken_first() {
        let lanes = lanes(2);
        let mut tickets: Vec<_> = (0..4).map(|_| lanes.acquire().unwrap()).collect();
        tickets.remove(0);
        tickets.push(lanes.acquire().unwrap());
        assert_eq!(in_flight(&lanes), [2, 2]);
    }

    #[test]
    fn past_the_last_lane_calls_share_the_least_busy_one() {
        let lanes = lanes(1);
        let mut tickets: Vec<_> = (0..MAX_LANES).map(|_| lanes.acquire().unwrap()).collect();
        tickets.swap_remove(5);
        tickets.push(lanes.acquire().unwrap());
        tickets.push(lanes.acquire().unwrap());
        let loads = in_flight(&lanes);
        assert_eq!(loads.len(), MAX_LANES);
        assert_eq!(loads.iter().sum::<usize>(), MAX_LANES + 1);
        assert!(loads.iter().all(|&calls| calls <= 2), "{loads:?}");
    }

    #[test]
    fn concurrent_calls_never_overfill_a_lane() {
        let lanes = Arc::new(lanes(10));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let lanes = lanes.clone();
                std::thread::spawn(move || {
                    (0..25)
                        .map(|_| lanes.acquire().unwrap())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let tickets: Vec<_> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        assert_eq!(tickets.len(), 200);
        assert_eq!(in_flight(&lanes), [10; 20]);
    }

    fn is_http2_only(ticket: &Ticket) -> bool {
        ticket.http2_only
    }

    /// What the connector layer does when a connection of the ticket's lane negotiated HTTP/2
    /// (tested over TLS in `http.rs`).
    fn negotiated_http2(ticket: &Ticket) {
        ticket.server.contact.connected(true);
    }

    #[tokio::test]
    async fn a_server_moves_to_http2_lanes_once_it_negotiated_http2_and_back_when_one_fails() {
        let clients = two_lane_clients();
        let openai = reqwest::Url::parse("https://api.example.com/v1/chat").unwrap();
        let models = reqwest::Url::parse("https://api.example.com/v1/models").unwrap();
        let local = reqwest::Url::parse("http://localhost:8000/v1/chat").unwrap();

        let first = clients.ticket(&openai, later()).await;
        assert!(!is_http2_only(&first));
        assert!(!is_http2_only(&clients.ticket(&local, later()).await));
        negotiated_http2(&first);
        let next = clients.ticket(&models, later()).await;
        assert!(is_http2_only(&next), "the same origin");
        assert!(!is_http2_only(&clients.ticket(&local, later()).await));

        next.connect_failed();
        assert!(!is_http2_only(&clients.ticket(&openai, later()).await));
    }

    #[tokio::test]
    async fn without_any_lane_calls_go_through_the_builder_client() {
        let built = std::sync::atomic::AtomicBool::new(false);
        // The first client (the builder) builds; every later one fails: reqwest refuses a
        // TLS setup of a type it does not know.
        let make: MakeClient = Box::new(move |_| {
            if built.swap(true, Ordering::SeqCst) {
                reqwest::Client::builder()
                    .tls_backend_preconfigured(())
                    .build()
            } else {
                Ok(reqwest::Client::new())
            }
        });
        let unbuildable: MakeClient = Box::new(|_| {
            reqwest::Client::builder()
                .tls_backend_preconfigured(())
                .build()
        });
        let clients = Clients::new(make, unbuildable, 2).unwrap();
        let url = reqwest::Url::parse("https://api.example.com/v1/chat").unwrap();
        let first = clients.ticket(&url, later()).await;
        assert!(first._place.is_none());
        negotiated_http2(&first);
        let next = clients.ticket(&url, later()).await;
        assert!(next._place.is_none() && !is_http2_only(&next));
    }

    #[tokio::test]
    async fn calls_wait_while_the_first_connection_to_a_server_is_made() {
        let (first, waiting) = first_and_second_call().await;
        assert!(!waiting.is_finished(), "waits for the first connection");

        negotiated_http2(&first);
        assert!(
            is_http2_only(&waiting.await.unwrap()),
            "then goes through an HTTP/2 lane, as the first connection negotiated"
        );
    }

    #[tokio::test]
    async fn a_first_call_that_ends_without_connecting_lets_the_next_make_the_connection() {
        let (first, waiting) = first_and_second_call().await;
        drop(first);
        let second = waiting.await.unwrap();
        assert!(second._probe.is_some(), "the waiting call makes it instead");
    }

    #[tokio::test]
    async fn a_call_waits_for_the_first_connection_no_longer_than_it_is_given() {
        // The first call holds its probe and never connects; the second goes ahead at its limit.
        let clients = two_lane_clients();
        let url = reqwest::Url::parse("https://api.example.com/v1/chat").unwrap();
        let _first = clients.ticket(&url, later()).await;
        let until = Instant::now() + Duration::from_millis(100);
        let second = tokio::time::timeout(Duration::from_secs(5), clients.ticket(&url, until))
            .await
            .unwrap();
        assert!(second._probe.is_none() && !is_http2_only(&second));
    }

    /// The first call to a server, and a second one sent 100 ms later (still waiting, unless
    /// it was let go).
    async fn first_and_second_call() -> (Ticket, tokio::task::JoinHandle<Ticket>) {
        let clients = Arc::new(two_lane_clients());
        let url = reqwest::Url::parse("https://api.example.com/v1/chat").unwrap();
        let first = clients.ticket(&url, later()).await;
        let second = tokio::spawn(async move { clients.ticket(&url, later()).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        (first, second)
    }

    fn two_lane_clients() -> Clients {
        let client = reqwest::Client::new();
        let same = client.clone();
        Clients::new(
            Box::new(move |_| Ok(same.clone())),
            Box::new(move |_| Ok(client.clone())),
            2,
        )
        .unwrap()
    }

    fn later() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }
}
