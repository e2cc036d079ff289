//! The classroom's flows (`koompi class`): what a teacher's and a student's laptop keep
//! about a class (a state file), and the steps of create, serve, share, status, collect,
//! close, join, submit and leave, on top of the Syncthing engine, discovery and the join
//! handshake. The binary only parses arguments and prints.
//!
//! Syncthing is not started here: the user unit (`koompi-class-syncthing.service`) runs it
//! in `STATE/koompi-class/syncthing`, and every flow talks to it through its REST API on
//! loopback ([`Engine::connect`]); tests start their own instances in the same place.

use crate::code::{CodeError, JoinCode};
use crate::discovery::{self, Announcement, Avahi, Publication};
use crate::join::net::{self, JoinEvent, JoinServer, ServerHandle, ServerOptions};
use crate::join::{self, Admitted, JoinError, JoinKey, Student, Teacher};
use crate::syncthing::classroom::{lessons_id, submissions_id, IGNORE_PATTERNS};
use crate::syncthing::{
    apply_class_options, class_device, class_folders, read_home_config, ClassOptions, Client,
    Member, RestError, Role,
};
use koompi_core::fsutil::{try_lock, Lock};
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The teacher's join port unless told (beside the GUI ports, 28384 and up).
pub const DEFAULT_JOIN_PORT: u16 = 28383;
/// Syncthing's sync port, where a typed teacher address is tried when discovery is off.
pub const SYNC_PORT: u16 = 22000;
/// Each device's send and receive limit towards each other device, KiB/s (decision 77).
pub const DEVICE_LIMIT_KBPS: u32 = 4096;
/// How long a student waits for the teacher's join server.
pub const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
const STATE_VERSION: u32 = 1;

/// What went wrong, one line each.
#[derive(Debug, thiserror::Error)]
pub enum ClassError {
    #[error("{0}")]
    Name(#[from] discovery::TxtError),
    #[error("class {0:?} exists already on this laptop")]
    Exists(String),
    #[error("no class {0:?} on this laptop (see `koompi-class status`)")]
    NoClass(String),
    #[error("class {name:?} is {actual} here: `{command}` is for a {wanted}")]
    WrongRole {
        name: String,
        actual: &'static str,
        wanted: &'static str,
        command: &'static str,
    },
    #[error("the classroom's Syncthing is not running in {home} (start it: systemctl --user start koompi-class-syncthing.service): {reason}")]
    NotRunning { home: String, reason: String },
    #[error("{0}")]
    Rest(#[from] RestError),
    #[error("{0}")]
    Code(#[from] CodeError),
    #[error("{}", join_message(.0))]
    Join(#[from] JoinError),
    #[error("{0}")]
    Discovery(#[from] discovery::DiscoveryError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("another koompi-class command is changing class {0:?}: try again when it is done")]
    Busy(String),
    #[error("state file {path}: {reason}")]
    State { path: String, reason: String },
    #[error("{0}")]
    Invalid(String),
}

/// A failed join in words a student can act on: the code, or the way to the teacher.
fn join_message(e: &JoinError) -> String {
    match e {
        JoinError::Refused(join::Refusal::WrongCode) | JoinError::TeacherProofInvalid => {
            format!("the code is not right: {e}")
        }
        JoinError::Io(_) | JoinError::Timeout(_) => {
            format!("cannot reach the teacher's laptop: {e}")
        }
        _ => e.to_string(),
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ClassError {
    let path = path.display().to_string();
    move |source| ClassError::Io { what, path, source }
}

/// Where things live: the state root (`~/.local/state`, or `--home`) and the user's home
/// (for `~/Classroom`).
#[derive(Debug, Clone)]
pub struct Paths {
    pub state_root: PathBuf,
    pub user_home: PathBuf,
}

impl Paths {
    /// State files: `STATE/koompi/class/NAME.json`.
    pub fn state_file(&self, class: &str) -> PathBuf {
        self.state_dir().join(format!("{class}.json"))
    }
    pub fn state_dir(&self) -> PathBuf {
        self.state_root.join("koompi").join("class")
    }
    /// The classroom Syncthing's home, as the user unit has it (`%S/koompi-class/syncthing`).
    pub fn syncthing_home(&self) -> PathBuf {
        self.state_root.join("koompi-class").join("syncthing")
    }
    /// `~/Classroom/NAME`.
    pub fn class_dir(&self, class: &str) -> PathBuf {
        self.user_home.join("Classroom").join(class)
    }
}

/// This laptop's part in a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Teacher,
    Student,
}

impl Part {
    /// "teacher" or "student".
    pub fn word(self) -> &'static str {
        match self {
            Part::Teacher => "teacher",
            Part::Student => "student",
        }
    }
}

/// A student the teacher admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudentEntry {
    pub name: String,
    pub device_id: String,
    /// Unix seconds.
    pub joined: u64,
}

/// The state file (mode 0600: it holds the teacher's join code).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClassState {
    pub version: u32,
    pub name: String,
    pub part: Part,
    /// This laptop's Syncthing device ID.
    pub device_id: String,
    /// The teacher's device ID (the teacher's own on the teacher's laptop).
    pub teacher_device: String,
    /// Teacher: the join code's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u64>,
    /// Student: the name the teacher knows this laptop by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student_name: Option<String>,
    #[serde(default)]
    pub students: Vec<StudentEntry>,
    pub created: u64,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl ClassState {
    /// Reads class `class`'s state.
    pub fn load(paths: &Paths, class: &str) -> Result<ClassState, ClassError> {
        discovery::check_class_name(class)?;
        let path = paths.state_file(class);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ClassError::NoClass(class.to_string()))
            }
            Err(e) => return Err(io("cannot read", &path)(e)),
        };
        let state: ClassState = serde_json::from_str(&text).map_err(|e| ClassError::State {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        if state.version != STATE_VERSION {
            return Err(ClassError::State {
                path: path.display().to_string(),
                reason: format!(
                    "version {} (this KOOMPI reads {STATE_VERSION})",
                    state.version
                ),
            });
        }
        Ok(state)
    }

    /// Writes the state atomically, mode 0600.
    pub fn save(&self, paths: &Paths) -> Result<(), ClassError> {
        let dir = paths.state_dir();
        mkdir_private(&dir)?;
        let path = paths.state_file(&self.name);
        let text = serde_json::to_vec_pretty(self).map_err(|e| ClassError::State {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        koompi_core::fsutil::write_atomic(&path, &text, 0o600).map_err(io("cannot write", &path))
    }

    fn require(&self, part: Part, command: &'static str) -> Result<(), ClassError> {
        if self.part == part {
            Ok(())
        } else {
            Err(ClassError::WrongRole {
                name: self.name.clone(),
                actual: self.part.word(),
                wanted: part.word(),
                command,
            })
        }
    }

    /// The members Syncthing's folders are shared with, as this laptop sees them.
    pub fn members(&self) -> Vec<Member> {
        match self.part {
            Part::Teacher => self
                .students
                .iter()
                .map(|s| Member {
                    device_id: s.device_id.clone(),
                    role: Role::Student {
                        name: s.name.clone(),
                    },
                })
                .collect(),
            Part::Student => vec![Member {
                device_id: self.teacher_device.clone(),
                role: Role::Teacher,
            }],
        }
    }

    fn role(&self) -> Role {
        match (&self.part, &self.student_name) {
            (Part::Student, Some(name)) => Role::Student { name: name.clone() },
            _ => Role::Teacher,
        }
    }
}

/// How long a command waits for another one changing the same class (`serve` admitting a
/// student takes well under a second).
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// Takes class `class`'s lock (`STATE/koompi/class/.NAME.lock`, an flock released when
/// the process ends however it ends), waiting at most `within` for another command.
/// Every change of a class's state and Syncthing folders holds it: two commands never
/// load, change and save the same state file at once (one student's admission lost).
fn lock_class(paths: &Paths, class: &str, within: Duration) -> Result<Lock, ClassError> {
    let path = paths.state_dir().join(format!(".{class}.lock"));
    let start = std::time::Instant::now();
    loop {
        if let Some(lock) = try_lock(&path).map_err(io("cannot lock", &path))? {
            return Ok(lock);
        }
        if start.elapsed() >= within {
            return Err(ClassError::Busy(class.to_string()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mkdir_private(dir: &Path) -> Result<(), ClassError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io("cannot create", dir))
}

fn mkdir(dir: &Path) -> Result<(), ClassError> {
    std::fs::create_dir_all(dir).map_err(io("cannot create", dir))
}

/// The classroom's running Syncthing, through its REST API.
#[derive(Debug)]
pub struct Engine {
    pub client: Client,
    pub device_id: String,
    /// The port Syncthing's sync protocol listens on (told to the other side at a join).
    pub sync_port: Option<u16>,
}

impl Engine {
    /// Connects to the Syncthing whose home is `paths.syncthing_home()` on
    /// `127.0.0.1:gui_port` (its API key from its config.xml).
    pub fn connect(paths: &Paths, gui_port: u16) -> Result<Engine, ClassError> {
        let home = paths.syncthing_home();
        let not_running = |reason: String| ClassError::NotRunning {
            home: home.display().to_string(),
            reason,
        };
        let config =
            read_home_config(&home.join("config.xml")).map_err(|e| not_running(e.to_string()))?;
        let client = Client::new(&format!("127.0.0.1:{gui_port}"), &config.api_key);
        let status = client.status().map_err(|e| not_running(e.to_string()))?;
        Ok(Engine {
            client,
            sync_port: status.sync_port(),
            device_id: status.my_id,
        })
    }

    /// The classroom's options (LAN only, local discovery on) and this class's folders as
    /// `state` says, folders' directories created first.
    pub fn configure(&self, paths: &Paths, state: &ClassState) -> Result<(), ClassError> {
        let mut opts = self.client.options()?;
        apply_class_options(
            &mut opts,
            &ClassOptions {
                local_announce: true,
                listen_addresses: None,
            },
        );
        self.client.put_options(&opts)?;
        for f in class_folders(
            &state.name,
            &paths.class_dir(&state.name),
            &state.role(),
            &state.members(),
        ) {
            mkdir(Path::new(&f.path))?;
            self.client.add_folder(&f)?;
            self.client.set_ignores(&f.id, &IGNORE_PATTERNS)?;
        }
        Ok(())
    }
}

/// What `create` made.
#[derive(Debug, Serialize)]
pub struct Created {
    pub name: String,
    pub dir: PathBuf,
    pub words: String,
    pub digits: String,
    #[serde(skip)]
    pub code: JoinCode,
}

/// Teacher: a new class: its folders, its Lessons in Syncthing, a fresh join code.
pub fn create(paths: &Paths, engine: &Engine, name: &str) -> Result<Created, ClassError> {
    discovery::check_class_name(name)?;
    let _lock = lock_class(paths, name, LOCK_WAIT)?;
    if paths.state_file(name).exists() {
        return Err(ClassError::Exists(name.to_string()));
    }
    let code = JoinCode::generate()?;
    let state = ClassState {
        version: STATE_VERSION,
        name: name.to_string(),
        part: Part::Teacher,
        device_id: engine.device_id.clone(),
        teacher_device: engine.device_id.clone(),
        code: Some(code.value()),
        student_name: None,
        students: Vec::new(),
        created: now(),
    };
    let dir = paths.class_dir(name);
    // Homework and the state of a class are the user's alone on a shared laptop.
    mkdir_private(&dir)?;
    mkdir(&dir.join("Lessons"))?;
    mkdir(&dir.join("Submissions"))?;
    engine.configure(paths, &state)?;
    state.save(paths)?;
    Ok(Created {
        name: name.to_string(),
        dir,
        words: code.words(),
        digits: code.digits(),
        code,
    })
}

/// The teacher's join code of a class.
pub fn teacher_code(state: &ClassState) -> Result<JoinCode, ClassError> {
    state
        .code
        .and_then(JoinCode::from_value)
        .ok_or_else(|| ClassError::State {
            path: state.name.clone(),
            reason: "no join code".into(),
        })
}

/// Teacher: records an admitted student and shares with their laptop: the Lessons, and
/// their own Submissions folder (shared with nobody else). The student's laptop is known
/// at `from` (the join's source address) and the sync port it told, and by local
/// discovery; students learn each other from the teacher (they take it as introducer) with
/// these addresses. A name another device holds is refused (the first laptop keeps it).
pub fn admit(
    paths: &Paths,
    engine: &Engine,
    class: &str,
    student: &Admitted,
    from: IpAddr,
) -> Result<(), ClassError> {
    let _lock = lock_class(paths, class, LOCK_WAIT)?;
    let mut state = ClassState::load(paths, class)?;
    state.require(Part::Teacher, "serve")?;
    if let Some(known) = state.students.iter().find(|s| s.name == student.name) {
        if known.device_id != student.device_id {
            return Err(ClassError::Invalid(format!(
                "the name {:?} belongs to another laptop ({}); not admitted",
                student.name, known.device_id
            )));
        }
    } else {
        state.students.push(StudentEntry {
            name: student.name.clone(),
            device_id: student.device_id.clone(),
            joined: now(),
        });
    }
    engine.client.add_device(&class_device(
        &student.device_id,
        &student.name,
        &sync_addresses(from, student.sync_port),
        DEVICE_LIMIT_KBPS,
    ))?;
    engine.configure(paths, &state)?;
    state.save(paths)
}

/// Where a device that joined from `ip` and told `port` is dialled: there, and wherever
/// local discovery finds it.
fn sync_addresses(ip: IpAddr, port: Option<u16>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(port) = port {
        out.push(format!("tcp://{}", SocketAddr::new(ip, port)));
    }
    out.push("dynamic".to_string());
    out
}

/// A running class: the join server, its announcement, and the events it reports.
#[derive(Debug)]
pub struct Serving {
    pub server: ServerHandle,
    /// The names the join server holds taken (shared with it): [`refresh_names`] lets go
    /// of the ones `remove-student` freed while it runs.
    pub names: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, String>>>,
    /// The students of the state file when the names were last read.
    pub known: std::collections::BTreeMap<String, String>,
    pub publication: Option<Publication>,
    pub events: mpsc::Receiver<JoinEvent>,
    /// Why the class is not announced, when it is not.
    pub announce_error: Option<String>,
}

/// Teacher: starts the join server on `listen` and announces the class through `avahi`
/// (none: not announced). A failed announcement is reported, not fatal: a student can
/// still join with the teacher's address.
pub fn serve(
    paths: &Paths,
    engine: &Engine,
    class: &str,
    listen: SocketAddr,
    avahi: Option<&Avahi>,
) -> Result<Serving, ClassError> {
    let state = ClassState::load(paths, class)?;
    state.require(Part::Teacher, "serve")?;
    let code = teacher_code(&state)?;
    let teacher = Teacher {
        class_id: state.name.clone(),
        device_id: engine.device_id.clone(),
        key: JoinKey::derive(&code, &state.name),
        sync_port: engine.sync_port,
        names: std::sync::Arc::new(std::sync::Mutex::new(student_names(&state))),
    };
    let names = std::sync::Arc::clone(&teacher.names);
    let server = JoinServer::bind(listen, teacher, ServerOptions::default())
        .map_err(io("cannot listen on", Path::new(&listen.to_string())))?;
    let port = server
        .local_addr()
        .map_err(io("cannot listen on", Path::new(&listen.to_string())))?
        .port();
    let (tx, events) = mpsc::channel();
    let server = server
        .spawn(tx)
        .map_err(io("cannot serve on", Path::new(&listen.to_string())))?;
    let (publication, announce_error) = match avahi {
        None => (None, None),
        Some(avahi) => {
            let announced = Announcement::new(&state.name, &engine.device_id, port)
                .map_err(ClassError::from)
                .and_then(|a| avahi.publish(&a).map_err(ClassError::from));
            match announced {
                Ok(p) => (Some(p), None),
                Err(e) => (None, Some(e.to_string())),
            }
        }
    };
    Ok(Serving {
        server,
        names,
        known: student_names(&state),
        publication,
        events,
        announce_error,
    })
}

fn student_names(state: &ClassState) -> std::collections::BTreeMap<String, String> {
    state
        .students
        .iter()
        .map(|s| (s.name.clone(), s.device_id.clone()))
        .collect()
}

/// Teacher: while `serve` runs, frees the names of students `remove-student` took out
/// since the last call (those that were in the state and no longer are), so another laptop
/// may join under them. Names proved since then and not yet saved are kept.
pub fn refresh_names(paths: &Paths, class: &str, serving: &mut Serving) -> Result<(), ClassError> {
    let now = student_names(&ClassState::load(paths, class)?);
    let mut names = serving.names.lock().unwrap_or_else(|e| e.into_inner());
    free_removed(&serving.known, &now, &mut names);
    drop(names);
    serving.known = now;
    Ok(())
}

type Names = std::collections::BTreeMap<String, String>;

/// Removes from `names` each (name, device) that was in the state (`before`) and is not
/// any more (`now`); a name taken by a join since (not in `before`, or another device)
/// stays.
fn free_removed(before: &Names, now: &Names, names: &mut Names) {
    for (name, device) in before {
        if now.get(name) != Some(device) && names.get(name) == Some(device) {
            names.remove(name);
        }
    }
}

/// The name of a file given on the command line, as it is put in a class folder.
fn file_name(file: &Path) -> Result<String, ClassError> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| ClassError::Invalid(format!("{}: not a file name", file.display())))?;
    if name.starts_with('.') {
        return Err(ClassError::Invalid(format!(
            "{name}: hidden files are not shared"
        )));
    }
    Ok(name.to_string())
}

/// Opens `path` for reading only if it is a regular file: never blocks on a FIFO or a
/// device (O_NONBLOCK), and with `nofollow` refuses a symbolic link (O_NOFOLLOW).
fn open_regular(path: &Path, nofollow: bool) -> Result<std::fs::File, ClassError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = rustix::fs::OFlags::NONBLOCK.bits();
    if nofollow {
        flags |= rustix::fs::OFlags::NOFOLLOW.bits();
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags as i32)
        .open(path)
        .map_err(io("cannot read", path))?;
    let meta = f.metadata().map_err(io("cannot read", path))?;
    if !meta.is_file() {
        return Err(ClassError::Invalid(format!(
            "{}: not a regular file",
            path.display()
        )));
    }
    Ok(f)
}

/// Copies `src` to a new file `dest` (never through a link planted there), synced.
fn copy_file(src: std::fs::File, dest: &Path) -> Result<(), ClassError> {
    copy_file_mode(src, dest, 0o644)
}

/// [`copy_file`] with the new file's permission bits.
fn copy_file_mode(mut src: std::fs::File, dest: &Path, mode: u32) -> Result<(), ClassError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(dest)
        .map_err(io("cannot write", dest))?;
    out.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(io("cannot write", dest))?;
    std::io::copy(&mut src, &mut out).map_err(io("cannot copy to", dest))?;
    out.flush().map_err(io("cannot write", dest))?;
    out.sync_all().map_err(io("cannot write", dest))
}

/// Copies `file` into `dir` atomically: to a temporary name Syncthing skips
/// (`.syncthing.*.tmp`), synced, then renamed. Returns the destination. A temporary file
/// an interrupted run left is replaced.
fn copy_into(file: &Path, dir: &Path, mode: u32) -> Result<PathBuf, ClassError> {
    let name = file_name(file)?;
    let src = open_regular(file, false)?;
    let dest = dir.join(&name);
    let tmp = dir.join(format!(".syncthing.{name}.koompi.tmp"));
    match std::fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("cannot remove", &tmp)(e)),
    }
    let result = copy_file_mode(src, &tmp, mode)
        .and_then(|()| std::fs::rename(&tmp, &dest).map_err(io("cannot rename to", &dest)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| dest)
}

/// Teacher: copies lessons into Lessons and asks Syncthing to rescan. Student: the same
/// for homework into Submissions/<me>.
pub fn put_files(
    paths: &Paths,
    engine: &Engine,
    class: &str,
    files: &[PathBuf],
    part: Part,
) -> Result<Vec<PathBuf>, ClassError> {
    let state = ClassState::load(paths, class)?;
    let (dir, folder, command) = match part {
        Part::Teacher => (
            paths.class_dir(class).join("Lessons"),
            lessons_id(class),
            "share",
        ),
        Part::Student => {
            let me = state.student_name.clone().unwrap_or_default();
            (
                paths.class_dir(class).join("Submissions").join(&me),
                submissions_id(class, &me),
                "submit",
            )
        }
    };
    state.require(part, command)?;
    if files.is_empty() {
        return Err(ClassError::Invalid("no files given".into()));
    }
    mkdir(&dir)?;
    let mut out = Vec::new();
    // Lessons are read-only (Syncthing carries the mode to every student: an editor says
    // so, and the student saves a copy elsewhere instead of a change `watch` would undo).
    let mode = if part == Part::Teacher { 0o444 } else { 0o644 };
    for f in files {
        out.push(copy_into(f, &dir, mode)?);
    }
    engine.client.scan(&folder)?;
    Ok(out)
}

/// A file in a class folder.
#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    /// Unix seconds.
    pub modified: u64,
}

fn list_files(dir: &Path) -> Vec<FileEntry> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || name.starts_with("~syncthing~") {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(0);
        out.push(FileEntry {
            name,
            size: meta.len(),
            modified,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// One student as the teacher sees them.
#[derive(Debug, Serialize)]
pub struct StudentStatus {
    pub name: String,
    pub device_id: String,
    pub online: bool,
    /// RFC 3339, from Syncthing's device statistics; empty when never seen.
    pub last_seen: String,
    /// Percent of the Lessons the student's laptop has.
    pub lessons_completion: Option<f64>,
    pub submissions: Vec<FileEntry>,
}

/// What `status` shows.
#[derive(Debug, Serialize)]
pub struct Status {
    pub name: String,
    pub part: Part,
    pub dir: PathBuf,
    pub device_id: String,
    pub teacher_device: String,
    /// Teacher: the students.
    pub students: Vec<StudentStatus>,
    /// Student: whether the teacher's laptop is connected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub teacher_online: Option<bool>,
    pub lessons: Vec<FileEntry>,
    /// Student: their own submissions.
    pub my_submissions: Vec<FileEntry>,
    /// Student: their name in the class.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub student_name: Option<String>,
    /// Student: lesson files changed here (Lessons is receive-only; `restore` undoes them).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lessons_changed: Option<u64>,
}

/// The class as this laptop sees it.
pub fn status(paths: &Paths, engine: &Engine, class: &str) -> Result<Status, ClassError> {
    let state = ClassState::load(paths, class)?;
    let dir = paths.class_dir(class);
    let conns = engine.client.connections()?;
    let online = |d: &str| {
        conns
            .get(d)
            .and_then(|c| c.get("connected"))
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    };
    let mut out = Status {
        name: state.name.clone(),
        part: state.part,
        dir: dir.clone(),
        device_id: state.device_id.clone(),
        teacher_device: state.teacher_device.clone(),
        students: Vec::new(),
        teacher_online: None,
        lessons: list_files(&dir.join("Lessons")),
        my_submissions: Vec::new(),
        student_name: state.student_name.clone(),
        lessons_changed: None,
    };
    match state.part {
        Part::Teacher => {
            let stats = engine.client.device_stats()?;
            for s in &state.students {
                out.students.push(StudentStatus {
                    name: s.name.clone(),
                    device_id: s.device_id.clone(),
                    online: online(&s.device_id),
                    last_seen: stats
                        .get(&s.device_id)
                        .and_then(|v| v.get("lastSeen"))
                        .and_then(|v| v.as_str())
                        .filter(|t| !t.starts_with("1970-"))
                        .unwrap_or_default()
                        .to_string(),
                    lessons_completion: engine
                        .client
                        .completion(&lessons_id(class), &s.device_id)
                        .ok()
                        .map(|c| c.completion),
                    submissions: list_files(&dir.join("Submissions").join(&s.name)),
                });
            }
        }
        Part::Student => {
            out.teacher_online = Some(online(&state.teacher_device));
            out.lessons_changed = engine
                .client
                .folder_status(&lessons_id(class))
                .ok()
                .map(|f| f.receive_only_total_items);
            if let Some(me) = &state.student_name {
                out.my_submissions = list_files(&dir.join("Submissions").join(me));
            }
        }
    }
    Ok(out)
}

/// Student: undoes local changes to the Lessons (`POST /rest/db/revert`: Syncthing puts
/// the teacher's version back). Returns how many files were changed before.
pub fn restore(paths: &Paths, engine: &Engine, class: &str) -> Result<u64, ClassError> {
    let state = ClassState::load(paths, class)?;
    state.require(Part::Student, "restore")?;
    let id = lessons_id(class);
    let changed = engine.client.folder_status(&id)?.receive_only_total_items;
    if changed > 0 {
        engine.client.revert(&id)?;
    }
    Ok(changed)
}

/// What `collect` copied.
#[derive(Debug, Serialize)]
pub struct Collected {
    pub dir: PathBuf,
    /// (student, file name)
    pub files: Vec<(String, String)>,
}

/// Teacher: a dated copy of every submission, `INTO/NAME-YYYYMMDD-HHMMSS/<student>/...`
/// (INTO: `~/Classroom/NAME/Collected` unless told): regular files and the folders they
/// are in; a symbolic link a student's laptop sent is left out, never followed. The copy
/// is made under a hidden name and renamed when whole, so a failed or interrupted collect
/// leaves no half copy under the dated name (a hidden `.partial` left by a killed run is
/// removed by the next collect).
pub fn collect(
    paths: &Paths,
    class: &str,
    into: Option<&Path>,
    stamp: &str,
) -> Result<Collected, ClassError> {
    let state = ClassState::load(paths, class)?;
    state.require(Part::Teacher, "collect")?;
    let base = into
        .map(Path::to_path_buf)
        .unwrap_or_else(|| paths.class_dir(class).join("Collected"));
    let dir = base.join(format!("{class}-{stamp}"));
    if dir.symlink_metadata().is_ok() {
        return Err(ClassError::Invalid(format!(
            "{} exists already",
            dir.display()
        )));
    }
    mkdir(&base)?;
    // Leftovers of interrupted collects of this class.
    if let Ok(rd) = std::fs::read_dir(&base) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(&format!(".{class}-")) && n.ends_with(".partial") {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    let partial = base.join(format!(".{class}-{stamp}.partial"));
    let mut files = Vec::new();
    let result = (|| {
        mkdir_private(&partial)?;
        for s in &state.students {
            let src = paths.class_dir(class).join("Submissions").join(&s.name);
            let dest = partial.join(&s.name);
            mkdir(&dest)?;
            copy_tree(&src, &dest, Path::new(""), &mut |rel| {
                files.push((s.name.clone(), rel.display().to_string()))
            })?;
        }
        std::fs::rename(&partial, &dir).map_err(io("cannot rename to", &dir))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&partial);
        return Err(e);
    }
    Ok(Collected { dir, files })
}

/// Copies the regular files and directories under `src` to `dest` (which exists), at
/// most 32 levels deep; symbolic links and special files are skipped, as are Syncthing's
/// own hidden files.
fn copy_tree(
    src: &Path,
    dest: &Path,
    rel: &Path,
    seen: &mut dyn FnMut(&Path),
) -> Result<(), ClassError> {
    if rel.components().count() > 32 {
        return Ok(());
    }
    let Ok(rd) = std::fs::read_dir(src) else {
        return Ok(());
    };
    let mut entries: Vec<_> = rd.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name();
        let n = name.to_string_lossy();
        // Syncthing's own: its temporary files, the folder marker, the ignore patterns
        // (every class folder has a `.stignore`), versions.
        if n.starts_with(".syncthing.")
            || n.starts_with("~syncthing~")
            || matches!(n.as_ref(), ".stfolder" | ".stignore" | ".stversions")
        {
            continue;
        }
        let Ok(kind) = e.file_type() else { continue };
        let (from, to, r) = (src.join(&name), dest.join(&name), rel.join(&name));
        if kind.is_dir() {
            mkdir(&to)?;
            copy_tree(&from, &to, &r, seen)?;
        } else if kind.is_file() {
            match open_regular(&from, true) {
                Ok(f) => {
                    copy_file(f, &to)?;
                    seen(&r);
                }
                // Replaced by something else since it was listed: left out.
                Err(ClassError::Invalid(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Teacher `close`, student `leave`: the class's folders and devices leave Syncthing and
/// the state file goes; the files in ~/Classroom/NAME stay.
pub fn close(paths: &Paths, engine: &Engine, class: &str, part: Part) -> Result<(), ClassError> {
    let _lock = lock_class(paths, class, LOCK_WAIT)?;
    let state = ClassState::load(paths, class)?;
    state.require(
        part,
        if part == Part::Teacher {
            "close"
        } else {
            "leave"
        },
    )?;
    for f in class_folders(
        class,
        &paths.class_dir(class),
        &state.role(),
        &state.members(),
    ) {
        match engine.client.remove_folder(&f.id) {
            Ok(()) | Err(RestError::Status { status: 404, .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    // A device another class on this laptop still shares with stays.
    let others: std::collections::BTreeSet<String> = list(paths)
        .iter()
        .filter(|s| s.name != class)
        .flat_map(|s| s.members().into_iter().map(|m| m.device_id))
        .collect();
    for m in state.members() {
        if others.contains(&m.device_id) {
            continue;
        }
        match engine.client.remove_device(&m.device_id) {
            Ok(()) | Err(RestError::Status { status: 404, .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let path = paths.state_file(class);
    std::fs::remove_file(&path).map_err(io("cannot remove", &path))
}

/// Teacher: takes a student out of the class. Their laptop stops receiving lessons and
/// its Submissions folder leaves Syncthing (what was handed in stays on disk, and in
/// `collect`'s earlier copies); the other students drop the device too, as their
/// introducer no longer shares with it. Syncthing is changed first and the state saved
/// last, so a run cut short is finished by the same command.
pub fn remove_student(
    paths: &Paths,
    engine: &Engine,
    class: &str,
    name: &str,
) -> Result<StudentEntry, ClassError> {
    let _lock = lock_class(paths, class, LOCK_WAIT)?;
    let mut state = ClassState::load(paths, class)?;
    state.require(Part::Teacher, "remove-student")?;
    let Some(i) = state.students.iter().position(|s| s.name == name) else {
        return Err(ClassError::Invalid(format!(
            "no student {name:?} in class {class}"
        )));
    };
    let entry = state.students.remove(i);
    match engine.client.remove_folder(&submissions_id(class, name)) {
        Ok(()) | Err(RestError::Status { status: 404, .. }) => {}
        Err(e) => return Err(e.into()),
    }
    engine.configure(paths, &state)?;
    let still_shared = list(paths)
        .iter()
        .filter(|s| s.name != class)
        .chain(std::iter::once(&state))
        .any(|s| s.members().iter().any(|m| m.device_id == entry.device_id));
    if !still_shared {
        match engine.client.remove_device(&entry.device_id) {
            Ok(()) | Err(RestError::Status { status: 404, .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    state.save(paths)?;
    Ok(entry)
}

/// What one pass of [`watch_pass`] changed.
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct WatchPass {
    /// Classes whose Lessons had local changes, put back: (class, files changed).
    pub reverted: Vec<(String, u64)>,
    /// Classmates' laptops (introduced by a teacher) given the per-device limit.
    pub limited: Vec<String>,
}

/// Student: one pass of what `koompi-class watch` keeps true on a student's laptop:
/// Lessons are the teacher's (a local change, edit or deletion, is reverted) and the
/// classmates the teacher introduced get the same per-device bandwidth limit as the
/// teacher. A class whose folder Syncthing does not have (yet) is skipped.
pub fn watch_pass(paths: &Paths, engine: &Engine) -> Result<WatchPass, ClassError> {
    let classes: Vec<ClassState> = list(paths)
        .into_iter()
        .filter(|s| s.part == Part::Student)
        .collect();
    let mut out = WatchPass::default();
    for s in &classes {
        let id = lessons_id(&s.name);
        let changed = match engine.client.folder_status(&id) {
            Ok(f) => f.receive_only_total_items,
            Err(RestError::Status { status: 404, .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        if changed > 0 {
            engine.client.revert(&id)?;
            out.reverted.push((s.name.clone(), changed));
        }
    }
    let teachers: std::collections::BTreeSet<String> =
        classes.iter().map(|s| s.teacher_device.clone()).collect();
    if teachers.is_empty() {
        return Ok(out);
    }
    for d in engine.client.devices()? {
        let limited = d.max_send_kbps == DEVICE_LIMIT_KBPS && d.max_recv_kbps == DEVICE_LIMIT_KBPS;
        if teachers.contains(&d.introduced_by) && !limited {
            engine.client.patch_device(
                &d.device_id,
                &serde_json::json!({
                    "maxSendKbps": DEVICE_LIMIT_KBPS,
                    "maxRecvKbps": DEVICE_LIMIT_KBPS,
                }),
            )?;
            out.limited.push(if d.name.is_empty() {
                d.device_id
            } else {
                d.name
            });
        }
    }
    Ok(out)
}

/// How a student finds the teacher.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The class name; needed with a typed teacher address, else picks among those found.
    pub class: Option<String>,
    pub code: String,
    /// `HOST[:PORT]` of the teacher's join server; `None`: DNS-SD.
    pub teacher: Option<String>,
    /// The teacher's Syncthing address (`tcp://HOST:PORT`) when local discovery cannot
    /// find it; default `dynamic` and `tcp://HOST:22000`.
    pub teacher_sync: Option<String>,
    /// The student's name in the class.
    pub student_name: String,
}

/// What `join` did.
#[derive(Debug, Serialize)]
pub struct Joined {
    pub name: String,
    pub teacher: SocketAddr,
    pub teacher_device: String,
    pub student_name: String,
    pub dir: PathBuf,
}

fn resolve(host_port: &str) -> Result<SocketAddr, ClassError> {
    let with_port = if host_port.parse::<SocketAddr>().is_ok()
        || (host_port.contains(':') && !host_port.contains("::") && !host_port.starts_with('['))
    {
        host_port.to_string()
    } else {
        format!("{host_port}:{DEFAULT_JOIN_PORT}")
    };
    with_port
        .to_socket_addrs()
        .map_err(|e| ClassError::Invalid(format!("teacher address {host_port:?}: {e}")))?
        .next()
        .ok_or_else(|| ClassError::Invalid(format!("teacher address {host_port:?}: no address")))
}

/// Student: finds the class (or takes the teacher's address), proves the code, and sets
/// up Syncthing: the teacher's device, Lessons receive-only, Submissions/<me> send-only.
pub fn join(
    paths: &Paths,
    engine: &Engine,
    req: &JoinRequest,
    avahi: Option<&Avahi>,
    browse_for: Duration,
) -> Result<Joined, ClassError> {
    let code = JoinCode::parse(&req.code)?;
    let student_name = join::check_name(&req.student_name).map_err(ClassError::Invalid)?;
    let (class, addr, announced_teacher) = match (&req.teacher, avahi) {
        (Some(t), _) => {
            let class = req.class.clone().ok_or_else(|| {
                ClassError::Invalid("name the class when giving the teacher's address".into())
            })?;
            (class, resolve(t)?, String::new())
        }
        (None, None) => {
            return Err(ClassError::Invalid(
                "no teacher address and no discovery".into(),
            ))
        }
        (None, Some(avahi)) => {
            let found = avahi.browse(browse_for)?;
            let mut classes: Vec<_> = found
                .classes
                .into_iter()
                .filter(|c| req.class.as_deref().is_none_or(|n| n == c.class))
                .collect();
            let c = match classes.len() {
                0 => {
                    return Err(ClassError::Invalid(match &req.class {
                        Some(n) => format!("class {n:?} not found on the network"),
                        None => "no class found on the network".into(),
                    }))
                }
                1 => classes.remove(0),
                _ => {
                    let names: Vec<_> = classes.iter().map(|c| c.class.clone()).collect();
                    return Err(ClassError::Invalid(format!(
                        "several classes found ({}): name one",
                        names.join(", ")
                    )));
                }
            };
            let ip = c.addresses.first().copied().ok_or_else(|| {
                ClassError::Invalid(format!("class {:?} has no address", c.class))
            })?;
            (c.class, SocketAddr::new(ip, c.join_port), c.teacher)
        }
    };
    discovery::check_class_name(&class)?;
    if paths.state_file(&class).exists() {
        return Err(ClassError::Exists(class));
    }
    let student = Student {
        class_id: class.clone(),
        teacher_device: announced_teacher,
        device_id: engine.device_id.clone(),
        name: student_name.clone(),
        key: JoinKey::derive(&code, &class),
        sync_port: engine.sync_port,
    };
    let welcomed = net::join(addr, &student, JOIN_TIMEOUT)?;
    // Locked after the handshake (it may wait half a minute for the teacher), checked
    // again under the lock.
    let _lock = lock_class(paths, &class, LOCK_WAIT)?;
    if paths.state_file(&class).exists() {
        return Err(ClassError::Exists(class));
    }
    let teacher_device = welcomed.device_id;
    let addresses = match &req.teacher_sync {
        Some(url) => vec![url.clone(), "dynamic".to_string()],
        None => sync_addresses(addr.ip(), Some(welcomed.sync_port.unwrap_or(SYNC_PORT))),
    };
    let mut teacher = class_device(&teacher_device, "teacher", &addresses, DEVICE_LIMIT_KBPS);
    // The teacher introduces the class's other laptops: lessons then pass between
    // students too, also while the teacher's laptop is away.
    teacher.introducer = true;
    engine.client.add_device(&teacher)?;
    let state = ClassState {
        version: STATE_VERSION,
        name: class.clone(),
        part: Part::Student,
        device_id: engine.device_id.clone(),
        teacher_device: teacher_device.clone(),
        code: None,
        student_name: Some(student_name.clone()),
        students: Vec::new(),
        created: now(),
    };
    mkdir_private(&paths.class_dir(&class))?;
    engine.configure(paths, &state)?;
    state.save(paths)?;
    Ok(Joined {
        dir: paths.class_dir(&class),
        name: class,
        teacher: addr,
        teacher_device,
        student_name,
    })
}

/// The classes this laptop is in.
pub fn list(paths: &Paths) -> Vec<ClassState> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(paths.state_dir()) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(class) = name.strip_suffix(".json") {
                if let Ok(s) = ClassState::load(paths, class) {
                    out.push(s);
                }
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typed_teacher_address_gets_the_join_port() {
        assert_eq!(
            resolve("127.0.0.1").expect("resolves").port(),
            DEFAULT_JOIN_PORT
        );
        assert_eq!(resolve("127.0.0.1:4000").expect("resolves").port(), 4000);
        assert!(resolve("127.0.0.1:notaport").is_err());
    }

    #[test]
    fn hidden_and_odd_names_are_not_shared() {
        assert!(file_name(Path::new("/x/.secret")).is_err());
        assert_eq!(file_name(Path::new("/x/a.pdf")).expect("name"), "a.pdf");
    }

    fn teacher_state(paths: &Paths, students: &[&str]) -> ClassState {
        let state = ClassState {
            version: STATE_VERSION,
            name: "Maths".into(),
            part: Part::Teacher,
            device_id: "T".into(),
            teacher_device: "T".into(),
            code: Some(1),
            student_name: None,
            students: students
                .iter()
                .map(|n| StudentEntry {
                    name: n.to_string(),
                    device_id: format!("D-{n}"),
                    joined: 0,
                })
                .collect(),
            created: 0,
        };
        state.save(paths).expect("save");
        state
    }

    fn paths(dir: &Path) -> Paths {
        Paths {
            state_root: dir.join("state"),
            user_home: dir.join("home"),
        }
    }

    /// A FIFO given to share is refused at once (never read: it would block); a link an
    /// attacker planted at the temporary name is replaced, not written through; a
    /// temporary file an interrupted share left is healed.
    #[test]
    fn share_copies_only_regular_files_and_never_through_a_link() {
        let t = tempfile::tempdir().expect("tempdir");
        let dir = t.path().join("Lessons");
        std::fs::create_dir_all(&dir).expect("mkdir");
        let fifo = t.path().join("pipe");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .expect("mkfifo");
        let (tx, rx) = std::sync::mpsc::channel();
        let (f2, d2) = (fifo.clone(), dir.clone());
        std::thread::spawn(move || {
            let _ = tx.send(copy_into(&f2, &d2, 0o444).map_err(|e| e.to_string()));
        });
        let r = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("copy_into blocked on a FIFO");
        assert!(r
            .expect_err("a FIFO was copied")
            .contains("not a regular file"));

        let outside = t.path().join("outside");
        std::fs::write(&outside, b"keep").expect("write");
        let lesson = t.path().join("a.txt");
        std::fs::write(&lesson, b"lesson").expect("write");
        std::os::unix::fs::symlink(&outside, dir.join(".syncthing.a.txt.koompi.tmp"))
            .expect("symlink");
        let dest = copy_into(&lesson, &dir, 0o444).expect("copy");
        assert_eq!(std::fs::read(&dest).expect("read"), b"lesson");
        assert_eq!(std::fs::read(&outside).expect("read"), b"keep");
        assert!(!dir.join(".syncthing.a.txt.koompi.tmp").exists());
    }

    /// collect copies nested folders and regular files, leaves out a link a student's
    /// laptop sent (pointing at the teacher's secrets), clears a killed run's partial copy,
    /// and refuses to overwrite an earlier collect.
    #[test]
    fn collect_copies_files_not_links_and_heals_a_partial_copy() {
        let t = tempfile::tempdir().expect("tempdir");
        let p = paths(t.path());
        teacher_state(&p, &["dara", "sokha"]);
        let sub = p.class_dir("Maths").join("Submissions");
        std::fs::create_dir_all(sub.join("dara/project")).expect("mkdir");
        std::fs::write(sub.join("dara/essay.txt"), b"essay").expect("write");
        std::fs::write(sub.join("dara/.stignore"), b"(?d).~lock.*#").expect("write");
        std::fs::write(sub.join("dara/project/main.py"), b"print(1)").expect("write");
        let secret = t.path().join("id_rsa");
        std::fs::write(&secret, b"PRIVATE").expect("write");
        std::fs::create_dir_all(sub.join("sokha")).expect("mkdir");
        std::os::unix::fs::symlink(&secret, sub.join("sokha/key.txt")).expect("symlink");
        let into = t.path().join("marking");
        std::fs::create_dir_all(into.join(".Maths-old.partial")).expect("mkdir");
        let c = collect(&p, "Maths", Some(&into), "20261206-1200").expect("collect");
        assert_eq!(
            c.files,
            vec![
                ("dara".to_string(), "essay.txt".to_string()),
                ("dara".to_string(), "project/main.py".to_string()),
            ]
        );
        assert_eq!(
            std::fs::read(c.dir.join("dara/project/main.py")).expect("read"),
            b"print(1)"
        );
        assert!(c.dir.join("sokha").is_dir());
        assert!(c.dir.join("sokha/key.txt").symlink_metadata().is_err());
        assert!(!into.join(".Maths-old.partial").exists());
        let again = collect(&p, "Maths", Some(&into), "20261206-1200");
        assert!(again.is_err_and(|e| e.to_string().contains("exists already")));
    }

    /// A collect that fails half-way leaves nothing under the dated name and no partial
    /// copy: as root, the disk fills up (INTO is a 64 KiB tmpfs, the homework 48 KiB in
    /// two files); otherwise a file cannot be read (mode 000).
    #[test]
    fn a_failed_collect_leaves_no_half_copy() {
        let t = tempfile::tempdir().expect("tempdir");
        let p = paths(t.path());
        teacher_state(&p, &["dara"]);
        let sub = p.class_dir("Maths").join("Submissions/dara");
        std::fs::create_dir_all(&sub).expect("mkdir");
        std::fs::write(sub.join("a.txt"), vec![b'a'; 24 << 10]).expect("write");
        std::fs::write(sub.join("b.txt"), vec![b'b'; 24 << 10]).expect("write");
        let into = t.path().join("marking");
        std::fs::create_dir_all(&into).expect("mkdir");
        let root = rustix::process::geteuid().is_root();
        if root {
            rustix::mount::mount(
                "tmpfs",
                &into,
                "tmpfs",
                rustix::mount::MountFlags::empty(),
                c"size=64k",
            )
            .expect("mount a small tmpfs");
            std::fs::write(into.join("already-there"), vec![0u8; 24 << 10]).expect("fill");
        } else {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(sub.join("b.txt"), std::fs::Permissions::from_mode(0o000))
                .expect("chmod");
        }
        let result = collect(&p, "Maths", Some(&into), "x");
        let left: Vec<_> = std::fs::read_dir(&into)
            .expect("into")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        if root {
            let _ = rustix::mount::unmount(&into, rustix::mount::UnmountFlags::DETACH);
        }
        let err = result
            .expect_err("the collect should have failed")
            .to_string();
        assert!(
            err.contains(if root {
                "No space left"
            } else {
                "ermission denied"
            }),
            "{err}"
        );
        let expected: Vec<String> = if root {
            vec!["already-there".into()]
        } else {
            vec![]
        };
        assert_eq!(left, expected);
    }

    /// A second command changing the same class waits for the first, then gives up with
    /// one line; another class is not held up.
    #[test]
    fn a_class_is_changed_by_one_command_at_a_time() {
        let t = tempfile::tempdir().expect("tempdir");
        let p = paths(t.path());
        let held = lock_class(&p, "Maths", LOCK_WAIT).expect("first");
        let start = std::time::Instant::now();
        let e = lock_class(&p, "Maths", Duration::from_millis(300)).expect_err("second");
        assert!(start.elapsed() >= Duration::from_millis(300));
        assert!(
            e.to_string().contains("another koompi-class command"),
            "{e}"
        );
        lock_class(&p, "Art", Duration::ZERO).expect("another class");
        let waiter = {
            let p = p.clone();
            std::thread::spawn(move || lock_class(&p, "Maths", Duration::from_secs(5)).is_ok())
        };
        std::thread::sleep(Duration::from_millis(200));
        drop(held);
        assert!(
            waiter.join().expect("thread"),
            "the waiter never got the lock"
        );
    }

    /// A removed student's name is freed for the running join server; a name proved since
    /// the state was read, and the students still in it, are kept.
    #[test]
    fn a_removed_students_name_is_freed_and_nothing_else() {
        let n = |v: &[(&str, &str)]| -> Names {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let before = n(&[("dara", "D1"), ("rithy", "D5")]);
        let now = n(&[("dara", "D1")]);
        let mut names = n(&[("dara", "D1"), ("rithy", "D5"), ("new", "D7")]);
        free_removed(&before, &now, &mut names);
        assert_eq!(names, n(&[("dara", "D1"), ("new", "D7")]));
        // Rithy rejoined from another laptop before the refresh: that is a new holder.
        let mut names = n(&[("dara", "D1"), ("rithy", "D9")]);
        free_removed(&before, &now, &mut names);
        assert_eq!(names, n(&[("dara", "D1"), ("rithy", "D9")]));
    }
}
