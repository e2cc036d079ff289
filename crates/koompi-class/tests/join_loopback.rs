//! The join handshake over real TCP on loopback (no root): the teacher's server and the
//! student's client, a fake teacher, a replaying, a silent and a garbage-sending client, and
//! the rate limit. Clients from other addresses (127.0.0.2, ...) bind before connecting.
//! Every wait has a deadline; the server stops when its handle drops, even on failure.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use koompi_class::code::JoinCode;
use koompi_class::join::net::{join, JoinEvent, JoinServer, ServerHandle, ServerOptions};
use koompi_class::join::{JoinError, JoinKey, Message, Nonce, Refusal, Student, Teacher};

const CLASS: &str = "grade5-science";
const TEACHER_DEV: &str = "P56IOI7-MZJNU2Y-IQGDREY-DM2MGTI-MGL3BXN-PQ6W5BM-TBBZ4TJ-XZWICQ2";
const STUDENT_DEV: &str = "MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD";
const WAIT: Duration = Duration::from_secs(20);
/// The tests' key derivation rounds: the protocol is the same with any count, and
/// [`koompi_class::join::KDF_ROUNDS`] takes seconds each in a debug build.
const ROUNDS: u32 = 1000;

type R = Result<(), Box<dyn std::error::Error>>;

fn code(words: &str) -> JoinCode {
    JoinCode::parse(words).unwrap_or_else(|e| panic!("{e}"))
}

fn right() -> JoinCode {
    code("bamboo lemon mango river owl")
}

fn wrong() -> JoinCode {
    code("bamboo lemon mango river onion")
}

fn teacher(code: &JoinCode) -> Teacher {
    Teacher {
        class_id: CLASS.into(),
        device_id: TEACHER_DEV.into(),
        key: JoinKey::derive_rounds(code, CLASS, ROUNDS),
        sync_port: Some(22000),
        names: Default::default(),
    }
}

fn student(code: &JoinCode, name: &str) -> Student {
    Student {
        class_id: CLASS.into(),
        teacher_device: TEACHER_DEV.into(),
        device_id: STUDENT_DEV.into(),
        name: name.into(),
        key: JoinKey::derive_rounds(code, CLASS, ROUNDS),
        sync_port: Some(22001),
    }
}

fn server(
    options: ServerOptions,
) -> Result<(ServerHandle, mpsc::Receiver<JoinEvent>), std::io::Error> {
    let (tx, rx) = mpsc::channel();
    let handle = JoinServer::bind("127.0.0.1:0", teacher(&right()), options)?.spawn(tx)?;
    Ok((handle, rx))
}

fn options() -> ServerOptions {
    ServerOptions {
        deadline: Duration::from_secs(2),
        max_failures: 3,
        lockout: Duration::from_secs(60),
        max_connections: 16,
    }
}

/// A raw connection from `from` (a loopback address) to the server.
fn connect_from(from: [u8; 4], to: SocketAddr) -> Result<TcpStream, std::io::Error> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((from, 0)).into())?;
    socket.connect_timeout(&to.into(), WAIT)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    Ok(stream)
}

fn send(stream: &mut TcpStream, msg: &Message) -> R {
    let mut line = serde_json::to_vec(msg)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    Ok(())
}

fn recv(reader: &mut BufReader<TcpStream>) -> Result<Message, Box<dyn std::error::Error>> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    Ok(serde_json::from_str(&line)?)
}

fn next_event(rx: &mpsc::Receiver<JoinEvent>) -> Result<JoinEvent, mpsc::RecvTimeoutError> {
    rx.recv_timeout(WAIT)
}

#[test]
fn the_right_code_joins_and_both_learn_the_device_ids() -> R {
    let (handle, events) = server(options())?;
    let teacher_dev = join(handle.local_addr(), &student(&right(), "Sokha"), WAIT)?;
    assert_eq!(teacher_dev.device_id, TEACHER_DEV);
    // Each side's Syncthing port reaches the other (where to dial it).
    assert_eq!(teacher_dev.sync_port, Some(22000));
    match next_event(&events)? {
        JoinEvent::Admitted { student, .. } => {
            assert_eq!(student.sync_port, Some(22001));
            assert_eq!(student.device_id, STUDENT_DEV);
            assert_eq!(student.name, "Sokha");
        }
        other => panic!("expected an admission, got {other}"),
    }
    assert!(handle.recent()[0].starts_with("joined: Sokha from 127.0.0.1"));
    Ok(())
}

#[test]
fn a_wrong_code_is_refused_and_logged() -> R {
    let (handle, events) = server(options())?;
    let err = join(handle.local_addr(), &student(&wrong(), "Dara"), WAIT).err();
    assert!(
        matches!(err, Some(JoinError::Refused(Refusal::WrongCode))),
        "{err:?}"
    );
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("the teacher refused: wrong code")
    );
    let event = next_event(&events)?;
    assert_eq!(
        event.to_string(),
        "refused: Dara from 127.0.0.1: wrong code"
    );
    assert_eq!(handle.recent(), vec![event.to_string()]);
    Ok(())
}

/// A fake teacher who announces the class's teacher device but does not know the code: the
/// student refuses it.
#[test]
fn a_teacher_without_the_code_is_refused_by_the_student() -> R {
    fake_teacher_is_refused(student(&right(), "Sokha"))
}

/// The same when the student typed the teacher's address (no announced device to pin).
#[test]
fn a_teacher_without_the_code_is_refused_with_a_typed_address() -> R {
    let mut s = student(&right(), "Sokha");
    s.teacher_device = String::new();
    fake_teacher_is_refused(s)
}

/// A typed teacher address: no device ID announced, the student learns it from the proven
/// challenge.
#[test]
fn a_typed_address_learns_the_teacher_device() -> R {
    let (handle, _events) = server(options())?;
    let mut s = student(&right(), "Sokha");
    s.teacher_device = String::new();
    assert_eq!(join(handle.local_addr(), &s, WAIT)?.device_id, TEACHER_DEV);
    Ok(())
}

fn fake_teacher_is_refused(student: Student) -> R {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let fake = std::thread::spawn(move || -> Result<(), String> {
        let (stream, _) = listener.accept().map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(WAIT))
            .map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut out = stream;
        let t = teacher(&wrong());
        let hello = recv(&mut reader).map_err(|e| e.to_string())?;
        let nonce = Nonce::generate().map_err(|e| e.to_string())?;
        let (_, challenge) = t.on_hello(hello, nonce).map_err(|e| e.to_string())?;
        send(&mut out, &challenge).map_err(|e| e.to_string())?;
        let _proof = recv(&mut reader).map_err(|e| e.to_string())?;
        // What a guesser can send: a proof made with another code.
        send(
            &mut out,
            &Message::Welcome {
                mac: "ab".repeat(32),
            },
        )
        .map_err(|e| e.to_string())?;
        Ok(())
    });
    let err = join(addr, &student, WAIT).err();
    assert!(
        matches!(err, Some(JoinError::TeacherProofInvalid)),
        "{err:?}"
    );
    fake.join().map_err(|_| "the fake teacher panicked")??;
    Ok(())
}

#[test]
fn a_replayed_student_message_is_refused() -> R {
    let (handle, events) = server(options())?;
    let s = student(&right(), "Sokha");
    // A real join, recorded.
    let mut stream = connect_from([127, 0, 0, 2], handle.local_addr())?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let (state, hello) = s.hello(Nonce::generate()?);
    send(&mut stream, &hello)?;
    let (state, proof) = s.on_challenge(state, recv(&mut reader)?)?;
    send(&mut stream, &proof)?;
    assert_eq!(
        s.on_welcome(state, recv(&mut reader)?)?.device_id,
        TEACHER_DEV
    );
    assert!(matches!(next_event(&events)?, JoinEvent::Admitted { .. }));
    // The recording played again from another address: the teacher's new nonce voids it.
    let mut stream = connect_from([127, 0, 0, 3], handle.local_addr())?;
    let mut reader = BufReader::new(stream.try_clone()?);
    send(&mut stream, &hello)?;
    assert!(matches!(recv(&mut reader)?, Message::Challenge { .. }));
    send(&mut stream, &proof)?;
    assert_eq!(
        recv(&mut reader)?,
        Message::Refused {
            refusal: Refusal::WrongCode
        }
    );
    assert_eq!(
        next_event(&events)?.to_string(),
        "refused: Sokha from 127.0.0.3: wrong code"
    );
    Ok(())
}

#[test]
fn a_silent_or_garbage_client_does_not_block_the_next() -> R {
    let (handle, events) = server(options())?;
    let addr = handle.local_addr();
    let started = Instant::now();
    // Silent: connects and says nothing.
    let mut silent = connect_from([127, 0, 0, 4], addr)?;
    // Slow: a byte at a time, never a newline (its writes go on past the deadline).
    let mut slow = connect_from([127, 0, 0, 5], addr)?;
    slow.write_all(b"{")?;
    // Garbage: a line too long, then a line that is not JSON.
    let mut huge = connect_from([127, 0, 0, 6], addr)?;
    huge.write_all(&vec![b'x'; 10_000])?;
    let mut junk = connect_from([127, 0, 0, 7], addr)?;
    junk.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    // Meanwhile a real student joins at once.
    assert_eq!(
        join(addr, &student(&right(), "Sokha"), WAIT)?.device_id,
        TEACHER_DEV
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the join waited for the others: {:?}",
        started.elapsed()
    );
    // The garbage is refused with a reason; the silent ones are cut off at the deadline.
    for _ in 0..3 {
        slow.write_all(b" ").ok();
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut lines = Vec::new();
    for _ in 0..5 {
        lines.push(next_event(&events)?.to_string());
    }
    lines.sort();
    let expect = [
        "failed: 127.0.0.4: timed out waiting for the peer",
        "failed: 127.0.0.5: timed out waiting for the peer",
        "joined: Sokha from 127.0.0.1",
        "refused: 127.0.0.6: bad request: a line longer than 4096 bytes",
        "refused: 127.0.0.7: bad request: not a join message",
    ];
    for (line, want) in lines.iter().zip(expect) {
        assert!(line.starts_with(want), "{line:?} is not {want:?}...");
    }
    // The silent client's connection is closed by the teacher: it reads the end.
    let mut rest = Vec::new();
    silent.read_to_end(&mut rest)?;
    assert!(started.elapsed() < Duration::from_secs(6));
    Ok(())
}

#[test]
fn after_n_wrong_codes_the_address_waits() -> R {
    let (handle, events) = server(options())?;
    let addr = handle.local_addr();
    for _ in 0..3 {
        let err = join(addr, &student(&wrong(), "Guess"), WAIT).err();
        assert!(
            matches!(err, Some(JoinError::Refused(Refusal::WrongCode))),
            "{err:?}"
        );
        next_event(&events)?;
    }
    // Locked out: even the right code waits, and says how long.
    let err = join(addr, &student(&right(), "Guess"), WAIT).err();
    match err {
        Some(JoinError::Refused(Refusal::RateLimited { retry_after_secs })) => {
            assert!((55..=60).contains(&retry_after_secs), "{retry_after_secs}")
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    assert_eq!(
        next_event(&events)?.to_string(),
        "refused: 127.0.0.1: too many wrong codes: wait 60 s"
    );
    // Another address is not held up by this one.
    let s = student(&right(), "Sokha");
    let mut stream = connect_from([127, 0, 0, 8], addr)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let (state, hello) = s.hello(Nonce::generate()?);
    send(&mut stream, &hello)?;
    let (state, proof) = s.on_challenge(state, recv(&mut reader)?)?;
    send(&mut stream, &proof)?;
    assert_eq!(
        s.on_welcome(state, recv(&mut reader)?)?.device_id,
        TEACHER_DEV
    );
    Ok(())
}

/// A student who types the code before the teacher started `serve` is not turned away:
/// the connection is tried again until the join's deadline; with nobody ever listening,
/// the join fails within it.
#[test]
fn a_join_waits_for_a_teacher_who_is_not_serving_yet() -> R {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let later = std::thread::spawn(
        move || -> Result<(ServerHandle, mpsc::Receiver<JoinEvent>), std::io::Error> {
            std::thread::sleep(Duration::from_millis(1500));
            let (tx, rx) = mpsc::channel();
            let handle = JoinServer::bind(addr, teacher(&right()), options())?.spawn(tx)?;
            Ok((handle, rx))
        },
    );
    let start = Instant::now();
    let welcomed = join(addr, &student(&right(), "Sokha"), WAIT)?;
    assert_eq!(welcomed.device_id, TEACHER_DEV);
    assert!(start.elapsed() >= Duration::from_millis(1500));
    let (_handle, _events) = later.join().map_err(|_| "server thread")??;

    let nobody = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let start = Instant::now();
    let Err(err) = join(nobody, &student(&right(), "Sokha"), Duration::from_secs(3)) else {
        return Err("joined with nobody listening".into());
    };
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    assert!(err.to_string().contains("refused"), "{err}");
    Ok(())
}
