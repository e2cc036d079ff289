//! The join handshake over TCP: the teacher's server on the join port and the student's
//! client. One JSON object per line, lines of at most [`MAX_LINE`] bytes, one handshake per
//! connection, and a deadline on the whole connection on both sides (a slow or silent peer
//! is cut off; it never holds up anyone else: every connection has its own thread, and one
//! address has at most one join under way). All decisions are [`super`]'s.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{
    Admitted, JoinError, Message, Nonce, RateLimiter, Refusal, Student, Teacher, Welcomed,
};

/// The longest line either side reads (bytes, without the newline).
pub const MAX_LINE: usize = 4096;
/// How many of the latest events [`ServerHandle::recent`] keeps for the teacher's status.
pub const RECENT_EVENTS: usize = 50;

/// The server's limits.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The whole handshake must be done within this, from the accept.
    pub deadline: Duration,
    /// Wrong codes from one address before it waits.
    pub max_failures: u32,
    /// The first wait; each further lockout doubles it.
    pub lockout: Duration,
    /// Handshakes under way at once.
    pub max_connections: usize,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(10),
            max_failures: 5,
            lockout: Duration::from_secs(60),
            max_connections: 64,
        }
    }
}

/// What happened on the join port: one line each for the teacher's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinEvent {
    /// A student proved the code and is admitted.
    Admitted { addr: SocketAddr, student: Admitted },
    /// The teacher refused a join (wrong code, rate limit, another class...).
    Refused {
        addr: SocketAddr,
        name: Option<String>,
        refusal: Refusal,
    },
    /// The connection failed before a decision (timeout, garbage, hang-up).
    Failed { addr: SocketAddr, error: String },
}

impl fmt::Display for JoinEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinEvent::Admitted { addr, student } => write!(
                f,
                "joined: {} from {} (device {})",
                student.name,
                addr.ip(),
                // Syncthing's short form (its logs and GUI): the line fits 80 columns.
                student.device_id.get(..7).unwrap_or(&student.device_id)
            ),
            JoinEvent::Refused {
                addr,
                name: Some(name),
                refusal,
            } => write!(f, "refused: {name} from {}: {refusal}", addr.ip()),
            JoinEvent::Refused {
                addr,
                name: None,
                refusal,
            } => write!(f, "refused: {}: {refusal}", addr.ip()),
            JoinEvent::Failed { addr, error } => write!(f, "failed: {}: {error}", addr.ip()),
        }
    }
}

#[derive(Debug)]
struct Shared {
    limiter: RateLimiter,
    in_flight: HashSet<IpAddr>,
    recent: VecDeque<String>,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // A thread that panicked while holding the lock left consistent data (plain inserts).
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// The teacher's join server, bound but not yet serving.
#[derive(Debug)]
pub struct JoinServer {
    listener: TcpListener,
    teacher: Arc<Teacher>,
    options: ServerOptions,
}

/// A running join server; stops (and waits for its accept loop) on [`stop`](Self::stop) or
/// drop. Handshakes under way end by their own deadline.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    shared: Arc<Mutex<Shared>>,
    thread: Option<JoinHandle<()>>,
}

impl JoinServer {
    pub fn bind(
        addr: impl ToSocketAddrs,
        teacher: Teacher,
        options: ServerOptions,
    ) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        Ok(Self {
            listener,
            teacher: Arc::new(teacher),
            options,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves on a thread of its own; every event also goes to `events` (a closed receiver
    /// is fine).
    pub fn spawn(self, events: mpsc::Sender<JoinEvent>) -> io::Result<ServerHandle> {
        let addr = self.listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Mutex::new(Shared {
            limiter: RateLimiter::new(self.options.max_failures, self.options.lockout),
            in_flight: HashSet::new(),
            recent: VecDeque::new(),
        }));
        let thread = {
            let stop = Arc::clone(&stop);
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("class-join".into())
                .spawn(move || self.accept_loop(&stop, &shared, &events))?
        };
        Ok(ServerHandle {
            addr,
            stop,
            shared,
            thread: Some(thread),
        })
    }

    fn accept_loop(
        self,
        stop: &AtomicBool,
        shared: &Arc<Mutex<Shared>>,
        events: &mpsc::Sender<JoinEvent>,
    ) {
        while !stop.load(Ordering::Relaxed) {
            match self.listener.accept() {
                Ok((stream, addr)) => self.admit(stream, addr, shared, events),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    tracing::warn!("join port: accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// Decides whether a connection may start a handshake, and starts it on its own thread.
    fn admit(
        &self,
        stream: TcpStream,
        addr: SocketAddr,
        shared: &Arc<Mutex<Shared>>,
        events: &mpsc::Sender<JoinEvent>,
    ) {
        let deadline = Instant::now() + self.options.deadline;
        let ip = addr.ip();
        let refusal = {
            let mut s = lock(shared);
            if let Err(wait) = s.limiter.check(ip, Instant::now()) {
                Some(Refusal::RateLimited {
                    // Rounded up: "wait 0 s" would invite an immediate retry.
                    retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                })
            } else if s.in_flight.contains(&ip) || s.in_flight.len() >= self.options.max_connections
            {
                Some(Refusal::Busy)
            } else {
                s.in_flight.insert(ip);
                None
            }
        };
        if let Some(refusal) = refusal {
            let mut stream = stream;
            // Best effort: the refusal is for the student's screen; the event is the record.
            if stream.set_nonblocking(false).is_ok() {
                let msg = Message::Refused {
                    refusal: refusal.clone(),
                };
                let _ = write_message(&mut stream, &msg, deadline);
            }
            report(
                shared,
                events,
                JoinEvent::Refused {
                    addr,
                    name: None,
                    refusal,
                },
            );
            return;
        }
        let teacher = Arc::clone(&self.teacher);
        let shared2 = Arc::clone(shared);
        let events2 = events.clone();
        let spawned = std::thread::Builder::new()
            .name("class-join-conn".into())
            .spawn(move || {
                let event = handshake(&teacher, stream, addr, deadline, &shared2);
                lock(&shared2).in_flight.remove(&ip);
                report(&shared2, &events2, event);
            });
        if let Err(e) = spawned {
            lock(shared).in_flight.remove(&ip);
            report(
                shared,
                events,
                JoinEvent::Failed {
                    addr,
                    error: format!("no thread for the connection: {e}"),
                },
            );
        }
    }
}

fn report(shared: &Mutex<Shared>, events: &mpsc::Sender<JoinEvent>, event: JoinEvent) {
    // `serve` prints every event; a warning on top would say each one twice.
    tracing::info!("class join: {event}");
    {
        let mut s = lock(shared);
        if s.recent.len() == RECENT_EVENTS {
            s.recent.pop_front();
        }
        s.recent.push_back(event.to_string());
    }
    let _ = events.send(event);
}

/// The teacher's half of one handshake on `stream`.
fn handshake(
    teacher: &Teacher,
    stream: TcpStream,
    addr: SocketAddr,
    deadline: Instant,
    shared: &Mutex<Shared>,
) -> JoinEvent {
    let failed = |e: JoinError| JoinEvent::Failed {
        addr,
        error: e.to_string(),
    };
    let mut conn = match Conn::new(stream) {
        Ok(c) => c,
        Err(e) => return failed(e),
    };
    let refuse = |conn: &mut Conn, name: Option<String>, refusal: Refusal| {
        let _ = conn.send(
            &Message::Refused {
                refusal: refusal.clone(),
            },
            deadline,
        );
        JoinEvent::Refused {
            addr,
            name,
            refusal,
        }
    };
    let hello = match conn.recv(deadline) {
        Ok(m) => m,
        Err(JoinError::Protocol(detail)) => {
            return refuse(&mut conn, None, Refusal::BadRequest { detail })
        }
        Err(e) => return failed(e),
    };
    let nonce = match Nonce::generate() {
        Ok(n) => n,
        Err(e) => return failed(e),
    };
    // The name the hello gave, for the event line when it is refused (a taken name).
    let said = match &hello {
        Message::Hello { name, .. } => super::check_name(name).ok(),
        _ => None,
    };
    let (pending, challenge) = match teacher.on_hello(hello, nonce) {
        Ok(x) => x,
        Err(refusal) => return refuse(&mut conn, said, refusal),
    };
    let name = Some(pending.student_name().to_string());
    if let Err(e) = conn.send(&challenge, deadline) {
        return failed(e);
    }
    let proof = match conn.recv(deadline) {
        Ok(m) => m,
        Err(JoinError::Protocol(detail)) => {
            return refuse(&mut conn, name, Refusal::BadRequest { detail })
        }
        Err(e) => return failed(e),
    };
    match teacher.on_proof(pending, proof) {
        Ok((student, welcome)) => {
            lock(shared).limiter.success(addr.ip());
            if let Err(e) = conn.send(&welcome, deadline) {
                // The student may not know it joined; it will try again and be admitted again.
                return failed(e);
            }
            JoinEvent::Admitted { addr, student }
        }
        Err(refusal) => {
            if refusal == Refusal::WrongCode {
                if let Some(wait) = lock(shared).limiter.failure(addr.ip(), Instant::now()) {
                    tracing::info!(
                        "class join: {} locked out for {} s after wrong codes",
                        addr.ip(),
                        wait.as_secs()
                    );
                }
            }
            refuse(&mut conn, name, refusal)
        }
    }
}

/// A line-framed connection with deadlines.
struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    fn new(stream: TcpStream) -> Result<Self, JoinError> {
        stream.set_nonblocking(false)?;
        stream.set_nodelay(true)?;
        let writer = stream.try_clone()?;
        Ok(Self {
            reader: BufReader::with_capacity(MAX_LINE + 1, stream),
            writer,
        })
    }

    fn send(&mut self, msg: &Message, deadline: Instant) -> Result<(), JoinError> {
        write_message(&mut self.writer, msg, deadline)
    }

    fn recv(&mut self, deadline: Instant) -> Result<Message, JoinError> {
        let line = read_line(&mut self.reader, deadline)?;
        serde_json::from_slice(&line)
            .map_err(|e| JoinError::Protocol(format!("not a join message: {e}")))
    }
}

fn remaining(deadline: Instant, what: &'static str) -> Result<Duration, JoinError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(JoinError::Timeout(what))
    } else {
        Ok(left)
    }
}

fn write_message(
    stream: &mut TcpStream,
    msg: &Message,
    deadline: Instant,
) -> Result<(), JoinError> {
    let mut line = serde_json::to_vec(msg).map_err(|e| JoinError::Protocol(e.to_string()))?;
    line.push(b'\n');
    stream.set_write_timeout(Some(remaining(deadline, "sending")?))?;
    stream
        .write_all(&line)
        .map_err(|e| timeout_or(e, "sending"))?;
    stream.flush().map_err(|e| timeout_or(e, "sending"))?;
    Ok(())
}

fn timeout_or(e: io::Error, what: &'static str) -> JoinError {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => JoinError::Timeout(what),
        _ => JoinError::Io(e),
    }
}

/// One line (without its newline) of at most [`MAX_LINE`] bytes, read before `deadline`
/// however slowly the peer sends it.
fn read_line(reader: &mut BufReader<TcpStream>, deadline: Instant) -> Result<Vec<u8>, JoinError> {
    let mut line = Vec::new();
    loop {
        reader
            .get_ref()
            .set_read_timeout(Some(remaining(deadline, "waiting for the peer")?))?;
        let available = match reader.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(timeout_or(e, "waiting for the peer")),
        };
        if available.is_empty() {
            return Err(JoinError::Protocol("the peer hung up".into()));
        }
        if let Some(i) = available.iter().position(|b| *b == b'\n') {
            line.extend_from_slice(&available[..i]);
            reader.consume(i + 1);
            if line.len() > MAX_LINE {
                return Err(JoinError::Protocol(format!(
                    "a line longer than {MAX_LINE} bytes"
                )));
            }
            return Ok(line);
        }
        let n = available.len();
        line.extend_from_slice(available);
        reader.consume(n);
        if line.len() > MAX_LINE {
            return Err(JoinError::Protocol(format!(
                "a line longer than {MAX_LINE} bytes"
            )));
        }
    }
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The latest events as status lines, oldest first.
    pub fn recent(&self) -> Vec<String> {
        lock(&self.shared).recent.iter().cloned().collect()
    }

    /// Stops accepting and waits for the accept loop.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Connects to the teacher's join server before `deadline`, trying again every second
/// while the laptop cannot be reached yet (`serve` not started, the Wi-Fi still
/// associating, an ARP reply lost on a busy network); the last error when time is up.
fn connect(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, JoinError> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(JoinError::Timeout("connecting"));
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::HostUnreachable
                        | io::ErrorKind::NetworkUnreachable
                ) && left > Duration::from_secs(1) =>
            {
                tracing::debug!("class join: {addr}: {e}; trying again");
                std::thread::sleep(Duration::from_secs(1));
                if Instant::now() + Duration::from_secs(1) >= deadline {
                    return Err(JoinError::Io(e));
                }
            }
            Err(e) => return Err(timeout_or(e, "connecting")),
        }
    }
}

/// The student's side: joins the class at `addr` (the teacher's join port) within
/// `timeout`, and returns the teacher's device ID once the teacher proved the code.
pub fn join(addr: SocketAddr, student: &Student, timeout: Duration) -> Result<Welcomed, JoinError> {
    let deadline = Instant::now() + timeout;
    let stream = connect(addr, deadline)?;
    let mut conn = Conn::new(stream)?;
    let (state, hello) = student.hello(Nonce::generate()?);
    conn.send(&hello, deadline)?;
    let (state, proof) = student.on_challenge(state, conn.recv(deadline)?)?;
    conn.send(&proof, deadline)?;
    student.on_welcome(state, conn.recv(deadline)?)
}
