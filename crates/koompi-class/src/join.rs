//! The join handshake, pure: the messages, the proofs, both sides' checks and the teacher's
//! rate limit, with no sockets (those are in [`net`]).
//!
//! A student proves to the teacher, and the teacher to the student, that each knows the
//! class's join code, without sending it:
//!
//! ```text
//! student -> teacher  hello     {protocol, class_id, device_id, name, nonce_s}
//! teacher -> student  challenge {class_id, device_id, nonce_t}        (or refused)
//! student -> teacher  proof     {mac = HMAC(K, transcript("student"))}
//! teacher -> student  welcome   {mac = HMAC(K, transcript("teacher"))} (or refused)
//! ```
//!
//! `K` = PBKDF2-HMAC-SHA256(the code's twelve digits, salt = protocol + class ID,
//! [`KDF_ROUNDS`]); the transcript is the prover's role, the protocol, the class ID, both
//! Syncthing device IDs, the student's name and both nonces, each length-prefixed. The
//! teacher's fresh nonce makes an old student proof worthless (replay); the role makes a
//! proof of one side useless as the other's (reflection); the teacher answers a proof only
//! after it verified the student's, so a guesser learns nothing to search offline, and the
//! student accepts only the teacher device ID the class announced. The teacher counts wrong
//! proofs per address ([`RateLimiter`]).

pub mod net;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::code::JoinCode;

/// The protocol's name and version, in every hello and in every transcript.
pub const PROTOCOL: &str = "koompi-class-join/1";
/// PBKDF2 rounds for the join key (OWASP's 2023 figure for PBKDF2-HMAC-SHA256): 75 ms in a
/// release build on these 2-core machines (2 s in a debug build), paid once per class by the teacher and once
/// per join by a student; it multiplies the cost of searching the 10^12 codes against a
/// recorded handshake by 600,000 (docs/decisions.md, 71).
pub const KDF_ROUNDS: u32 = 600_000;
/// The longest student name the teacher accepts (characters).
pub const MAX_NAME_CHARS: usize = 40;

type HmacSha256 = Hmac<Sha256>;

/// A side of the handshake: who proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Teacher,
    Student,
}

impl Role {
    fn as_str(self) -> &'static str {
        match self {
            Role::Teacher => "teacher",
            Role::Student => "student",
        }
    }
}

/// A 32-byte nonce, fresh from the OS's CSPRNG for every handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Nonce(pub [u8; 32]);

impl Nonce {
    pub fn generate() -> Result<Self, JoinError> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| JoinError::Random(e.to_string()))?;
        Ok(Self(bytes))
    }
}

/// The key both sides derive from the code and the class ID. `Debug` hides it.
#[derive(Clone)]
pub struct JoinKey([u8; 32]);

impl fmt::Debug for JoinKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("JoinKey(<secret>)")
    }
}

impl JoinKey {
    /// The class's key: PBKDF2-HMAC-SHA256 with [`KDF_ROUNDS`].
    pub fn derive(code: &JoinCode, class_id: &str) -> Self {
        Self::derive_rounds(code, class_id, KDF_ROUNDS)
    }

    /// The key with another round count (the property tests use few, to run thousands).
    pub fn derive_rounds(code: &JoinCode, class_id: &str, rounds: u32) -> Self {
        let mut salt = Vec::with_capacity(PROTOCOL.len() + class_id.len() + 1);
        salt.extend_from_slice(PROTOCOL.as_bytes());
        salt.push(0);
        salt.extend_from_slice(class_id.as_bytes());
        let mut key = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<Sha256>(code.secret().as_bytes(), &salt, rounds, &mut key);
        Self(key)
    }
}

/// Everything one handshake is about: what each proof covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub class_id: String,
    pub teacher_device: String,
    pub student_device: String,
    pub student_name: String,
    pub teacher_nonce: Nonce,
    pub student_nonce: Nonce,
}

/// The bytes `role` proves: role, protocol, class, devices, name, nonces, each preceded by
/// its length (u32, big-endian), so no two different sessions give the same bytes.
pub fn transcript(role: Role, s: &Session) -> Vec<u8> {
    let fields: [&[u8]; 8] = [
        role.as_str().as_bytes(),
        PROTOCOL.as_bytes(),
        s.class_id.as_bytes(),
        s.teacher_device.as_bytes(),
        s.student_device.as_bytes(),
        s.student_name.as_bytes(),
        &s.teacher_nonce.0,
        &s.student_nonce.0,
    ];
    let mut out = Vec::new();
    for field in fields {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// `role`'s proof of the code for this session: HMAC-SHA256(key, transcript).
pub fn prove(key: &JoinKey, role: Role, session: &Session) -> [u8; 32] {
    prove_bytes(key, &transcript(role, session))
}

/// The HMAC of raw transcript bytes (for [`prove`] and the tests).
pub fn prove_bytes(key: &JoinKey, transcript: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length: new_from_slice cannot fail here.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(&key.0).unwrap_or_else(|_| unreachable!());
    mac.update(transcript);
    mac.finalize().into_bytes().into()
}

/// Whether `tag` is `role`'s proof for this session (constant-time comparison).
pub fn verify(key: &JoinKey, role: Role, session: &Session, tag: &[u8]) -> bool {
    verify_bytes(key, &transcript(role, session), tag)
}

/// Whether `tag` is the HMAC of these transcript bytes (constant time).
pub fn verify_bytes(key: &JoinKey, transcript: &[u8], tag: &[u8]) -> bool {
    let Ok(mut mac) = <HmacSha256 as Mac>::new_from_slice(&key.0) else {
        return false;
    };
    mac.update(transcript);
    mac.verify_slice(tag).is_ok()
}

/// Why the teacher refused, as sent to the student.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// The proof did not verify: the student typed another code.
    WrongCode,
    /// The hello names another class (or another protocol version).
    WrongClass,
    /// Too many wrong codes from this address: try again after this many seconds.
    RateLimited { retry_after_secs: u64 },
    /// Another join from this address is under way, or the teacher is at capacity.
    Busy,
    /// Another laptop joined under this name.
    NameTaken { name: String },
    /// The message was not what the protocol expects here.
    BadRequest { detail: String },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::WrongCode => f.write_str("wrong code"),
            Refusal::WrongClass => f.write_str("not this class"),
            Refusal::RateLimited { retry_after_secs } => {
                write!(f, "too many wrong codes: wait {retry_after_secs} s")
            }
            Refusal::Busy => f.write_str("busy: another join from this address is under way"),
            Refusal::NameTaken { name } => write!(
                f,
                "another laptop joined as {name:?}: join under another name (--as NAME)"
            ),
            Refusal::BadRequest { detail } => write!(f, "bad request: {detail}"),
        }
    }
}

/// A message of the join protocol: one JSON object per line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    Hello {
        protocol: String,
        class_id: String,
        device_id: String,
        name: String,
        nonce: String,
        /// The student's Syncthing port (a hint: Syncthing's TLS authenticates the device).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sync_port: Option<u16>,
    },
    Challenge {
        class_id: String,
        device_id: String,
        nonce: String,
        /// The teacher's Syncthing port (a hint, like the student's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sync_port: Option<u16>,
    },
    Proof {
        mac: String,
    },
    Welcome {
        mac: String,
    },
    Refused {
        #[serde(flatten)]
        refusal: Refusal,
    },
}

/// What goes wrong on the student's side (and the teacher's, for the socket layer).
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the teacher refused: {0}")]
    Refused(Refusal),
    #[error("the teacher could not prove the code: this is not the class's teacher, or the code is wrong")]
    TeacherProofInvalid,
    #[error("the teacher's device {got} is not the one the class announced ({expected})")]
    WrongTeacherDevice { expected: String, got: String },
    #[error("the teacher answered for class {got}, not {expected}")]
    WrongClass { expected: String, got: String },
    #[error("protocol error: {0}")]
    Protocol(String),
    #[error("no random numbers from the system: {0}")]
    Random(String),
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error("timed out {0}")]
    Timeout(&'static str),
}

/// Hex, lowercase.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Exactly `N` bytes from hex, or `None`.
pub fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A Syncthing device ID in its canonical form (eight groups of seven base32 characters,
/// uppercase, dashes), or `None` when `s` does not have that shape. The Luhn check
/// characters are Syncthing's business; the handshake binds whatever ID is given.
pub fn canonical_device_id(s: &str) -> Option<String> {
    let chars: String = s
        .chars()
        .filter(|c| *c != '-' && *c != ' ')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if chars.len() != 56 || !chars.chars().all(|c| matches!(c, 'A'..='Z' | '2'..='7')) {
        return None;
    }
    let groups: Vec<&str> = (0..8).map(|i| &chars[i * 7..i * 7 + 7]).collect();
    Some(groups.join("-"))
}

/// The canonical form of a device ID, or the text unchanged when it is not one (the other
/// side refuses it then).
fn canon(device_id: &str) -> String {
    canonical_device_id(device_id).unwrap_or_else(|| device_id.to_string())
}

/// A student's name as the teacher will use it (a `Submissions/<name>/` folder): trimmed,
/// 1 to [`MAX_NAME_CHARS`] characters, no control characters, no `/` or `\`, not starting
/// with a dot. Khmer letters are welcome.
pub fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "the name is longer than {MAX_NAME_CHARS} characters"
        ));
    }
    if name.starts_with('.') {
        return Err("the name starts with a dot".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || *c == '/' || *c == '\\')
    {
        return Err(format!("the name holds {c:?}"));
    }
    Ok(name.to_string())
}

fn lock_names(
    names: &Mutex<BTreeMap<String, String>>,
) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
    // Plain inserts: a panicking holder left consistent data.
    names.lock().unwrap_or_else(|e| e.into_inner())
}

/// The teacher's side: the class, the teacher's device and the key.
#[derive(Debug, Clone)]
pub struct Teacher {
    pub class_id: String,
    pub device_id: String,
    pub key: JoinKey,
    /// The teacher's Syncthing port, told to students in the challenge.
    pub sync_port: Option<u16>,
    /// The names taken in the class, with the device each belongs to: a hello under a name
    /// another device holds is refused before any proof, so a student is never welcomed
    /// under a name the teacher will not admit. Shared by every connection; a proved join
    /// takes its name at once.
    pub names: Arc<Mutex<BTreeMap<String, String>>>,
}

/// A hello the teacher answered with a challenge, waiting for the proof.
#[derive(Debug, Clone)]
pub struct TeacherPending {
    session: Session,
    sync_port: Option<u16>,
}

impl TeacherPending {
    /// The student's name as the hello gave it.
    pub fn student_name(&self) -> &str {
        &self.session.student_name
    }
}

/// A student the teacher admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub name: String,
    pub device_id: String,
    /// The student's Syncthing port as the hello told it.
    pub sync_port: Option<u16>,
}

fn bad(detail: impl Into<String>) -> Refusal {
    Refusal::BadRequest {
        detail: detail.into(),
    }
}

impl Teacher {
    /// Checks a hello and answers with a challenge carrying `nonce` (fresh for this
    /// connection).
    pub fn on_hello(
        &self,
        msg: Message,
        nonce: Nonce,
    ) -> Result<(TeacherPending, Message), Refusal> {
        let Message::Hello {
            protocol,
            class_id,
            device_id,
            name,
            nonce: student_nonce,
            sync_port,
        } = msg
        else {
            return Err(bad("expected hello"));
        };
        if protocol != PROTOCOL || class_id != self.class_id {
            return Err(Refusal::WrongClass);
        }
        let student_device =
            canonical_device_id(&device_id).ok_or_else(|| bad("not a Syncthing device ID"))?;
        if student_device == canon(&self.device_id) {
            return Err(bad("that is the teacher's own device ID"));
        }
        let student_name = check_name(&name).map_err(bad)?;
        if let Some(holder) = lock_names(&self.names).get(&student_name) {
            if *holder != student_device {
                return Err(Refusal::NameTaken { name: student_name });
            }
        }
        let student_nonce = from_hex::<32>(&student_nonce).ok_or_else(|| bad("bad nonce"))?;
        let session = Session {
            class_id: self.class_id.clone(),
            teacher_device: canon(&self.device_id),
            student_device,
            student_name,
            teacher_nonce: nonce,
            student_nonce: Nonce(student_nonce),
        };
        let challenge = Message::Challenge {
            class_id: self.class_id.clone(),
            device_id: canon(&self.device_id),
            nonce: to_hex(&nonce.0),
            sync_port: self.sync_port,
        };
        Ok((TeacherPending { session, sync_port }, challenge))
    }

    /// Checks the student's proof; on success admits the student and answers with the
    /// teacher's own proof.
    pub fn on_proof(
        &self,
        pending: TeacherPending,
        msg: Message,
    ) -> Result<(Admitted, Message), Refusal> {
        let Message::Proof { mac } = msg else {
            return Err(bad("expected proof"));
        };
        let tag = from_hex::<32>(&mac).ok_or(Refusal::WrongCode)?;
        if !verify(&self.key, Role::Student, &pending.session, &tag) {
            return Err(Refusal::WrongCode);
        }
        let welcome = Message::Welcome {
            mac: to_hex(&prove(&self.key, Role::Teacher, &pending.session)),
        };
        let s = pending.session;
        let mut names = lock_names(&self.names);
        match names.get(&s.student_name) {
            Some(holder) if *holder != s.student_device => {
                // Taken by a join that finished between this one's hello and proof.
                return Err(Refusal::NameTaken {
                    name: s.student_name,
                });
            }
            _ => {
                names.insert(s.student_name.clone(), s.student_device.clone());
            }
        }
        drop(names);
        Ok((
            Admitted {
                name: s.student_name,
                device_id: s.student_device,
                sync_port: pending.sync_port,
            },
            welcome,
        ))
    }
}

/// The student's side: the class as announced (its ID and the teacher's device ID), the
/// student's own device and name, and the key from the typed code.
#[derive(Debug, Clone)]
pub struct Student {
    pub class_id: String,
    pub teacher_device: String,
    pub device_id: String,
    pub name: String,
    pub key: JoinKey,
    /// The student's Syncthing port, told to the teacher in the hello.
    pub sync_port: Option<u16>,
}

/// What the student learnt once the teacher proved the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcomed {
    /// The teacher's Syncthing device ID.
    pub device_id: String,
    /// The teacher's Syncthing port, when the challenge said it.
    pub sync_port: Option<u16>,
}

/// The student's state after the hello.
#[derive(Debug, Clone)]
pub struct StudentHello {
    nonce: Nonce,
}

/// The student's state after the proof.
#[derive(Debug, Clone)]
pub struct StudentProved {
    session: Session,
    sync_port: Option<u16>,
}

impl Student {
    /// The hello, with `nonce` fresh for this join.
    pub fn hello(&self, nonce: Nonce) -> (StudentHello, Message) {
        let msg = Message::Hello {
            protocol: PROTOCOL.to_string(),
            class_id: self.class_id.clone(),
            device_id: canon(&self.device_id),
            name: self.name.clone(),
            nonce: to_hex(&nonce.0),
            sync_port: self.sync_port,
        };
        (StudentHello { nonce }, msg)
    }

    /// Checks the challenge (the class and the announced teacher device) and answers with
    /// the student's proof.
    pub fn on_challenge(
        &self,
        state: StudentHello,
        msg: Message,
    ) -> Result<(StudentProved, Message), JoinError> {
        let (class_id, device_id, nonce, sync_port) = match msg {
            Message::Challenge {
                class_id,
                device_id,
                nonce,
                sync_port,
            } => (class_id, device_id, nonce, sync_port),
            Message::Refused { refusal } => return Err(JoinError::Refused(refusal)),
            other => {
                return Err(JoinError::Protocol(format!(
                    "expected challenge, got {other:?}"
                )))
            }
        };
        if class_id != self.class_id {
            return Err(JoinError::WrongClass {
                expected: self.class_id.clone(),
                got: class_id,
            });
        }
        // An empty teacher device: the class was not announced (the teacher's address was
        // typed), so the device ID is learnt from the challenge; it is bound in both proofs,
        // and the teacher's proof, which needs the code, is checked before it is used.
        let expected = if self.teacher_device.is_empty() {
            canonical_device_id(&device_id).ok_or_else(|| {
                JoinError::Protocol(format!("bad teacher device ID {device_id:?}"))
            })?
        } else {
            canon(&self.teacher_device)
        };
        if canonical_device_id(&device_id).as_deref() != Some(expected.as_str()) {
            return Err(JoinError::WrongTeacherDevice {
                expected,
                got: device_id,
            });
        }
        let teacher_nonce = from_hex::<32>(&nonce)
            .ok_or_else(|| JoinError::Protocol("bad nonce in the challenge".into()))?;
        let session = Session {
            class_id: self.class_id.clone(),
            teacher_device: expected,
            student_device: canon(&self.device_id),
            // As the teacher reads it (trimmed); a bad name was refused at the hello.
            student_name: check_name(&self.name).unwrap_or_else(|_| self.name.clone()),
            teacher_nonce: Nonce(teacher_nonce),
            student_nonce: state.nonce,
        };
        let proof = Message::Proof {
            mac: to_hex(&prove(&self.key, Role::Student, &session)),
        };
        Ok((StudentProved { session, sync_port }, proof))
    }

    /// Checks the teacher's proof: the join is done when it verifies. Returns the
    /// teacher's device ID and Syncthing port.
    pub fn on_welcome(&self, state: StudentProved, msg: Message) -> Result<Welcomed, JoinError> {
        match msg {
            Message::Welcome { mac } => {
                let tag = from_hex::<32>(&mac).ok_or(JoinError::TeacherProofInvalid)?;
                if verify(&self.key, Role::Teacher, &state.session, &tag) {
                    Ok(Welcomed {
                        device_id: state.session.teacher_device,
                        sync_port: state.sync_port,
                    })
                } else {
                    Err(JoinError::TeacherProofInvalid)
                }
            }
            Message::Refused { refusal } => Err(JoinError::Refused(refusal)),
            other => Err(JoinError::Protocol(format!(
                "expected welcome, got {other:?}"
            ))),
        }
    }
}

/// The teacher's guard against guessing: after `max_failures` wrong codes from one address
/// that address waits `lockout`, doubled at each further lockout (capped at an hour); a
/// right code clears its record.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    max_failures: u32,
    lockout: Duration,
    entries: HashMap<IpAddr, Entry>,
}

#[derive(Debug, Clone, Default)]
struct Entry {
    failures: u32,
    lockouts: u32,
    until: Option<Instant>,
}

const MAX_LOCKOUT: Duration = Duration::from_secs(3600);

impl RateLimiter {
    pub fn new(max_failures: u32, lockout: Duration) -> Self {
        Self {
            max_failures: max_failures.max(1),
            lockout,
            entries: HashMap::new(),
        }
    }

    /// `Err(wait)` while `ip` is locked out at `now`.
    pub fn check(&self, ip: IpAddr, now: Instant) -> Result<(), Duration> {
        match self.entries.get(&ip).and_then(|e| e.until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    /// Counts a wrong code from `ip`; returns the wait when this one locks it out.
    pub fn failure(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let e = self.entries.entry(ip).or_default();
        e.failures += 1;
        if e.failures < self.max_failures {
            return None;
        }
        e.failures = 0;
        let factor = 1u32 << e.lockouts.min(16);
        let wait = self.lockout.saturating_mul(factor).min(MAX_LOCKOUT);
        e.lockouts += 1;
        e.until = Some(now + wait);
        Some(wait)
    }

    /// A right code from `ip`: forget its failures.
    pub fn success(&mut self, ip: IpAddr) {
        self.entries.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TEACHER_DEV: &str = "AAAAAAA-BBBBBBB-CCCCCCC-DDDDDDD-EEEEEEE-FFFFFFF-GGGGGGG-HHHHHHH";
    const STUDENT_DEV: &str = "MFZWI3D-BONSGYC-YLTMRWG-C43ENR5-QXGZDMM-FZWI3DP-BONSGYY-LTMRWAD";

    fn key(code: u64) -> JoinKey {
        let code = JoinCode::from_value(code).unwrap_or_else(|| unreachable!());
        JoinKey::derive_rounds(&code, "class-1", 2)
    }

    fn session(tn: [u8; 32], sn: [u8; 32]) -> Session {
        Session {
            class_id: "class-1".into(),
            teacher_device: TEACHER_DEV.into(),
            student_device: STUDENT_DEV.into(),
            student_name: "Sokha".into(),
            teacher_nonce: Nonce(tn),
            student_nonce: Nonce(sn),
        }
    }

    fn sides(teacher_code: u64, student_code: u64) -> (Teacher, Student) {
        (
            Teacher {
                class_id: "class-1".into(),
                device_id: TEACHER_DEV.into(),
                key: key(teacher_code),
                sync_port: Some(22000),
                names: Default::default(),
            },
            Student {
                class_id: "class-1".into(),
                teacher_device: TEACHER_DEV.into(),
                device_id: STUDENT_DEV.into(),
                name: "Sokha".into(),
                key: key(student_code),
                sync_port: Some(22001),
            },
        )
    }

    /// Runs a whole handshake in memory.
    fn run(t: &Teacher, s: &Student) -> Result<(Admitted, String), String> {
        let (sh, hello) = s.hello(Nonce([1; 32]));
        let (tp, challenge) = t
            .on_hello(hello, Nonce([2; 32]))
            .map_err(|e| e.to_string())?;
        let (sp, proof) = s.on_challenge(sh, challenge).map_err(|e| e.to_string())?;
        let (admitted, welcome) = t.on_proof(tp, proof).map_err(|e| e.to_string())?;
        let welcomed = s.on_welcome(sp, welcome).map_err(|e| e.to_string())?;
        // The ports travel beside the proofs, each side's to the other.
        assert_eq!(admitted.sync_port, s.sync_port);
        assert_eq!(welcomed.sync_port, t.sync_port);
        Ok((admitted, welcomed.device_id))
    }

    /// A name another laptop holds is refused at the hello, before any proof (the student
    /// is never welcomed under a name the teacher will not admit); the same laptop may
    /// join again; a proved join takes its name for the next one.
    #[test]
    fn a_name_another_laptop_holds_is_refused() -> Result<(), String> {
        let (t, s) = sides(42, 42);
        lock_names(&t.names).insert("Sokha".into(), "OTHER-DEVICE".into());
        let (_, hello) = s.hello(Nonce([1; 32]));
        match t.on_hello(hello, Nonce([2; 32])) {
            Err(Refusal::NameTaken { name }) => assert_eq!(name, "Sokha"),
            other => return Err(format!("{other:?}")),
        }
        lock_names(&t.names).clear();
        run(&t, &s)?;
        assert_eq!(
            lock_names(&t.names).get("Sokha").map(String::as_str),
            Some(STUDENT_DEV)
        );
        run(&t, &s)?;
        let other = Student {
            device_id: TEACHER_DEV.replace('A', "B"),
            ..s.clone()
        };
        let (_, hello) = other.hello(Nonce([3; 32]));
        assert!(matches!(
            t.on_hello(hello, Nonce([4; 32])),
            Err(Refusal::NameTaken { .. })
        ));
        Ok(())
    }

    #[test]
    fn the_right_code_joins_both_ways() -> Result<(), String> {
        let (t, s) = sides(42, 42);
        let (admitted, teacher) = run(&t, &s)?;
        assert_eq!(admitted.device_id, STUDENT_DEV);
        assert_eq!(admitted.name, "Sokha");
        assert_eq!(teacher, TEACHER_DEV);
        Ok(())
    }

    #[test]
    fn device_ids_and_names_are_read_the_same_way_on_both_sides() -> Result<(), String> {
        let (mut t, mut s) = sides(42, 42);
        t.device_id = TEACHER_DEV.to_lowercase();
        s.teacher_device = TEACHER_DEV.replace('-', "").to_lowercase();
        s.device_id = STUDENT_DEV.to_lowercase();
        s.name = "  Sokha ".into();
        let (admitted, teacher) = run(&t, &s)?;
        assert_eq!(
            (admitted.device_id.as_str(), admitted.name.as_str()),
            (STUDENT_DEV, "Sokha")
        );
        assert_eq!(teacher, TEACHER_DEV);
        Ok(())
    }

    #[test]
    fn a_wrong_code_is_refused() {
        let (t, s) = sides(42, 43);
        assert_eq!(run(&t, &s).err().as_deref(), Some("wrong code"));
    }

    #[test]
    fn the_student_refuses_another_teacher_device() {
        let (mut t, s) = sides(42, 42);
        t.device_id = STUDENT_DEV.replace('M', "N");
        let err = run(&t, &s).err().unwrap_or_default();
        assert!(err.contains("not the one the class announced"), "{err}");
    }

    #[test]
    fn a_replayed_proof_fails_against_a_fresh_nonce() -> Result<(), String> {
        let (t, s) = sides(42, 42);
        let (sh, hello) = s.hello(Nonce([1; 32]));
        let (_, challenge) = t
            .on_hello(hello.clone(), Nonce([2; 32]))
            .map_err(|e| e.to_string())?;
        let (_, proof) = s.on_challenge(sh, challenge).map_err(|e| e.to_string())?;
        // The same hello and proof sent again meet another teacher nonce.
        let (tp2, _) = t
            .on_hello(hello, Nonce([3; 32]))
            .map_err(|e| e.to_string())?;
        assert_eq!(t.on_proof(tp2, proof).err(), Some(Refusal::WrongCode));
        Ok(())
    }

    #[test]
    fn the_key_depends_on_the_class() {
        let code = JoinCode::from_value(42).unwrap_or_else(|| unreachable!());
        let s = session([2; 32], [1; 32]);
        let mac = prove(
            &JoinKey::derive_rounds(&code, "class-1", 2),
            Role::Student,
            &s,
        );
        assert!(!verify(
            &JoinKey::derive_rounds(&code, "class-2", 2),
            Role::Student,
            &s,
            &mac
        ));
        assert!(verify(
            &JoinKey::derive_rounds(&code, "class-1", 2),
            Role::Student,
            &s,
            &mac
        ));
        assert!(!verify(
            &JoinKey::derive_rounds(&code, "class-1", 3),
            Role::Student,
            &s,
            &mac
        ));
    }

    #[test]
    fn the_teachers_proof_reflected_is_not_a_students() {
        let k = key(42);
        let s = session([2; 32], [1; 32]);
        let teacher_mac = prove(&k, Role::Teacher, &s);
        assert!(!verify(&k, Role::Student, &s, &teacher_mac));
        assert!(verify(&k, Role::Teacher, &s, &teacher_mac));
    }

    #[test]
    fn messages_are_json_lines() -> Result<(), serde_json::Error> {
        let m = Message::Refused {
            refusal: Refusal::RateLimited {
                retry_after_secs: 30,
            },
        };
        let line = serde_json::to_string(&m)?;
        assert_eq!(
            line,
            r#"{"type":"refused","reason":"rate_limited","retry_after_secs":30}"#
        );
        assert_eq!(serde_json::from_str::<Message>(&line)?, m);
        assert!(serde_json::from_str::<Message>(r#"{"type":"code","code":"1"}"#).is_err());
        assert!(serde_json::from_str::<Message>(r#"{"type":"proof"}"#).is_err());
        Ok(())
    }

    #[test]
    fn device_ids_and_names() {
        assert_eq!(
            canonical_device_id(&STUDENT_DEV.to_lowercase()).as_deref(),
            Some(STUDENT_DEV)
        );
        assert_eq!(canonical_device_id("ABC"), None);
        assert_eq!(check_name("  សុខា  ").as_deref(), Ok("សុខា"));
        assert!(check_name("../x").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(41)).is_err());
    }

    #[test]
    fn rate_limit_locks_out_after_n_and_doubles() {
        let ip: IpAddr = [10, 0, 0, 5].into();
        let other: IpAddr = [10, 0, 0, 6].into();
        let t0 = Instant::now();
        let mut rl = RateLimiter::new(3, Duration::from_secs(10));
        assert_eq!(rl.failure(ip, t0), None);
        assert_eq!(rl.failure(ip, t0), None);
        assert_eq!(rl.failure(ip, t0), Some(Duration::from_secs(10)));
        assert!(rl.check(ip, t0).is_err());
        assert!(rl.check(other, t0).is_ok());
        let t1 = t0 + Duration::from_secs(11);
        assert!(rl.check(ip, t1).is_ok());
        for _ in 0..2 {
            assert_eq!(rl.failure(ip, t1), None);
        }
        assert_eq!(rl.failure(ip, t1), Some(Duration::from_secs(20)));
        rl.success(ip);
        assert!(rl.check(ip, t1).is_ok());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn a_proof_with_code_a_never_verifies_with_code_b(
            a in 0..crate::code::CODE_LIMIT, b in 0..crate::code::CODE_LIMIT,
            tn in any::<[u8; 32]>(), sn in any::<[u8; 32]>(),
        ) {
            prop_assume!(a != b);
            let s = session(tn, sn);
            for role in [Role::Teacher, Role::Student] {
                let mac = prove(&key(a), role, &s);
                prop_assert!(verify(&key(a), role, &s, &mac));
                prop_assert!(!verify(&key(b), role, &s, &mac));
            }
        }

        #[test]
        fn swapped_roles_fail(tn in any::<[u8; 32]>(), sn in any::<[u8; 32]>()) {
            let k = key(7);
            let s = session(tn, sn);
            prop_assert!(!verify(&k, Role::Student, &s, &prove(&k, Role::Teacher, &s)));
            prop_assert!(!verify(&k, Role::Teacher, &s, &prove(&k, Role::Student, &s)));
        }

        #[test]
        fn any_single_byte_change_fails(
            tn in any::<[u8; 32]>(), sn in any::<[u8; 32]>(),
            pos in any::<prop::sample::Index>(), flip in 1u8..=255, in_mac in any::<bool>(),
        ) {
            let k = key(7);
            let t = transcript(Role::Student, &session(tn, sn));
            let mut mac = prove_bytes(&k, &t);
            let mut t2 = t.clone();
            if in_mac {
                let i = pos.index(mac.len());
                mac[i] ^= flip;
            } else {
                let i = pos.index(t2.len());
                t2[i] ^= flip;
            }
            prop_assert!(!verify_bytes(&k, &t2, &mac));
        }

        #[test]
        fn moving_a_field_boundary_changes_the_transcript(
            x in "[a-z]{1,12}", i in any::<prop::sample::Index>(), j in any::<prop::sample::Index>(),
        ) {
            // "ab"+"c" and "a"+"bc" in two neighbouring fields: only the length prefixes
            // tell them apart.
            let (i, j) = (i.index(x.len() + 1), j.index(x.len() + 1));
            prop_assume!(i != j);
            let mut s1 = session([0; 32], [0; 32]);
            let mut s2 = s1.clone();
            (s1.student_device, s1.student_name) = (x[..i].to_string(), x[i..].to_string());
            (s2.student_device, s2.student_name) = (x[..j].to_string(), x[j..].to_string());
            prop_assert_ne!(transcript(Role::Student, &s1), transcript(Role::Student, &s2));
        }

        #[test]
        fn never_more_than_n_failures_between_lockouts(
            n in 1u32..8, steps in prop::collection::vec(0u64..30, 1..60),
        ) {
            let ip: IpAddr = [10, 0, 0, 9].into();
            let t0 = Instant::now();
            let mut rl = RateLimiter::new(n, Duration::from_secs(60));
            let mut now = t0;
            let mut allowed_in_a_row = 0u32;
            for s in steps {
                now += Duration::from_secs(s);
                if rl.check(ip, now).is_ok() {
                    allowed_in_a_row += 1;
                    prop_assert!(allowed_in_a_row <= n);
                    if rl.failure(ip, now).is_some() {
                        allowed_in_a_row = 0;
                        prop_assert!(rl.check(ip, now).is_err());
                    }
                }
            }
        }
    }
}
