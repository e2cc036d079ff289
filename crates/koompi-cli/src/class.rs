//! `koompi-class`: the classroom over the school's LAN: a teacher shares lessons and
//! collects homework, students join with a code. Parses arguments and prints; the flows
//! are in `koompi_class::class`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::global::GlobalArgs;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use koompi_class::class::{self, Engine, Part, Paths};
use koompi_class::discovery::Avahi;
use koompi_class::join::net::JoinEvent;
use koompi_class::syncthing::classroom::gui_port_for_uid;
use koompi_core::cmd::Runner;

// Paragraphs are single lines: clap wraps them to the terminal.
const AFTER_HELP: &str = "\
Teacher:
  koompi-class create Maths          a class, its folders and a join code (words and QR)
  koompi-class serve Maths           let students join (keep it running during the lesson)
  koompi-class share Maths lesson1.pdf
  koompi-class status Maths          students, online, lessons received, submissions
  koompi-class collect Maths --into ~/Marking
  koompi-class remove-student Maths sokha
  koompi-class close Maths

Student:
  koompi-class join Maths --code 'bamboo lemon mango river owl'
  koompi-class join Maths --code 123-456-789-012 --teacher 10.0.0.5
  koompi-class submit Maths homework.odt
  koompi-class status Maths
  koompi-class restore Maths         undo changes to the lessons on this laptop
  koompi-class leave Maths

Files live in ~/Classroom/NAME/ (Lessons/, Submissions/<student>/). Syncthing moves them over the LAN only; it runs as koompi-class-syncthing.service (systemctl --user), its REST API on 127.0.0.1.";

/// The KOOMPI classroom: lessons out and homework back over the school's LAN.
#[derive(Debug, Parser)]
#[command(name = "koompi-class", version, help_expected = true, after_help = AFTER_HELP)]
pub struct Cli {
    /// State root instead of ~/.local/state (class state, the classroom Syncthing's home).
    #[arg(long, global = true, value_name = "DIR")]
    home: Option<PathBuf>,
    /// The classroom Syncthing's GUI/REST port on 127.0.0.1 (default: one per user).
    #[arg(long, global = true, value_name = "PORT")]
    gui_port: Option<u16>,
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Teacher: create a class and show its join code.
    Create {
        /// The class name (also ~/Classroom/NAME).
        name: String,
    },
    /// Teacher: let students join (runs until stopped) and announce the class on the LAN.
    Serve {
        /// The class name.
        name: String,
        /// Address and port of the join server.
        #[arg(long, value_name = "ADDR:PORT", default_value_t = SocketAddr::from(([0, 0, 0, 0], class::DEFAULT_JOIN_PORT)))]
        listen: SocketAddr,
        /// Do not announce the class over DNS-SD (students then need --teacher).
        #[arg(long)]
        no_announce: bool,
    },
    /// Teacher: copy files into the class's Lessons (every student receives them).
    Share {
        /// The class name.
        name: String,
        /// Files to share.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Students, lessons and submissions (teacher); teacher and lessons (student).
    Status {
        /// The class name; none: every class on this laptop.
        name: Option<String>,
    },
    /// Teacher: a dated copy of every student's submissions.
    Collect {
        /// The class name.
        name: String,
        /// Where the dated copy goes (default ~/Classroom/NAME/Collected).
        #[arg(long, value_name = "DIR")]
        into: Option<PathBuf>,
    },
    /// Teacher: end the class on this laptop (its files stay in ~/Classroom/NAME).
    Close {
        /// The class name.
        name: String,
    },
    /// Student: join a class with the teacher's code.
    Join {
        /// The class name (needed with --teacher; else picks among the classes found).
        name: Option<String>,
        /// The join code: five words or twelve digits.
        #[arg(long, value_name = "CODE")]
        code: String,
        /// The teacher's join address, HOST[:PORT], instead of finding the class on the LAN.
        #[arg(long, value_name = "HOST[:PORT]")]
        teacher: Option<String>,
        /// The teacher's Syncthing address, tcp://HOST:PORT (default: local discovery and HOST:22000).
        #[arg(long, value_name = "URL")]
        teacher_sync: Option<String>,
        /// Your name in the class (default: your login name).
        #[arg(long = "as", value_name = "NAME")]
        student: Option<String>,
        /// How long to look for the class on the LAN, seconds.
        #[arg(long, value_name = "SECS", default_value_t = 5)]
        browse_secs: u64,
    },
    /// Student: hand in files (they go to the teacher only).
    Submit {
        /// The class name.
        name: String,
        /// Files to hand in.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Teacher: take a student out of the class (their submissions stay on disk).
    RemoveStudent {
        /// The class name.
        name: String,
        /// The student's name, as `status` shows it.
        student: String,
    },
    /// Student: keep lessons as the teacher sent them (runs until stopped; the user unit
    /// koompi-class-watch.service runs it): a change is put back within seconds.
    Watch {
        /// Seconds between checks.
        #[arg(long, value_name = "SECS", default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=3600))]
        interval: u64,
        /// One check, then exit.
        #[arg(long)]
        once: bool,
    },
    /// Run the classroom's Syncthing in the foreground (what koompi-class-syncthing.service
    /// starts): its home under the state root, its REST API on 127.0.0.1.
    Engine {
        /// The Syncthing program.
        #[arg(long, value_name = "PATH", default_value = "syncthing")]
        syncthing: PathBuf,
    },
    /// Student: put back the teacher's version of lessons changed on this laptop.
    Restore {
        /// The class name.
        name: String,
    },
    /// Student: leave the class on this laptop (its files stay in ~/Classroom/NAME).
    Leave {
        /// The class name.
        name: String,
    },
}

fn paths(cli: &Cli) -> Result<Paths> {
    let user_home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set")?;
    let state_root = match &cli.home {
        Some(d) => d.clone(),
        None => std::env::var_os("XDG_STATE_HOME")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .unwrap_or_else(|| user_home.join(".local").join("state")),
    };
    Ok(Paths {
        state_root,
        user_home,
    })
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

fn ago(t: u64) -> String {
    chrono::DateTime::from_timestamp(i64::try_from(t).unwrap_or(0), 0)
        .map(|d| {
            d.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M")
                .to_string()
        })
        .unwrap_or_default()
}

/// "1 submission", "2 submissions".
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn size(n: u64) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn print_status(s: &class::Status) {
    println!(
        "{} (you are the {}) in {}",
        s.name,
        s.part.word(),
        s.dir.display()
    );
    match s.part {
        Part::Teacher => {
            println!("{} students", s.students.len());
            for st in &s.students {
                let when = if st.online {
                    "online".to_string()
                } else if st.last_seen.is_empty() {
                    "never seen".to_string()
                } else {
                    let when = chrono::DateTime::parse_from_rfc3339(&st.last_seen)
                        .map(|d| {
                            d.with_timezone(&chrono::Local)
                                .format("%Y-%m-%d %H:%M")
                                .to_string()
                        })
                        .unwrap_or_else(|_| st.last_seen.clone());
                    format!("last seen {when}")
                };
                let lessons = st
                    .lessons_completion
                    .map(|c| format!("{c:.0} %"))
                    .unwrap_or_else(|| "?".into());
                println!(
                    "  {}: {when}, lessons {lessons}, {}",
                    st.name,
                    count(st.submissions.len() as u64, "submission", "submissions")
                );
                for f in &st.submissions {
                    println!("    {} ({}, {})", f.name, size(f.size), ago(f.modified));
                }
            }
        }
        Part::Student => {
            let online = if s.teacher_online == Some(true) {
                "online"
            } else {
                "offline"
            };
            println!(
                "your name in this class: {}; the teacher is {online}",
                s.student_name.as_deref().unwrap_or("?")
            );
            if let Some(n) = s.lessons_changed.filter(|n| *n > 0) {
                println!(
                    "{} changed here (koompi-class restore {} puts {} back)",
                    count(n, "lesson file", "lesson files"),
                    s.name,
                    if n == 1 { "it" } else { "them" }
                );
            }
            println!("submitted: {}", s.my_submissions.len());
            for f in &s.my_submissions {
                println!("  {} ({}, {})", f.name, size(f.size), ago(f.modified));
            }
        }
    }
    println!("lessons: {}", s.lessons.len());
    for f in &s.lessons {
        println!("  {} ({}, {})", f.name, size(f.size), ago(f.modified));
    }
}

pub fn main() -> Result<()> {
    let cli = Cli::parse();
    cli.global.init_logging();
    run(&cli)
}

/// This laptop's address on the LAN, as a student types it after `--teacher`: the source
/// address the kernel picks towards the mDNS group (a UDP "connect" sends nothing).
/// A classroom access point without a gateway gives no route to the group: then the
/// private ranges' last addresses are tried, which the LAN's own route covers.
fn lan_address() -> Option<std::net::IpAddr> {
    [
        "224.0.0.251:5353",
        "10.255.255.255:9",
        "172.31.255.255:9",
        "192.168.255.255:9",
    ]
    .iter()
    .find_map(|to| {
        let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
        s.connect(to).ok()?;
        let ip = s.local_addr().ok()?.ip();
        (!ip.is_unspecified() && !ip.is_loopback()).then_some(ip)
    })
}

/// A join event for `serve --json`: one object per line, the device ID whole.
fn event_json(ev: &JoinEvent, error: Option<&str>) -> serde_json::Value {
    match ev {
        JoinEvent::Admitted { addr, student } => serde_json::json!({
            "event": "joined", "name": student.name, "address": addr.ip().to_string(),
            "device": student.device_id, "error": error,
        }),
        JoinEvent::Refused {
            addr,
            name,
            refusal,
        } => serde_json::json!({
            "event": "refused", "name": name, "address": addr.ip().to_string(),
            "reason": refusal.to_string(),
        }),
        JoinEvent::Failed { addr, error } => serde_json::json!({
            "event": "failed", "address": addr.ip().to_string(), "reason": error,
        }),
    }
}

/// A flag SIGTERM, SIGINT and SIGHUP set: how the long-running commands (`serve`,
/// `watch`) learn to stop cleanly.
fn stop_flag() -> Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&stop))
            .context("cannot handle signals")?;
    }
    Ok(stop)
}

/// `watch`: a pass every `interval` seconds; Syncthing not (yet) answering is waited for,
/// said once, not fatal (the unit starts with the session, maybe before Syncthing is up).
fn watch(paths: &Paths, gui_port: u16, interval: u64, once: bool, json: bool) -> Result<()> {
    let stop = stop_flag()?;
    let mut last_error = String::new();
    loop {
        let pass = Engine::connect(paths, gui_port).and_then(|e| class::watch_pass(paths, &e));
        match pass {
            Ok(p) => {
                last_error.clear();
                if json && (once || p != class::WatchPass::default()) {
                    println!("{}", serde_json::to_string(&p)?);
                } else if !json {
                    for (class, n) in &p.reverted {
                        println!(
                            "{class}: {} put back",
                            count(*n, "changed lesson file", "changed lesson files")
                        );
                    }
                    for d in &p.limited {
                        println!("classmate {d}: per-device limit set");
                    }
                }
            }
            Err(e) if once => return Err(e.into()),
            Err(e) => {
                let e = e.to_string();
                if e != last_error {
                    eprintln!("koompi-class watch: {e} (trying again every {interval} s)");
                    last_error = e;
                }
            }
        }
        if once {
            return Ok(());
        }
        let until = std::time::Instant::now() + Duration::from_secs(interval);
        while std::time::Instant::now() < until {
            if stop.load(std::sync::atomic::Ordering::Relaxed) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `koompi class ARGS...`: the same command line under `koompi`.
pub fn main_from(prog: &str, args: Vec<std::ffi::OsString>) -> Result<()> {
    let cli = Cli::parse_from(std::iter::once(std::ffi::OsString::from(prog)).chain(args));
    cli.global.init_logging();
    run(&cli)
}

fn run(cli: &Cli) -> Result<()> {
    let paths = paths(cli)?;
    let json = cli.global.json;
    let gui_port = cli
        .gui_port
        .unwrap_or_else(|| gui_port_for_uid(rustix::process::getuid().as_raw()));
    let engine = || Engine::connect(&paths, gui_port);
    // What can be checked without Syncthing is checked first: the class, the code.
    match &cli.command {
        Command::Share { name, .. }
        | Command::Submit { name, .. }
        | Command::Status { name: Some(name) }
        | Command::Collect { name, .. }
        | Command::Close { name }
        | Command::Leave { name }
        | Command::Restore { name }
        | Command::RemoveStudent { name, .. }
        | Command::Serve { name, .. } => {
            class::ClassState::load(&paths, name)?;
        }
        Command::Join { code, .. } => {
            koompi_class::code::JoinCode::parse(code)?;
        }
        Command::Create { .. }
        | Command::Status { name: None }
        | Command::Watch { .. }
        | Command::Engine { .. } => {}
    }
    match &cli.command {
        Command::Create { name } => {
            let c = class::create(&paths, &engine()?, name)?;
            if json {
                return print_json(&c);
            }
            println!("Class {} created in {}", c.name, c.dir.display());
            println!("Join code: {}", c.words);
            println!("       or: {}", c.digits);
            if let Ok(qr) = koompi_class::qr::render_code(&c.code) {
                println!("{qr}");
            }
            println!("Next: koompi-class serve {}", c.name);
        }
        Command::Serve {
            name,
            listen,
            no_announce,
        } => {
            let engine = engine()?;
            let avahi = Avahi::new(Runner::real());
            let mut serving = class::serve(
                &paths,
                &engine,
                name,
                *listen,
                (!no_announce).then_some(&avahi),
            )?;
            let state = class::ClassState::load(&paths, name)?;
            let code = class::teacher_code(&state)?;
            let port = serving.server.local_addr().port();
            let ip = lan_address();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "event": "serving", "class": name, "port": port,
                        "address": ip.map(|i| i.to_string()),
                        "words": code.words(), "digits": code.digits(),
                    })
                );
            } else {
                // Two lines: the code stays whole in 80 columns.
                println!("Class {name}: students join on port {port} with the code");
                println!("  {}  ({})", code.words(), code.digits());
                if let Some(ip) = ip {
                    let at = if port == class::DEFAULT_JOIN_PORT {
                        ip.to_string()
                    } else {
                        std::net::SocketAddr::new(ip, port).to_string()
                    };
                    println!(
                        "Where the class is not found: koompi-class join {name} --teacher {at}"
                    );
                }
            }
            if let Some(e) = &serving.announce_error {
                eprintln!("koompi-class: warning: the class is not announced: {e}");
            }
            // Runs until SIGTERM, SIGINT or SIGHUP; then the announcement is withdrawn and
            // the join server stopped (dropping `serving`).
            let stop = stop_flag()?;
            let mut refreshed = std::time::Instant::now();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // A student removed meanwhile frees their name (remove-student).
                if refreshed.elapsed() >= Duration::from_secs(2) {
                    refreshed = std::time::Instant::now();
                    if let Err(e) = class::refresh_names(&paths, name, &mut serving) {
                        eprintln!("koompi-class: warning: {e}");
                    }
                }
                let ev = match serving.events.recv_timeout(Duration::from_millis(200)) {
                    Ok(ev) => ev,
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                };
                let mut line = ev.to_string();
                let mut err = None;
                if let JoinEvent::Admitted { student, addr } = &ev {
                    if let Err(e) = class::admit(&paths, &engine, name, student, addr.ip()) {
                        err = Some(e.to_string());
                    }
                }
                if let Some(e) = &err {
                    line = format!("{line} (not set up: {e})");
                }
                if json {
                    println!("{}", event_json(&ev, err.as_deref()));
                } else {
                    println!("{line}");
                }
            }
            drop(serving);
            if !json {
                println!("Class {name}: no longer taking students");
            }
        }
        Command::Share { name, files } | Command::Submit { name, files } => {
            let part = if matches!(cli.command, Command::Share { .. }) {
                Part::Teacher
            } else {
                Part::Student
            };
            let done = class::put_files(&paths, &engine()?, name, files, part)?;
            if json {
                return print_json(&done);
            }
            for d in done {
                println!("{}", d.display());
            }
        }
        Command::Status { name: Some(name) } => {
            let s = class::status(&paths, &engine()?, name)?;
            if json {
                return print_json(&s);
            }
            print_status(&s);
        }
        Command::Status { name: None } => {
            let all = class::list(&paths);
            if json {
                let v: Vec<_> = all
                    .iter()
                    .map(|s| serde_json::json!({"name": s.name, "part": s.part}))
                    .collect();
                return print_json(&v);
            }
            if all.is_empty() {
                println!("No class on this laptop.");
            }
            for s in all {
                println!("{} ({})", s.name, s.part.word());
            }
        }
        Command::Collect { name, into } => {
            let stamp = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
            let c = class::collect(&paths, name, into.as_deref(), &stamp)?;
            if json {
                return print_json(&c);
            }
            println!(
                "{} into {}",
                count(c.files.len() as u64, "file", "files"),
                c.dir.display()
            );
        }
        Command::Close { name } => {
            class::close(&paths, &engine()?, name, Part::Teacher)?;
            if !json {
                println!("Class {name} closed; its files stay in ~/Classroom/{name}");
            }
        }
        Command::RemoveStudent { name, student } => {
            let gone = class::remove_student(&paths, &engine()?, name, student)?;
            if json {
                return print_json(&serde_json::json!({
                    "removed": gone.name, "device": gone.device_id
                }));
            }
            println!(
                "{} is no longer in {name}; their submissions stay in ~/Classroom/{name}/Submissions/{}",
                gone.name, gone.name
            );
        }
        Command::Watch { interval, once } => watch(&paths, gui_port, *interval, *once, json)?,
        Command::Engine { syncthing } => {
            use std::os::unix::process::CommandExt;
            let home = paths.syncthing_home();
            koompi_class::syncthing::process::ensure_home(&Runner::real(), syncthing, &home)?;
            let mut config = koompi_class::syncthing::ServeConfig::new(home, gui_port);
            config.program = syncthing.clone();
            let err = koompi_class::syncthing::process::serve_command(&config).exec();
            return Err(err).with_context(|| format!("cannot run {}", syncthing.display()));
        }
        Command::Restore { name } => {
            let n = class::restore(&paths, &engine()?, name)?;
            if json {
                return print_json(&serde_json::json!({ "changed": n }));
            }
            println!(
                "{} put back",
                count(n, "changed lesson file", "changed lesson files")
            );
        }
        Command::Leave { name } => {
            class::close(&paths, &engine()?, name, Part::Student)?;
            if !json {
                println!("Left {name}; its files stay in ~/Classroom/{name}");
            }
        }
        Command::Join {
            name,
            code,
            teacher,
            teacher_sync,
            student,
            browse_secs,
        } => {
            let student_name = match student {
                Some(s) => s.clone(),
                None => std::env::var("USER").context("no --as NAME and USER is not set")?,
            };
            let req = class::JoinRequest {
                class: name.clone(),
                code: code.clone(),
                teacher: teacher.clone(),
                teacher_sync: teacher_sync.clone(),
                student_name,
            };
            let avahi = Avahi::new(Runner::real());
            let engine = engine()?;
            // Progress on stderr (stdout stays the result): the browse and the proof take
            // seconds, the connection up to half a minute when the teacher is not serving yet.
            if !json {
                match (teacher, name) {
                    (Some(t), _) => eprintln!("Joining the class at {t} ..."),
                    (None, Some(n)) => eprintln!(
                        "Looking for class {n} on the network (up to {browse_secs} s) ..."
                    ),
                    (None, None) => {
                        eprintln!("Looking for classes on the network (up to {browse_secs} s) ...")
                    }
                }
            }
            let j = class::join(
                &paths,
                &engine,
                &req,
                Some(&avahi),
                Duration::from_secs(*browse_secs),
            )?;
            if json {
                return print_json(&j);
            }
            println!(
                "Joined {} as {}; lessons arrive in {}/Lessons",
                j.name,
                j.student_name,
                j.dir.display()
            );
        }
    }
    Ok(())
}
