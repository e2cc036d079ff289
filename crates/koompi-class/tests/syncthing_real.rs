//! The classroom's Syncthing engine against the real Syncthing (Debian 12: 1.19), on
//! loopback only, no root: a teacher and a student instance in temporary homes on their
//! own ports (sync on tcp://127.0.0.1:PORT, local discovery off, each told the other's
//! address), lessons send-only → receive-only, a student's local edit reverted, homework
//! back to the teacher, an unknown device left pending without a folder, completion at
//! 100 %. Every wait has a deadline; every instance is killed on drop, pass or fail.

use koompi_class::syncthing::classroom::{lessons_id, submissions_id};
use koompi_class::syncthing::{
    apply_class_options, class_device, class_folders, ClassOptions, Instance, Member, RestError,
    Role, ServeConfig,
};
use koompi_core::cmd::Runner;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(90);

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    l.local_addr().expect("its address").port()
}

/// Starts an instance in `dir/name` and gives it the classroom's options, syncing on a
/// loopback port of its own. Returns it with its sync address.
fn start(dir: &Path, name: &str) -> (Instance, String) {
    let runner = Runner::real();
    let inst = Instance::start(&runner, ServeConfig::new(dir.join(name), free_port()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let sync = format!("tcp://127.0.0.1:{}", free_port());
    let c = inst.client();
    let mut opts = c.options().expect("options");
    apply_class_options(
        &mut opts,
        &ClassOptions {
            local_announce: false,
            listen_addresses: Some(vec![sync.clone()]),
        },
    );
    // Tests: retry connections every few seconds, not every minute.
    opts["reconnectionIntervalS"] = serde_json::json!(2);
    c.put_options(&opts)
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (inst, sync)
}

/// Waits for `check`, failing the test with the instances' log tails.
fn wait<T>(what: &str, logs: &[&Instance], mut check: impl FnMut() -> Option<T>) -> T {
    koompi_class::syncthing::rest::wait_until(WAIT, what, || Ok(check())).unwrap_or_else(|e| {
        let tails: Vec<String> = logs
            .iter()
            .map(|i| format!("{}: {}", i.home().display(), i.log_tail()))
            .collect();
        panic!("{e}\n{}", tails.join("\n"))
    })
}

/// A scratch directory: on /dev/shm when there is one. Syncthing refuses to scan or pull
/// when the disk of its home has less than 1 % free (minHomeDiskFree), which a shared build
/// machine's disk can be; a tmpfs has room.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(t) = tempfile::Builder::new()
            .prefix("koompi-st-")
            .tempdir_in(shm)
        {
            return t;
        }
    }
    tempfile::tempdir().expect("tempdir")
}

fn read(p: &Path) -> Option<String> {
    std::fs::read_to_string(p).ok()
}

#[test]
fn lessons_go_out_homework_comes_back_strangers_stay_out() {
    if !koompi_testutil::require_programs("syncthing_real", &["syncthing"]) {
        return;
    }
    let tmp = scratch();
    let (teacher, teacher_addr) = start(tmp.path(), "teacher");
    let (student, student_addr) = start(tmp.path(), "student");

    // The API key is the user's alone: config.xml and the home are private.
    use std::os::unix::fs::PermissionsExt;
    for inst in [&teacher, &student] {
        let mode = |p: &Path| std::fs::metadata(p).expect("stat").permissions().mode();
        assert_eq!(mode(inst.home()) & 0o077, 0, "home open to others");
        assert_eq!(
            mode(&inst.home().join("config.xml")) & 0o077,
            0,
            "config.xml open to others"
        );
    }
    let v = teacher.client().version().expect("version");
    eprintln!("Syncthing {} ({})", v.version, v.long_version);
    assert!(
        matches!(v.major(), Some(1 | 2)),
        "unexpected version {}",
        v.version
    );
    let opts = teacher.client().options().expect("options");
    assert!(
        koompi_class::syncthing::classroom::is_lan_only(&opts),
        "{opts}"
    );
    assert_eq!(opts["localAnnounceEnabled"], false);

    // Each knows the other, with a bandwidth limit per device.
    let t_id = teacher.device_id().to_string();
    let s_id = student.device_id().to_string();
    teacher
        .client()
        .add_device(&class_device(&s_id, "dara", &[student_addr], 20_000))
        .expect("teacher adds the student");
    student
        .client()
        .add_device(&class_device(
            &t_id,
            "teacher",
            std::slice::from_ref(&teacher_addr),
            20_000,
        ))
        .expect("student adds the teacher");
    let dev = teacher.client().devices().expect("devices");
    let d = dev
        .iter()
        .find(|d| d.device_id == s_id)
        .expect("student listed");
    assert_eq!((d.max_send_kbps, d.max_recv_kbps), (20_000, 20_000));

    // The class's folders, as the plan says.
    let class = "math";
    let members_t = [Member {
        device_id: s_id.clone(),
        role: Role::Student {
            name: "dara".into(),
        },
    }];
    let members_s = [Member {
        device_id: t_id.clone(),
        role: Role::Teacher,
    }];
    let t_root = tmp.path().join("t-home/Classroom").join(class);
    let s_root = tmp.path().join("s-home/Classroom").join(class);
    for f in class_folders(class, &t_root, &Role::Teacher, &members_t) {
        std::fs::create_dir_all(&f.path).expect("folder dir");
        teacher.client().add_folder(&f).expect("teacher folder");
    }
    let me = Role::Student {
        name: "dara".into(),
    };
    for f in class_folders(class, &s_root, &me, &members_s) {
        std::fs::create_dir_all(&f.path).expect("folder dir");
        student.client().add_folder(&f).expect("student folder");
    }
    let lessons = lessons_id(class);
    let subs = submissions_id(class, "dara");
    let got = student.client().folder(&lessons).expect("folder back");
    assert_eq!(got.kind, koompi_class::syncthing::FolderType::ReceiveOnly);
    assert!(got.fs_watcher_enabled);

    // A lesson written on the teacher arrives on the student.
    let t_lesson = t_root.join("Lessons/lesson1.txt");
    let s_lesson = s_root.join("Lessons/lesson1.txt");
    std::fs::write(&t_lesson, "Lesson 1: fractions\n").expect("write lesson");
    teacher.client().scan(&lessons).expect("scan");
    wait(
        "the lesson arriving on the student",
        &[&teacher, &student],
        || (read(&s_lesson).as_deref() == Some("Lesson 1: fractions\n")).then_some(()),
    );
    let done = wait(
        "the student's completion of Lessons reaching 100",
        &[&teacher, &student],
        || {
            teacher
                .client()
                .completion(&lessons, &s_id)
                .ok()
                .filter(|c| c.completion >= 100.0)
        },
    );
    assert_eq!(done.need_bytes, 0);

    // Homework goes back to the teacher.
    let s_hw = s_root.join("Submissions/dara/homework.txt");
    let t_hw = t_root.join("Submissions/dara/homework.txt");
    std::fs::write(&s_hw, "1/2 + 1/4 = 3/4\n").expect("write homework");
    student.client().scan(&subs).expect("scan");
    wait(
        "the homework arriving on the teacher",
        &[&teacher, &student],
        || (read(&t_hw).as_deref() == Some("1/2 + 1/4 = 3/4\n")).then_some(()),
    );

    // The student's own edit of a lesson stays local and is reverted.
    std::fs::write(&s_lesson, "scribbled over\n").expect("edit");
    student.client().scan(&lessons).expect("scan");
    wait(
        "the student's edit counted as a local change",
        &[&student],
        || {
            student
                .client()
                .folder_status(&lessons)
                .ok()
                .filter(|s| s.receive_only_changed_files > 0)
        },
    );
    assert_eq!(read(&t_lesson).as_deref(), Some("Lesson 1: fractions\n"));
    student.client().revert(&lessons).expect("revert");
    wait(
        "the lesson restored on the student",
        &[&teacher, &student],
        || (read(&s_lesson).as_deref() == Some("Lesson 1: fractions\n")).then_some(()),
    );
    assert_eq!(read(&t_lesson).as_deref(), Some("Lesson 1: fractions\n"));

    // A stranger that knows the teacher's address knocks: it is pending, gets nothing.
    let (stranger, _) = start(tmp.path(), "stranger");
    let x_id = stranger.device_id().to_string();
    stranger
        .client()
        .add_device(&class_device(&t_id, "teacher", &[teacher_addr], 0))
        .expect("stranger adds the teacher");
    let pending = wait(
        "the stranger pending on the teacher",
        &[&teacher, &stranger],
        || {
            teacher
                .client()
                .pending_devices()
                .ok()
                .filter(|p| p.contains_key(&x_id))
        },
    );
    assert!(
        !pending.contains_key(&s_id),
        "a known device is not pending"
    );
    let lessons_cfg = teacher.client().folder(&lessons).expect("lessons");
    assert!(lessons_cfg.shared_with(&s_id));
    assert!(
        !lessons_cfg.shared_with(&x_id),
        "the stranger was given the lessons"
    );
    let offered = stranger
        .client()
        .pending_folders()
        .expect("pending folders");
    assert!(
        offered.as_object().is_none_or(|m| m.is_empty()),
        "folders were offered to the stranger: {offered}"
    );
    assert!(
        stranger.stop(Duration::from_secs(15)),
        "the stranger did not stop cleanly"
    );
    teacher
        .client()
        .dismiss_pending_device(&x_id)
        .expect("dismiss");
    let pending = teacher.client().pending_devices().expect("pending");
    assert!(!pending.contains_key(&x_id), "still pending after DELETE");

    assert!(
        student.stop(Duration::from_secs(15)),
        "the student did not stop cleanly"
    );
    assert!(
        teacher.stop(Duration::from_secs(15)),
        "the teacher did not stop cleanly"
    );
}

/// The per-device limit holds between two devices on the same network (loopback counts as
/// LAN): with the classroom's `limitBandwidthInLan`, 1.5 MiB at 100 KiB/s takes seconds.
#[test]
fn the_per_device_limit_holds_on_the_lan() {
    if !koompi_testutil::require_programs("syncthing_real", &["syncthing"]) {
        return;
    }
    let tmp = scratch();
    let (teacher, teacher_addr) = start(tmp.path(), "teacher");
    let (student, student_addr) = start(tmp.path(), "student");
    let t_id = teacher.device_id().to_string();
    let s_id = student.device_id().to_string();
    teacher
        .client()
        .add_device(&class_device(&s_id, "dara", &[student_addr], 100))
        .expect("teacher adds the student");
    student
        .client()
        .add_device(&class_device(&t_id, "teacher", &[teacher_addr], 0))
        .expect("student adds the teacher");
    let t_root = tmp.path().join("t");
    let s_root = tmp.path().join("s");
    let t_members = [Member {
        device_id: s_id.clone(),
        role: Role::Student {
            name: "dara".into(),
        },
    }];
    let s_members = [Member {
        device_id: t_id,
        role: Role::Teacher,
    }];
    let t_lessons = class_folders("bw", &t_root, &Role::Teacher, &t_members).remove(0);
    let me = Role::Student {
        name: "dara".into(),
    };
    let s_lessons = class_folders("bw", &s_root, &me, &s_members).remove(0);
    for (inst, f) in [(&teacher, &t_lessons), (&student, &s_lessons)] {
        std::fs::create_dir_all(&f.path).expect("folder dir");
        inst.client().add_folder(f).expect("folder");
    }
    // Wait for the (empty) folder to be in sync, so the clock measures the file alone.
    wait("the empty lessons in sync", &[&teacher, &student], || {
        teacher
            .client()
            .completion(&t_lessons.id, &s_id)
            .ok()
            .filter(|c| c.completion >= 100.0)
    });
    // Incompressible data, so compression cannot beat the limit.
    let mut data = Vec::with_capacity(1536 * 1024);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    while data.len() < 1536 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        data.extend_from_slice(&x.to_le_bytes());
    }
    let t_file = Path::new(&t_lessons.path).join("video.bin");
    let s_file = Path::new(&s_lessons.path).join("video.bin");
    std::fs::write(&t_file, &data).expect("write");
    let started = std::time::Instant::now();
    teacher.client().scan(&t_lessons.id).expect("scan");
    wait(
        "the file arriving on the student",
        &[&teacher, &student],
        || (std::fs::metadata(&s_file).ok()?.len() == data.len() as u64).then_some(()),
    );
    let took = started.elapsed();
    eprintln!("1.5 MiB at 100 KiB/s took {took:?}");
    // 1.5 MiB less the limiter's 512 KiB burst at 100 KiB/s is about 10 s.
    assert!(
        took >= Duration::from_secs(6),
        "the limit did not hold: {took:?}"
    );
}

/// A wrong API key is refused with a one-line error naming the call and the status.
#[test]
fn a_wrong_api_key_is_a_one_line_403() {
    if !koompi_testutil::require_programs("syncthing_real", &["syncthing"]) {
        return;
    }
    let tmp = scratch();
    let inst = Instance::start(
        &Runner::real(),
        ServeConfig::new(tmp.path().join("h"), free_port()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let wrong = koompi_class::syncthing::Client::new(
        inst.client().base().trim_start_matches("http://"),
        "not-the-key",
    );
    let e = wrong.status().expect_err("a wrong key is refused");
    let text = e.to_string();
    assert!(
        text.starts_with("Syncthing GET /rest/system/status: HTTP 403"),
        "{text}"
    );
    assert!(!text.contains('\n'), "{text}");
    // A folder Syncthing refuses: its reason comes back in the error.
    let mut bad = class_folders("x", tmp.path(), &Role::Teacher, &[]).remove(0);
    bad.id = String::new();
    match inst.client().add_folder(&bad) {
        // 1.19 answers 500 "folder has empty ID".
        Err(RestError::Status { status, text, .. }) => {
            assert!(status >= 400 && !text.is_empty(), "{status} {text}")
        }
        other => panic!("a folder without an ID: {other:?}"),
    }
}
