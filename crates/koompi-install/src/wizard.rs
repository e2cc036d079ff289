//! The interactive installer's questions, as a state machine with no I/O.
//!
//! [`Wizard`] walks the fourteen steps of an install at the keyboard, from the welcome to
//! the summary, keeping what was chosen in an [`Answers`] and the password and passphrase
//! being typed in [`Hidden`] strings (memory only; never in `Debug` output). Each key is
//! an [`Input`]; [`Wizard::handle`] says whether to go on, quit, or install
//! ([`Outcome::Confirmed`]). The summary shows the plan in words (the caller's planner
//! makes it, usually `Plan::describe`) and confirms only once the chosen disk's size or
//! model, as shown, has been typed back. A refused value shows as one line
//! ([`View::error`]) and keeps the step. [`Wizard::view`] is what a screen shows, as
//! rows of text: the terminal front end (koompi-cli) only lays them out.
//!
//! Secrets typed here are not files: the answers name them [`TYPED`] so that they pass
//! [`Answers::check_unattended`] and plan, and the values travel beside the answers, for
//! `exec::Secrets::new`.

use std::fmt;
use std::path::PathBuf;

use crate::answers::{
    check_hostname, check_keyboard, check_locale, check_timezone, check_user, Answers, DiskChoice,
    Finish, Source, DEFAULT_SHELL, OFFERED_KEYBOARDS, OFFERED_LOCALES,
};
use crate::disks::{self, human_size, Disk, Refusal};
use crate::facts::Machine;

/// How many steps the installer has.
pub const STEPS: usize = 14;

/// What the answers name as the file of a password or passphrase typed at the keyboard
/// (the plan shows "the password from the keyboard"). The value itself is in
/// [`Outcome::Confirmed`]; there is no such file to read.
pub const TYPED: &str = "the keyboard";

/// The shortest encryption passphrase accepted.
pub const MIN_PASSPHRASE: usize = 8;

/// The longest text a field takes.
const MAX_FIELD: usize = 128;

/// The timezones offered in the list; any other `Area/City` can be typed.
pub const TIMEZONES: &[&str] = &[
    "Asia/Phnom_Penh",
    "Asia/Bangkok",
    "Asia/Ho_Chi_Minh",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Europe/London",
    "Europe/Paris",
    "America/New_York",
    "UTC",
];

/// The steps, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    Welcome,
    Locale,
    Keyboard,
    Timezone,
    Disk,
    Encryption,
    Partitioning,
    Subvolumes,
    BaseSystem,
    Bootloader,
    User,
    Network,
    FactorySnapshot,
    Summary,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; STEPS] = [
        Step::Welcome,
        Step::Locale,
        Step::Keyboard,
        Step::Timezone,
        Step::Disk,
        Step::Encryption,
        Step::Partitioning,
        Step::Subvolumes,
        Step::BaseSystem,
        Step::Bootloader,
        Step::User,
        Step::Network,
        Step::FactorySnapshot,
        Step::Summary,
    ];

    /// 1 to 14.
    pub fn number(self) -> usize {
        self as usize + 1
    }

    /// The step's name in the title bar.
    pub fn name(self) -> &'static str {
        match self {
            Step::Welcome => "Welcome",
            Step::Locale => "Language",
            Step::Keyboard => "Keyboard",
            Step::Timezone => "Timezone",
            Step::Disk => "Disk",
            Step::Encryption => "Encryption",
            Step::Partitioning => "Partitions",
            Step::Subvolumes => "Subvolumes",
            Step::BaseSystem => "Base system",
            Step::Bootloader => "Bootloader",
            Step::User => "User",
            Step::Network => "Network",
            Step::FactorySnapshot => "Factory snapshot",
            Step::Summary => "Summary",
        }
    }

    fn next(self) -> Step {
        Step::ALL[(self as usize + 1).min(STEPS - 1)]
    }

    fn prev(self) -> Step {
        Step::ALL[(self as usize).saturating_sub(1)]
    }
}

/// A key, as the wizard understands it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    Char(char),
    Backspace,
    /// Next (or the next field of a form; on the summary, install).
    Enter,
    /// Back one step.
    Esc,
    Up,
    Down,
    /// The next field; on the summary, what to do when done.
    Tab,
    /// Ctrl-C: leave the installer; nothing has been written.
    Quit,
}

/// A secret being typed or typed: shown as `<hidden>` by `Debug`, overwritten when
/// dropped (as far as safe code can).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Hidden(String);

impl Hidden {
    pub fn new(s: impl Into<String>) -> Hidden {
        Hidden(s.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The secret itself, taken out.
    pub fn into_string(mut self) -> String {
        std::mem::take(&mut self.0)
    }

    fn len(&self) -> usize {
        self.0.chars().count()
    }

    fn clear(&mut self) {
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.fill(0);
        std::hint::black_box(&bytes);
    }
}

impl Drop for Hidden {
    fn drop(&mut self) {
        self.clear();
    }
}

impl fmt::Debug for Hidden {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<hidden>")
    }
}

/// What a key led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Show the (new) screen and read the next key.
    Continue,
    /// The user left; nothing was decided.
    Quit,
    /// Install: the disk was typed back on the summary. The answers pass
    /// [`Answers::check_unattended`]; they name the secrets [`TYPED`], and here they are.
    Confirmed {
        answers: Box<Answers>,
        password: Option<Hidden>,
        passphrase: Option<Hidden>,
    },
}

/// What the wizard needs to know of the machine (see [`Setting::of`]).
#[derive(Debug, Clone, Default)]
pub struct Setting {
    pub disks: Vec<Disk>,
    /// The live medium's label, to keep it out of the choice.
    pub live_label: Option<String>,
    /// Running from the live system (an offline copy is possible).
    pub live: bool,
    /// Booted by UEFI firmware.
    pub uefi: bool,
}

impl Setting {
    pub fn of(machine: &Machine) -> Setting {
        Setting {
            disks: machine.disks.clone(),
            live_label: machine.live_label.clone(),
            live: machine.live.is_some(),
            uefi: machine.uefi,
        }
    }
}

/// One disk on the disk screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRow {
    pub path: String,
    /// [`Disk::describe`].
    pub text: String,
    /// Why it cannot be chosen, in a few words; `None` when it can.
    pub refused: Option<String>,
    /// Its size as shown (`32 GiB`): one way to confirm.
    pub size: String,
    /// Its model: the other way to confirm.
    pub model: Option<String>,
    /// Its partitions, for an install into one of them beside the others.
    pub partitions: Vec<PartRow>,
}

/// A partition of a disk, on the partitioning screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRow {
    pub path: String,
    /// "/dev/sda4, 58 GiB, ntfs".
    pub text: String,
    /// Why KOOMPI OS cannot go into it ([`disks::root_partition_refusal`]).
    pub refused: Option<String>,
}

/// One row (or, wrapped, a few) of a screen's body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Row {
    /// Plain text, wrapped.
    Text(String),
    /// Less important text (dim).
    Note(String),
    Blank,
    /// An item of a list: `current` is the cursor (and the choice), `focused` says the
    /// list has the keyboard; `refused` greys it out with the reason.
    Choice {
        text: String,
        current: bool,
        focused: bool,
        refused: Option<String>,
    },
    /// A text field; a secret's value is shown as `*`s only.
    Field {
        label: String,
        value: String,
        focused: bool,
    },
    /// The plan, scrolled to `scroll`: fills the room left.
    Plan {
        lines: Vec<String>,
        scroll: usize,
    },
}

/// What the screen shows for the current step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    pub step: Step,
    pub rows: Vec<Row>,
    /// A refused value or another problem, as one line.
    pub error: Option<String>,
    /// The keys that work here.
    pub help: &'static str,
}

impl View {
    /// "KOOMPI OS installer — step N of 14: Name".
    pub fn title(&self) -> String {
        format!(
            "KOOMPI OS installer — step {} of {STEPS}: {}",
            self.step.number(),
            self.step.name()
        )
    }
}

const HELP_INFO: &str = "Enter next · Esc back · Ctrl-C quit";
const HELP_LIST: &str = "↑↓ choose · Enter next · Esc back · Ctrl-C quit";
const HELP_FORM: &str = "↑↓/Tab field · Enter next · Esc back · Ctrl-C quit";
const HELP_SUMMARY: &str = "↑↓ scroll · Tab when done · Enter install · Esc back · Ctrl-C quit";

/// Makes the plan's text for the summary from the answers, or says why there is none.
pub type Planner<'p> = Box<dyn Fn(&Answers) -> Result<String, String> + 'p>;

/// The installer's state: the step, what was chosen, what is being typed.
pub struct Wizard<'p> {
    step: Step,
    answers: Answers,
    error: Option<String>,
    /// The focused field of a form (encryption, user, network).
    focus: usize,
    locales: Vec<String>,
    locale_at: usize,
    keyboards: Vec<String>,
    keyboard_at: usize,
    /// An index into [`TIMEZONES`]; its length means "Other".
    zone_at: usize,
    zone_other: String,
    disks: Vec<DiskRow>,
    disk_at: Option<usize>,
    /// The partitioning choice: 0 the whole disk, `i + 1` the chosen disk's partition `i`.
    part_at: usize,
    encrypt: bool,
    passphrase: Hidden,
    passphrase_again: Hidden,
    live: bool,
    uefi: bool,
    source: Source,
    user: String,
    full_name: String,
    password: Hidden,
    password_again: Hidden,
    shell: String,
    hostname: String,
    finish: Finish,
    typed: String,
    plan: Option<Result<String, String>>,
    scroll: usize,
    planner: Planner<'p>,
}

impl fmt::Debug for Wizard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wizard")
            .field("step", &self.step)
            .field("answers", &self.answers)
            .field("error", &self.error)
            .field("focus", &self.focus)
            .field("disk_at", &self.disk_at)
            .field("encrypt", &self.encrypt)
            .field("passphrase", &self.passphrase)
            .field("passphrase_again", &self.passphrase_again)
            .field("user", &self.user)
            .field("password", &self.password)
            .field("password_again", &self.password_again)
            .field("hostname", &self.hostname)
            .field("typed", &self.typed)
            .finish_non_exhaustive()
    }
}

/// `true` for a key that is typed into a field.
fn printable(c: char) -> bool {
    !c.is_control()
}

fn push(s: &mut String, c: char) {
    if printable(c) && s.chars().count() < MAX_FIELD {
        s.push(c);
    }
}

/// Lower case without spaces: `32gib` is `32 GiB`.
fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The few words saying why `disk` cannot be chosen.
fn short_refusal(r: &Refusal) -> String {
    match r {
        Refusal::BootMedium { .. } => "the boot medium",
        Refusal::Mounted { .. } => "in use",
        Refusal::TooSmall { .. } => "too small",
        Refusal::ReadOnly { .. } => "read-only",
        _ => "not a disk",
    }
    .to_string()
}

/// The name of a locale, in English (the console cannot show Khmer script).
pub fn locale_name(l: &str) -> &'static str {
    match l {
        "en_US.UTF-8" => "English (United States)",
        "km_KH.UTF-8" => "Khmer (Cambodia)",
        "en_GB.UTF-8" => "English (United Kingdom)",
        "fr_FR.UTF-8" => "French (France)",
        "th_TH.UTF-8" => "Thai (Thailand)",
        "vi_VN.UTF-8" => "Vietnamese (Vietnam)",
        "zh_CN.UTF-8" => "Chinese (China)",
        _ => "",
    }
}

/// The name of a keyboard layout.
pub fn keyboard_name(k: &str) -> &'static str {
    match k {
        "us" => "English (US)",
        "kh" => "Khmer, with English (US) beside it; Alt+Shift switches",
        "fr" => "French",
        "gb" => "English (UK)",
        "th" => "Thai, with English (US) beside it; Alt+Shift switches",
        "vn" => "Vietnamese",
        _ => "",
    }
}

fn finish_words(f: Finish) -> &'static str {
    match f {
        Finish::Stay => "stay in the live system",
        Finish::Reboot => "reboot into KOOMPI OS",
        Finish::Poweroff => "power off",
    }
}

/// `list` with `first` in it (added at the end when it is not offered), and where.
fn offered(list: &[&str], first: &str) -> (Vec<String>, usize) {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    let at = match v.iter().position(|s| s == first) {
        Some(i) => i,
        None => {
            v.push(first.to_string());
            v.len() - 1
        }
    };
    (v, at)
}

impl<'p> Wizard<'p> {
    /// A wizard on `setting`'s machine, starting from `defaults` (the answer file's and
    /// the flags' values), making the summary's plan with `planner`.
    pub fn new(setting: Setting, defaults: Answers, planner: Planner<'p>) -> Wizard<'p> {
        let (locales, locale_at) = offered(OFFERED_LOCALES, &defaults.locale);
        let (keyboards, keyboard_at) = offered(OFFERED_KEYBOARDS, &defaults.keyboard);
        let (zone_at, zone_other) = match TIMEZONES.iter().position(|z| *z == defaults.timezone) {
            Some(i) => (i, String::new()),
            None => (TIMEZONES.len(), defaults.timezone.clone()),
        };
        let live_label = setting.live_label.as_deref();
        let disks: Vec<DiskRow> = setting
            .disks
            .iter()
            .filter(|d| d.size > 0 && !d.path.starts_with("/dev/zram"))
            .map(|d| DiskRow {
                path: d.path.clone(),
                text: d.describe(),
                refused: disks::vet(d, live_label).err().map(|r| short_refusal(&r)),
                size: human_size(d.size),
                model: d.model.clone().filter(|m| !m.trim().is_empty()),
                partitions: d
                    .partitions
                    .iter()
                    .filter(|p| p.path != d.path)
                    .map(|p| PartRow {
                        path: p.path.clone(),
                        text: format!(
                            "{}, {}, {}",
                            p.path,
                            human_size(p.size),
                            p.fstype.as_deref().unwrap_or("empty")
                        ),
                        refused: disks::root_partition_refusal(p),
                    })
                    .collect(),
            })
            .collect();
        let wanted = defaults
            .disk
            .as_ref()
            .and_then(|c| disks::choose(c, &setting.disks, live_label).ok())
            .or_else(|| {
                disks::choose(&DiskChoice::LargestInternal, &setting.disks, live_label).ok()
            })
            .map(|d| d.path.clone());
        let disk_at = disks
            .iter()
            .position(|r| r.refused.is_none() && Some(&r.path) == wanted.as_ref())
            .or_else(|| disks.iter().position(|r| r.refused.is_none()));
        let source = match (defaults.source, setting.live) {
            (Some(Source::Online), _) | (_, false) => Source::Online,
            _ => Source::Offline,
        };
        Wizard {
            step: Step::Welcome,
            error: None,
            focus: 0,
            locales,
            locale_at,
            keyboards,
            keyboard_at,
            zone_at,
            zone_other,
            part_at: defaults
                .root_partition
                .as_ref()
                .and_then(|r| {
                    let d = disks.get(disk_at?)?;
                    d.partitions.iter().position(|p| &p.path == r)
                })
                .map_or(0, |i| i + 1),
            disks,
            disk_at,
            encrypt: defaults.encrypt,
            passphrase: Hidden::default(),
            passphrase_again: Hidden::default(),
            live: setting.live,
            uefi: setting.uefi,
            source,
            user: defaults.user.clone().unwrap_or_default(),
            full_name: defaults.full_name.clone().unwrap_or_default(),
            password: Hidden::default(),
            password_again: Hidden::default(),
            shell: defaults.shell.clone(),
            hostname: defaults.hostname.clone(),
            finish: defaults.finish,
            typed: String::new(),
            plan: None,
            scroll: 0,
            planner,
            answers: defaults,
        }
    }

    pub fn step(&self) -> Step {
        self.step
    }

    /// The answers chosen so far.
    pub fn answers(&self) -> &Answers {
        &self.answers
    }

    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// What has been typed on the summary to confirm.
    pub fn typed_back(&self) -> &str {
        &self.typed
    }

    /// The disks shown on the disk screen.
    pub fn disks(&self) -> &[DiskRow] {
        &self.disks
    }

    /// The disk under the cursor (the one chosen once past the disk step).
    pub fn chosen_disk(&self) -> Option<&DiskRow> {
        self.disk_at.and_then(|i| self.disks.get(i))
    }

    /// True when `typed` names the chosen disk: its size as shown or its model, in any
    /// case and spacing.
    pub fn confirms(&self, typed: &str) -> bool {
        let t = squash(typed);
        !t.is_empty()
            && self.chosen_disk().is_some_and(|d| {
                t == squash(&d.size) || d.model.as_deref().is_some_and(|m| t == squash(m))
            })
    }

    /// Handles one key.
    pub fn handle(&mut self, input: Input) -> Outcome {
        match input {
            Input::Quit => return Outcome::Quit,
            Input::Esc => {
                if self.step != Step::Welcome {
                    self.go(self.step.prev());
                }
                return Outcome::Continue;
            }
            Input::Char(_) | Input::Backspace => self.error = None,
            _ => {}
        }
        match self.step {
            Step::Partitioning => self.partitioning_key(input),
            Step::Welcome | Step::Subvolumes | Step::Bootloader | Step::FactorySnapshot => {
                if input == Input::Enter {
                    self.advance();
                }
            }
            Step::Locale => {
                let n = self.locales.len();
                if let Some(l) = list_key(input, &mut self.locale_at, n) {
                    let locale = self.locales[l].clone();
                    self.accept(check_locale(&locale), |a| a.locale = locale);
                }
            }
            Step::Keyboard => {
                let n = self.keyboards.len();
                if let Some(k) = list_key(input, &mut self.keyboard_at, n) {
                    let keyboard = self.keyboards[k].clone();
                    self.accept(check_keyboard(&keyboard), |a| a.keyboard = keyboard);
                }
            }
            Step::Timezone => self.timezone_key(input),
            Step::Disk => self.disk_key(input),
            Step::Encryption => self.encryption_key(input),
            Step::BaseSystem => match input {
                Input::Up if self.live => self.source = Source::Offline,
                Input::Down => self.source = Source::Online,
                Input::Enter => {
                    if self.source == Source::Offline && !self.live {
                        self.source = Source::Online;
                    }
                    self.answers.source = Some(self.source);
                    self.advance();
                }
                _ => {}
            },
            Step::User => self.user_key(input),
            Step::Network => match input {
                Input::Char(c) => push(&mut self.hostname, c),
                Input::Backspace => {
                    self.hostname.pop();
                }
                Input::Enter => {
                    let hostname = self.hostname.clone();
                    self.accept(check_hostname(&hostname), |a| a.hostname = hostname);
                }
                _ => {}
            },
            Step::Summary => return self.summary_key(input),
        }
        Outcome::Continue
    }

    fn advance(&mut self) {
        self.go(self.step.next());
    }

    /// A checked answer: set and on to the next step, or its error shown and the step kept.
    fn accept<E: fmt::Display>(&mut self, checked: Result<(), E>, set: impl FnOnce(&mut Answers)) {
        match checked {
            Ok(()) => {
                set(&mut self.answers);
                self.advance();
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Moves to `step`, leaving no error behind; the summary makes its plan afresh.
    fn go(&mut self, step: Step) {
        self.step = step;
        self.error = None;
        self.focus = 0;
        if step == Step::Summary {
            self.typed.clear();
            self.scroll = 0;
            let answers = self.final_answers();
            self.plan = Some((self.planner)(&answers));
        }
    }

    /// The answers as they will be confirmed: the secrets named [`TYPED`].
    fn final_answers(&self) -> Answers {
        let mut a = self.answers.clone();
        a.password_file = a.user.as_ref().map(|_| PathBuf::from(TYPED));
        a.passphrase_file = a.encrypt.then(|| PathBuf::from(TYPED));
        a.finish = self.finish;
        a
    }

    fn timezone_key(&mut self, input: Input) {
        let other = TIMEZONES.len();
        match input {
            Input::Up => self.zone_at = self.zone_at.saturating_sub(1),
            Input::Down => self.zone_at = (self.zone_at + 1).min(other),
            Input::Char(c) => {
                self.zone_at = other;
                push(&mut self.zone_other, c);
            }
            Input::Backspace if self.zone_at == other => {
                self.zone_other.pop();
            }
            Input::Enter => {
                let zone = TIMEZONES
                    .get(self.zone_at)
                    .map_or(self.zone_other.trim().to_string(), |z| z.to_string());
                self.accept(check_timezone(&zone), |a| a.timezone = zone);
            }
            _ => {}
        }
    }

    fn disk_key(&mut self, input: Input) {
        let ok: Vec<usize> = (0..self.disks.len())
            .filter(|i| self.disks[*i].refused.is_none())
            .collect();
        let pos = self.disk_at.and_then(|d| ok.iter().position(|i| *i == d));
        match (input, pos) {
            (Input::Up, Some(p)) if p > 0 => self.disk_at = Some(ok[p - 1]),
            (Input::Down, Some(p)) if p + 1 < ok.len() => self.disk_at = Some(ok[p + 1]),
            (Input::Up | Input::Down, None) => self.disk_at = ok.first().copied(),
            (Input::Enter, Some(_)) => {
                if let Some(d) = self.chosen_disk() {
                    let path = d.path.clone();
                    if self.answers.disk != Some(DiskChoice::Path(path.clone())) {
                        // Another disk: its own partitions, the whole of it first.
                        self.part_at = 0;
                        self.answers.root_partition = None;
                    }
                    self.answers.disk = Some(DiskChoice::Path(path));
                    self.advance();
                }
            }
            (Input::Enter, None) => {
                self.error = Some(if self.disks.is_empty() {
                    "no disk was found on this computer".to_string()
                } else {
                    format!(
                        "none of these disks can take KOOMPI OS (it needs at least {}, \
                         not in use)",
                        human_size(disks::MIN_DISK_BYTES)
                    )
                });
            }
            _ => {}
        }
    }

    /// The rows of the partitioning list that can be chosen: 0 (the whole disk), and
    /// `i + 1` for each partition `i` of the chosen disk that can take KOOMPI OS.
    fn partition_choices(&self) -> Vec<usize> {
        let parts = self.chosen_disk().map_or(&[][..], |d| &d.partitions[..]);
        std::iter::once(0)
            .chain(
                parts
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.refused.is_none())
                    .map(|(i, _)| i + 1),
            )
            .collect()
    }

    fn partitioning_key(&mut self, input: Input) {
        let ok = self.partition_choices();
        let pos = ok.iter().position(|i| *i == self.part_at).unwrap_or(0);
        match input {
            Input::Up if pos > 0 => self.part_at = ok[pos - 1],
            Input::Down if pos + 1 < ok.len() => self.part_at = ok[pos + 1],
            Input::Enter => {
                let chosen = self
                    .chosen_disk()
                    .and_then(|d| d.partitions.get(self.part_at.checked_sub(1)?))
                    .filter(|p| p.refused.is_none())
                    .map(|p| p.path.clone());
                self.part_at = if chosen.is_some() { self.part_at } else { 0 };
                self.answers.root_partition = chosen;
                self.answers.esp_partition = None;
                self.advance();
            }
            _ => {}
        }
    }

    fn encryption_key(&mut self, input: Input) {
        let field = match self.focus {
            1 => Some(&mut self.passphrase),
            2 => Some(&mut self.passphrase_again),
            _ => None,
        };
        match input {
            Input::Char(c) => {
                if let Some(f) = field {
                    push(&mut f.0, c);
                }
            }
            Input::Backspace => {
                if let Some(f) = field {
                    f.0.pop();
                }
            }
            Input::Up => match self.focus {
                0 => self.encrypt = false,
                f => self.focus = f - 1,
            },
            Input::Down => match self.focus {
                0 if !self.encrypt => self.encrypt = true,
                0 | 1 => self.focus += 1,
                _ => {}
            },
            Input::Tab if self.encrypt => self.focus = (self.focus + 1) % 3,
            Input::Enter => match self.focus {
                0 if !self.encrypt => {
                    self.answers.encrypt = false;
                    self.passphrase.clear();
                    self.passphrase_again.clear();
                    self.advance();
                }
                0 | 1 => self.focus += 1,
                _ => {
                    let refused = if self.passphrase.len() < MIN_PASSPHRASE {
                        Some(format!(
                            "the passphrase needs at least {MIN_PASSPHRASE} characters"
                        ))
                    } else if self.passphrase != self.passphrase_again {
                        Some("the two passphrases differ; type it again twice".into())
                    } else {
                        None
                    };
                    if let Some(e) = refused {
                        self.error = Some(e);
                        self.passphrase.clear();
                        self.passphrase_again.clear();
                        self.focus = 1;
                    } else {
                        self.answers.encrypt = true;
                        self.advance();
                    }
                }
            },
            _ => {}
        }
    }

    /// Checks the user screen's field `i`; the error as one line.
    fn check_user_field(&self, i: usize) -> Result<(), String> {
        let other = |a: Answers| a.check().map_err(|e| e.to_string());
        match i {
            0 => check_user(&self.user).map_err(|e| e.to_string()),
            1 => other(Answers {
                full_name: Some(self.full_name.clone()),
                ..Answers::default()
            }),
            2 if self.password.expose().is_empty() => Err(format!(
                "type a password for {}",
                if self.user.is_empty() {
                    "the user"
                } else {
                    &self.user
                }
            )),
            3 if self.password != self.password_again => {
                Err("the two passwords differ; type it again twice".into())
            }
            4 => other(Answers {
                shell: self.shell.clone(),
                ..Answers::default()
            }),
            _ => Ok(()),
        }
    }

    fn user_key(&mut self, input: Input) {
        const FIELDS: usize = 5;
        match input {
            Input::Char(c) => match self.focus {
                0 => push(&mut self.user, c),
                1 => push(&mut self.full_name, c),
                2 => push(&mut self.password.0, c),
                3 => push(&mut self.password_again.0, c),
                _ => push(&mut self.shell, c),
            },
            Input::Backspace => {
                match self.focus {
                    0 => self.user.pop(),
                    1 => self.full_name.pop(),
                    2 => self.password.0.pop(),
                    3 => self.password_again.0.pop(),
                    _ => self.shell.pop(),
                };
            }
            Input::Up => self.focus = self.focus.saturating_sub(1),
            Input::Down => self.focus = (self.focus + 1).min(FIELDS - 1),
            Input::Tab => self.focus = (self.focus + 1) % FIELDS,
            Input::Enter => {
                if let Err(e) = self.check_user_field(self.focus) {
                    self.error = Some(e);
                    return;
                }
                if self.focus + 1 < FIELDS {
                    self.focus += 1;
                    return;
                }
                if let Some((i, e)) =
                    (0..FIELDS).find_map(|i| self.check_user_field(i).err().map(|e| (i, e)))
                {
                    self.error = Some(e);
                    self.focus = i;
                    if i == 3 {
                        self.password_again.clear();
                        self.password.clear();
                        self.focus = 2;
                    }
                    return;
                }
                self.answers.user = Some(self.user.clone());
                self.answers.full_name =
                    Some(self.full_name.trim().to_string()).filter(|n| !n.is_empty());
                self.answers.shell = self.shell.clone();
                self.advance();
            }
            _ => {}
        }
    }

    fn summary_key(&mut self, input: Input) -> Outcome {
        match input {
            Input::Up => self.scroll = self.scroll.saturating_sub(1),
            Input::Down => {
                let lines = match &self.plan {
                    Some(Ok(p)) => p.lines().count(),
                    _ => 0,
                };
                self.scroll = (self.scroll + 1).min(lines.saturating_sub(1));
            }
            Input::Tab => {
                self.finish = match self.finish {
                    Finish::Stay => Finish::Reboot,
                    Finish::Reboot => Finish::Poweroff,
                    Finish::Poweroff => Finish::Stay,
                };
            }
            Input::Char(c) => push(&mut self.typed, c),
            Input::Backspace => {
                self.typed.pop();
            }
            Input::Enter => return self.confirm(),
            _ => {}
        }
        Outcome::Continue
    }

    fn confirm(&mut self) -> Outcome {
        if let Some(Err(e)) = &self.plan {
            self.error = Some(format!("no plan: {e}"));
            return Outcome::Continue;
        }
        let Some(disk) = self.chosen_disk() else {
            self.error = Some("no disk is chosen; go back to the disk step".into());
            return Outcome::Continue;
        };
        if !self.confirms(&self.typed) {
            self.error = Some(format!(
                "to confirm, type {}",
                match &disk.model {
                    Some(m) => format!("{} or {m}", disk.size),
                    None => disk.size.clone(),
                }
            ));
            return Outcome::Continue;
        }
        let answers = self.final_answers();
        if let Err(e) = answers.check_unattended() {
            self.error = Some(e.to_string());
            return Outcome::Continue;
        }
        Outcome::Confirmed {
            password: answers.user.as_ref().map(|_| self.password.clone()),
            passphrase: answers.encrypt.then(|| self.passphrase.clone()),
            answers: Box::new(answers),
        }
    }

    /// What the screen shows now.
    pub fn view(&self) -> View {
        let text = |s: &str| Row::Text(s.to_string());
        let note = |s: &str| Row::Note(s.to_string());
        let choices = |items: Vec<String>, at: usize| -> Vec<Row> {
            items
                .into_iter()
                .enumerate()
                .map(|(i, text)| Row::Choice {
                    text,
                    current: i == at,
                    focused: true,
                    refused: None,
                })
                .collect()
        };
        let stars = |h: &Hidden| "*".repeat(h.len());
        let field = |label: &str, value: String, focused: bool| Row::Field {
            label: label.to_string(),
            value,
            focused,
        };
        let (rows, help) = match self.step {
            Step::Welcome => (
                vec![
                    text("Welcome to KOOMPI OS."),
                    Row::Blank,
                    text(
                        "This installer puts KOOMPI OS on a disk of this computer. It asks \
                         a few questions first; nothing is written to any disk until the \
                         last step, where the whole plan is shown and you confirm it by \
                         typing the disk's size or model.",
                    ),
                    Row::Blank,
                    text(
                        "Press Enter to go to the next step and Esc to go back one. \
                         Ctrl-C leaves the installer at any time before the last step; \
                         nothing is changed then.",
                    ),
                    Row::Blank,
                    note(
                        "For a classroom of laptops, an answer file installs without \
                         questions: see koompi-install --help.",
                    ),
                ],
                HELP_INFO,
            ),
            Step::Locale => {
                let mut rows = vec![text("The language of the system:"), Row::Blank];
                rows.extend(choices(
                    self.locales
                        .iter()
                        .map(|l| format!("{l:<14}{}", locale_name(l)))
                        .collect(),
                    self.locale_at,
                ));
                (rows, HELP_LIST)
            }
            Step::Keyboard => {
                let mut rows = vec![text("The keyboard layout:"), Row::Blank];
                rows.extend(choices(
                    self.keyboards
                        .iter()
                        .map(|k| format!("{k:<6}{}", keyboard_name(k)))
                        .collect(),
                    self.keyboard_at,
                ));
                (rows, HELP_LIST)
            }
            Step::Timezone => {
                let mut rows = vec![
                    text("The timezone (type another Area/City to choose it):"),
                    Row::Blank,
                ];
                rows.extend(choices(
                    TIMEZONES.iter().map(|z| z.to_string()).collect(),
                    self.zone_at,
                ));
                rows.push(Row::Choice {
                    text: format!("Other: {}", self.zone_other),
                    current: self.zone_at == TIMEZONES.len(),
                    focused: true,
                    refused: None,
                });
                (rows, HELP_LIST)
            }
            Step::Disk => {
                let mut rows = vec![
                    text(
                        "The disk to install on. Everything on it will be erased, unless \
                         one of its partitions is chosen next.",
                    ),
                    Row::Blank,
                ];
                if self.disks.is_empty() {
                    rows.push(note("No disk was found on this computer."));
                }
                for (i, d) in self.disks.iter().enumerate() {
                    rows.push(Row::Choice {
                        text: d.text.clone(),
                        current: Some(i) == self.disk_at,
                        focused: true,
                        refused: d.refused.clone(),
                    });
                }
                rows.push(Row::Blank);
                rows.push(note(&format!(
                    "Greyed disks cannot be chosen. KOOMPI OS needs at least {}.",
                    human_size(disks::MIN_DISK_BYTES)
                )));
                (rows, HELP_LIST)
            }
            Step::Encryption => {
                let mut rows = vec![
                    text("Encrypt the system? Without the passphrase nobody can read the disk."),
                    Row::Blank,
                    Row::Choice {
                        text: "No encryption".into(),
                        current: !self.encrypt,
                        focused: self.focus == 0,
                        refused: None,
                    },
                    Row::Choice {
                        text: "Encrypt with LUKS2: the passphrase is typed at every start".into(),
                        current: self.encrypt,
                        focused: self.focus == 0,
                        refused: None,
                    },
                ];
                if self.encrypt {
                    rows.push(Row::Blank);
                    rows.push(field(
                        "Passphrase",
                        stars(&self.passphrase),
                        self.focus == 1,
                    ));
                    rows.push(field(
                        "Again",
                        stars(&self.passphrase_again),
                        self.focus == 2,
                    ));
                    rows.push(Row::Blank);
                    rows.push(note(&format!(
                        "At least {MIN_PASSPHRASE} characters. A lost passphrase cannot \
                         be recovered: write it down."
                    )));
                }
                (rows, if self.encrypt { HELP_FORM } else { HELP_LIST })
            }
            Step::Partitioning => {
                let mut rows = vec![
                    text("How the disk is used:"),
                    Row::Blank,
                    Row::Choice {
                        text: "The whole disk: BIOS boot 1 MiB, EFI 512 MiB, KOOMPI the rest"
                            .into(),
                        current: self.part_at == 0,
                        focused: true,
                        refused: None,
                    },
                    Row::Blank,
                    text("Or one partition, keeping the others (another system beside):"),
                ];
                let parts = self.chosen_disk().map_or(&[][..], |d| &d.partitions[..]);
                if parts.is_empty() {
                    rows.push(note("This disk has no partitions."));
                }
                for (i, p) in parts.iter().enumerate() {
                    rows.push(Row::Choice {
                        text: p.text.clone(),
                        current: self.part_at == i + 1,
                        focused: true,
                        refused: p.refused.clone(),
                    });
                }
                rows.push(Row::Blank);
                rows.push(note(if self.part_at == 0 {
                    "The whole disk is used; the computer starts from it with BIOS or UEFI \
                     firmware alike."
                } else {
                    "Only this partition is erased. KOOMPI's loader joins the disk's EFI \
                     system partition, which is kept as it is."
                }));
                (rows, HELP_LIST)
            }
            Step::Subvolumes => (
                vec![
                    text("The KOOMPI partition holds one Btrfs filesystem with these subvolumes:"),
                    Row::Blank,
                    text("  @            /             the system"),
                    text("  @home        /home         your files"),
                    text("  @snapshots   /.snapshots   the system's snapshots"),
                    text("  @var_log     /var/log      the logs"),
                    Row::Blank,
                    note(
                        "A rollback to a snapshot changes the system (@) only: your files \
                         and the logs stay as they are.",
                    ),
                ],
                HELP_INFO,
            ),
            Step::BaseSystem => {
                let mut rows = vec![text("Where the system comes from:"), Row::Blank];
                rows.push(Row::Choice {
                    text: "Offline: a copy of this live system (no network needed)".into(),
                    current: self.source == Source::Offline,
                    focused: true,
                    refused: (!self.live).then(|| "not running the live system".into()),
                });
                rows.push(Row::Choice {
                    text: "Online: the packages from the KOOMPI repositories".into(),
                    current: self.source == Source::Online,
                    focused: true,
                    refused: None,
                });
                (rows, HELP_LIST)
            }
            Step::Bootloader => (
                vec![
                    text("GRUB starts KOOMPI OS, for BIOS and UEFI firmware alike."),
                    Row::Blank,
                    text(&format!(
                        "This computer started with {} firmware; the disk will start on \
                         either.",
                        if self.uefi { "UEFI" } else { "BIOS" }
                    )),
                    Row::Blank,
                    note(
                        "When starting fails again and again, the boot watchdog starts the \
                         last known-good snapshot instead.",
                    ),
                ],
                HELP_INFO,
            ),
            Step::User => (
                vec![
                    text("The first user, an administrator (sudo):"),
                    Row::Blank,
                    field("Login name", self.user.clone(), self.focus == 0),
                    field("Full name", self.full_name.clone(), self.focus == 1),
                    field("Password", stars(&self.password), self.focus == 2),
                    field("Again", stars(&self.password_again), self.focus == 3),
                    field("Shell", self.shell.clone(), self.focus == 4),
                    Row::Blank,
                    note(&format!(
                        "Login name: a-z first, then a-z, 0-9, _ or -. Full name may be \
                         empty. Shell: {DEFAULT_SHELL} unless you know better."
                    )),
                ],
                HELP_FORM,
            ),
            Step::Network => (
                vec![
                    text("The computer's name on the network:"),
                    Row::Blank,
                    field("Hostname", self.hostname.clone(), true),
                    Row::Blank,
                    note(
                        "Letters a-z, digits and -. NetworkManager manages wired and Wi-Fi \
                         connections; connect from the desktop after the first start.",
                    ),
                ],
                HELP_FORM,
            ),
            Step::FactorySnapshot => (
                vec![
                    text(
                        "When everything is in place, the installer takes a snapshot of the \
                         fresh system: factory-YYYYMMDD.",
                    ),
                    Row::Blank,
                    text(
                        "It is kept forever and marked as known good: whatever happens \
                         later, `koompi-snapshot rollback factory-*` brings the system back \
                         to this state (your files in /home stay).",
                    ),
                ],
                HELP_INFO,
            ),
            Step::Summary => (self.summary_rows(), HELP_SUMMARY),
        };
        View {
            step: self.step,
            rows,
            error: self.error.clone(),
            help,
        }
    }

    fn summary_rows(&self) -> Vec<Row> {
        let a = self.final_answers();
        let mut rows = vec![
            Row::Text(format!(
                "Language {} · keyboard {} · timezone {}",
                a.locale, a.keyboard, a.timezone
            )),
            Row::Text(format!(
                "User {}{} · hostname {}",
                a.user.as_deref().unwrap_or("-"),
                a.full_name
                    .as_deref()
                    .map_or(String::new(), |n| format!(" ({n})")),
                a.hostname
            )),
        ];
        match &self.plan {
            Some(Ok(p)) => rows.push(Row::Plan {
                lines: p.lines().map(String::from).collect(),
                scroll: self.scroll,
            }),
            Some(Err(e)) => rows.push(Row::Text(format!("No plan: {e}"))),
            None => {}
        }
        rows.push(Row::Text(format!(
            "When done: {} (Tab changes)",
            finish_words(self.finish)
        )));
        if let Some(d) = self.chosen_disk() {
            rows.push(Row::Text(format!(
                "To erase {} and install, type {}:",
                d.path,
                confirm_words(d)
            )));
        }
        rows.push(Row::Field {
            label: "Confirm".into(),
            value: self.typed.clone(),
            focused: true,
        });
        rows
    }
}

/// "its size (32 GiB) or its model (QEMU HARDDISK)".
fn confirm_words(d: &DiskRow) -> String {
    match &d.model {
        Some(m) => format!("its size ({}) or its model ({m})", d.size),
        None => format!("its size ({})", d.size),
    }
}

/// Up/Down move `at` within `n` items; Enter gives the choice.
fn list_key(input: Input, at: &mut usize, n: usize) -> Option<usize> {
    match input {
        Input::Up => *at = at.saturating_sub(1),
        Input::Down => *at = (*at + 1).min(n.saturating_sub(1)),
        Input::Enter if *at < n => return Some(*at),
        _ => {}
    }
    None
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const GIB: u64 = 1024 * 1024 * 1024;

    fn disk(path: &str, size: u64, model: Option<&str>) -> Disk {
        Disk {
            path: path.into(),
            size,
            kind: "disk".into(),
            model: model.map(String::from),
            removable: false,
            transport: None,
            read_only: false,
            mountpoints: vec![],
            labels: vec![],
            partitions: vec![],
        }
    }

    /// A laptop booted from the KOOMPI stick: its SSD, the stick, a small card, swap.
    pub(crate) fn setting() -> Setting {
        let mut stick = disk("/dev/sda", 8 * GIB, Some("Cruzer Blade"));
        stick.removable = true;
        stick.transport = Some("usb".into());
        stick.labels = vec!["KOOMPI_202612".into()];
        let mut zram = disk("/dev/zram0", GIB, None);
        zram.mountpoints = vec!["[SWAP]".into()];
        Setting {
            disks: vec![
                stick,
                disk("/dev/nvme0n1", 256 * GIB, Some("SAMSUNG MZVLB256")),
                disk("/dev/mmcblk0", 4 * GIB, None),
                disk("/dev/vdb", 32 * GIB, None),
                zram,
            ],
            live_label: Some("KOOMPI_202612".into()),
            live: true,
            uefi: true,
        }
    }

    fn planner() -> Planner<'static> {
        Box::new(|a: &Answers| {
            Ok(format!(
                "Install KOOMPI OS on {} for {}.\n 1/2 Erase\n 2/2 Copy\n",
                a.disk.as_ref().map_or("?".into(), |d| d.to_string()),
                a.user.as_deref().unwrap_or("-")
            ))
        })
    }

    fn wizard() -> Wizard<'static> {
        Wizard::new(setting(), Answers::default(), planner())
    }

    fn keys(w: &mut Wizard, inputs: &[Input]) -> Outcome {
        let mut last = Outcome::Continue;
        for i in inputs {
            last = w.handle(*i);
            if last != Outcome::Continue {
                break;
            }
        }
        last
    }

    fn text(s: &str) -> Vec<Input> {
        s.chars().map(Input::Char).collect()
    }

    use Input::{Backspace, Down, Enter, Esc, Tab, Up};

    /// From the welcome to the summary with the defaults and user `dara`.
    fn to_summary(w: &mut Wizard) {
        let mut k = vec![
            Enter, Enter, Enter, Enter, Enter, Enter, Enter, Enter, Enter, Enter,
        ];
        k.extend(text("dara"));
        k.extend([Enter, Enter]);
        k.extend(text("pw"));
        k.push(Enter);
        k.extend(text("pw"));
        k.extend([Enter, Enter, Enter, Enter]);
        assert_eq!(keys(w, &k), Outcome::Continue);
        assert_eq!(w.step(), Step::Summary, "{:?}", w.error());
    }

    #[test]
    fn steps_are_fourteen_in_order() {
        assert_eq!(Step::ALL.len(), STEPS);
        for (i, s) in Step::ALL.iter().enumerate() {
            assert_eq!(s.number(), i + 1);
        }
        assert_eq!(Step::Summary.next(), Step::Summary);
        assert_eq!(Step::Welcome.prev(), Step::Welcome);
    }

    #[test]
    fn the_defaults_lead_to_the_largest_internal_disk() {
        let w = wizard();
        assert_eq!(w.chosen_disk().expect("a disk").path, "/dev/nvme0n1");
        let refused: Vec<_> = w
            .disks()
            .iter()
            .map(|d| (d.path.as_str(), d.refused.as_deref()))
            .collect();
        assert_eq!(
            refused,
            [
                ("/dev/sda", Some("the boot medium")),
                ("/dev/nvme0n1", None),
                ("/dev/mmcblk0", Some("too small")),
                ("/dev/vdb", None),
            ]
        );
    }

    #[test]
    fn a_whole_install_is_confirmed_by_the_size() {
        let mut w = wizard();
        to_summary(&mut w);
        assert_eq!(keys(&mut w, &[Enter]), Outcome::Continue);
        assert!(w.error().expect("refused").contains("256 GiB"));
        assert_eq!(keys(&mut w, &text("128 GiB")), Outcome::Continue);
        assert_eq!(keys(&mut w, &[Enter]), Outcome::Continue);
        for _ in 0..7 {
            w.handle(Backspace);
        }
        let out = keys(&mut w, &[Tab, Tab]);
        assert_eq!(out, Outcome::Continue);
        let out = keys(&mut w, &[Input::Char('2'), Input::Char('5')]);
        assert_eq!(out, Outcome::Continue);
        let out = keys(&mut w, &text("6gib"));
        assert_eq!(out, Outcome::Continue);
        match w.handle(Enter) {
            Outcome::Confirmed {
                answers,
                password,
                passphrase,
            } => {
                assert_eq!(answers.disk, Some(DiskChoice::Path("/dev/nvme0n1".into())));
                assert_eq!(answers.user.as_deref(), Some("dara"));
                assert_eq!(answers.finish, Finish::Poweroff);
                assert_eq!(answers.source, Some(Source::Offline));
                assert_eq!(answers.password_file, Some(PathBuf::from(TYPED)));
                assert_eq!(answers.passphrase_file, None);
                assert_eq!(password.expect("password").expose(), "pw");
                assert!(passphrase.is_none());
                answers.check_unattended().expect("complete");
            }
            other => panic!("not confirmed: {other:?}"),
        }
    }

    #[test]
    fn the_model_confirms_too_and_esc_goes_back() {
        let mut w = wizard();
        to_summary(&mut w);
        assert!(w.confirms("samsung mzvlb256"));
        assert!(!w.confirms(""));
        assert!(!w.confirms("/dev/nvme0n1"));
        w.handle(Esc);
        assert_eq!(w.step(), Step::FactorySnapshot);
        w.handle(Enter);
        assert_eq!(
            w.typed_back(),
            "",
            "the typed text does not survive going back"
        );
    }

    #[test]
    fn a_disk_without_a_model_is_confirmed_by_its_size_only() {
        let mut w = wizard();
        keys(&mut w, &[Enter, Enter, Enter, Enter, Down, Enter]);
        assert_eq!(w.chosen_disk().expect("disk").path, "/dev/vdb");
        assert!(w.confirms("32 GiB"));
        assert!(!w.confirms("SAMSUNG MZVLB256"));
    }

    /// A laptop with Windows on the NVMe disk: its ESP and a small partition cannot take
    /// KOOMPI OS, the big one can; choosing it sets `root-partition`, and going back to
    /// the whole disk clears it.
    #[test]
    fn a_partition_beside_another_system_can_be_chosen() {
        let part = |path: &str, parttype: &str, fstype: &str, size| disks::Part {
            path: path.into(),
            parttype: Some(parttype.into()),
            fstype: Some(fstype.into()),
            size,
            ..disks::Part::default()
        };
        let mut s = setting();
        s.disks[1].partitions = vec![
            part(
                "/dev/nvme0n1p1",
                "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",
                "vfat",
                GIB / 10,
            ),
            part(
                "/dev/nvme0n1p2",
                "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7",
                "ntfs",
                4 * GIB,
            ),
            part(
                "/dev/nvme0n1p3",
                "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7",
                "ntfs",
                100 * GIB,
            ),
        ];
        let mut w = Wizard::new(s, Answers::default(), planner());
        keys(&mut w, &[Enter, Enter, Enter, Enter]);
        assert_eq!(w.chosen_disk().expect("disk").path, "/dev/nvme0n1");
        keys(&mut w, &[Enter, Enter]);
        assert_eq!(w.step(), Step::Partitioning);
        let refused: Vec<Option<&str>> = w
            .chosen_disk()
            .expect("disk")
            .partitions
            .iter()
            .map(|p| p.refused.as_deref())
            .collect();
        assert_eq!(
            refused,
            [
                Some("EFI system partition"),
                Some("too small, needs 7.5 GiB"),
                None
            ]
        );
        // Down skips the refused ones.
        keys(&mut w, &[Down, Down, Down, Enter]);
        assert_eq!(
            w.answers().root_partition.as_deref(),
            Some("/dev/nvme0n1p3")
        );
        w.handle(Esc);
        keys(&mut w, &[Up, Up, Enter]);
        assert_eq!(w.answers().root_partition, None);
    }

    #[test]
    fn refused_disks_are_skipped() {
        let mut w = wizard();
        keys(&mut w, &[Enter, Enter, Enter, Enter]);
        assert_eq!(w.step(), Step::Disk);
        keys(&mut w, &[Up, Up, Up]);
        assert_eq!(w.chosen_disk().expect("disk").path, "/dev/nvme0n1");
        keys(&mut w, &[Down, Down, Down]);
        assert_eq!(w.chosen_disk().expect("disk").path, "/dev/vdb");
        // No disk fits: the step stays, with one line.
        let mut s = setting();
        s.disks.retain(|d| d.path == "/dev/sda");
        let mut w = Wizard::new(s, Answers::default(), planner());
        keys(&mut w, &[Enter, Enter, Enter, Enter, Enter]);
        assert_eq!(w.step(), Step::Disk);
        assert!(w.error().expect("error").starts_with("none of these disks"));
    }

    #[test]
    fn the_passphrase_is_typed_twice_and_hidden() {
        let mut w = wizard();
        keys(&mut w, &[Enter, Enter, Enter, Enter, Enter]);
        assert_eq!(w.step(), Step::Encryption);
        keys(&mut w, &[Down, Enter]);
        keys(&mut w, &text("short"));
        keys(&mut w, &[Enter]);
        keys(&mut w, &text("short"));
        keys(&mut w, &[Enter]);
        assert_eq!(w.step(), Step::Encryption);
        assert!(w.error().expect("short").contains("at least 8"));
        keys(&mut w, &text("correct horse"));
        keys(&mut w, &[Enter]);
        keys(&mut w, &text("correct h0rse"));
        keys(&mut w, &[Enter]);
        assert!(w.error().expect("differ").contains("differ"));
        keys(&mut w, &text("correct horse"));
        keys(&mut w, &[Tab]);
        keys(&mut w, &text("correct horse"));
        let debug = format!("{w:?} {:?}", w.view());
        assert!(!debug.contains("correct"), "{debug}");
        assert!(debug.contains("*************"), "{debug}");
        keys(&mut w, &[Enter]);
        assert_eq!(w.step(), Step::Partitioning);
        assert!(w.answers().encrypt);
        // Through to the summary: the passphrase comes out with the answers.
        let mut k = vec![Enter, Enter, Enter, Enter];
        k.extend(text("dara"));
        k.extend([Enter, Enter]);
        k.extend(text("pw"));
        k.push(Enter);
        k.extend(text("pw"));
        k.extend([Enter, Enter, Enter, Enter]);
        keys(&mut w, &k);
        assert_eq!(w.step(), Step::Summary);
        keys(&mut w, &text("256 GiB"));
        match w.handle(Enter) {
            Outcome::Confirmed {
                answers,
                passphrase,
                ..
            } => {
                assert!(answers.encrypt);
                assert_eq!(answers.passphrase_file, Some(PathBuf::from(TYPED)));
                let p = passphrase.expect("passphrase");
                assert_eq!(format!("{p:?}"), "<hidden>");
                assert_eq!(p.into_string(), "correct horse");
            }
            other => panic!("not confirmed: {other:?}"),
        }
    }

    #[test]
    fn bad_values_keep_the_step_with_one_line() {
        let mut w = wizard();
        keys(&mut w, &[Enter, Enter, Enter]);
        assert_eq!(w.step(), Step::Timezone);
        keys(&mut w, &text("../../etc/passwd"));
        keys(&mut w, &[Enter]);
        assert_eq!(w.step(), Step::Timezone);
        assert!(w.error().expect("zone").starts_with("`timezone`"));
        for _ in 0..20 {
            w.handle(Backspace);
        }
        keys(&mut w, &text("America/Argentina/Buenos_Aires"));
        keys(&mut w, &[Enter]);
        assert_eq!(w.answers().timezone, "America/Argentina/Buenos_Aires");
        keys(&mut w, &[Enter, Enter, Enter, Enter, Enter, Enter, Enter]);
        assert_eq!(w.step(), Step::User);
        keys(&mut w, &text("root"));
        keys(&mut w, &[Enter]);
        assert!(w.error().expect("root").contains("belongs to the system"));
        keys(&mut w, &[Backspace; 4]);
        keys(&mut w, &text("dara"));
        keys(&mut w, &[Enter, Enter, Enter]);
        assert!(w
            .error()
            .expect("no password")
            .starts_with("type a password"));
        keys(&mut w, &text("a"));
        keys(&mut w, &[Enter]);
        keys(&mut w, &text("b"));
        keys(&mut w, &[Enter]);
        assert!(w.error().expect("differ").contains("differ"));
        keys(&mut w, &[Down]);
        keys(&mut w, &[Backspace; 9]);
        keys(&mut w, &text("bash"));
        keys(&mut w, &[Enter]);
        assert!(w.error().expect("shell").starts_with("`shell`"));
        keys(&mut w, &[Backspace; 4]);
        keys(&mut w, &text("/bin/zsh"));
        // The last Enter checks every field: the passwords still differ.
        keys(&mut w, &[Enter]);
        assert_eq!(w.step(), Step::User);
        assert!(w.error().expect("differ").contains("differ"));
        keys(&mut w, &text("pw"));
        keys(&mut w, &[Enter]);
        keys(&mut w, &text("pw"));
        keys(&mut w, &[Enter, Enter]);
        assert_eq!(w.step(), Step::Network, "{:?}", w.error());
        assert_eq!(w.answers().shell, "/bin/zsh");
        keys(&mut w, &[Backspace; 6]);
        keys(&mut w, &text("Lab 7"));
        keys(&mut w, &[Enter]);
        assert_eq!(w.step(), Step::Network);
        let e = w.view().error.expect("hostname");
        assert!(e.starts_with("`hostname`: `Lab 7`"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn flags_fill_the_screens_in() {
        let defaults = Answers {
            locale: "km_KH.UTF-8".into(),
            keyboard: "kh".into(),
            timezone: "Asia/Tokyo".into(),
            disk: Some(DiskChoice::Path("/dev/vdb".into())),
            user: Some("sok".into()),
            hostname: "lab-07".into(),
            source: Some(Source::Online),
            ..Answers::default()
        };
        let mut w = Wizard::new(setting(), defaults, planner());
        assert_eq!(w.chosen_disk().expect("disk").path, "/dev/vdb");
        keys(&mut w, &[Enter; 5]);
        let a = w.answers();
        assert_eq!(
            (a.locale.as_str(), a.keyboard.as_str(), a.timezone.as_str()),
            ("km_KH.UTF-8", "kh", "Asia/Tokyo")
        );
        keys(&mut w, &[Enter; 5]);
        assert_eq!(w.answers().source, Some(Source::Online));
        assert_eq!(
            w.view().rows[2],
            Row::Field {
                label: "Login name".into(),
                value: "sok".into(),
                focused: true
            }
        );
    }

    #[test]
    fn offline_needs_the_live_system() {
        let mut s = setting();
        s.live = false;
        let mut w = Wizard::new(s, Answers::default(), planner());
        keys(&mut w, &[Enter; 8]);
        assert_eq!(w.step(), Step::BaseSystem);
        keys(&mut w, &[Up, Enter]);
        assert_eq!(w.answers().source, Some(Source::Online));
    }

    #[test]
    fn no_plan_no_install() {
        let mut w = Wizard::new(
            setting(),
            Answers::default(),
            Box::new(|_: &Answers| Err("`source`: offline needs the live system".into())),
        );
        to_summary(&mut w);
        keys(&mut w, &text("256 GiB"));
        assert_eq!(w.handle(Enter), Outcome::Continue);
        assert!(w.error().expect("no plan").starts_with("no plan: `source`"));
    }

    #[test]
    fn ctrl_c_quits_anywhere() {
        let mut w = wizard();
        assert_eq!(w.handle(Input::Quit), Outcome::Quit);
        to_summary(&mut w);
        assert_eq!(w.handle(Input::Quit), Outcome::Quit);
    }

    fn input() -> impl Strategy<Value = Vec<Input>> {
        let key = prop_oneof![
            8 => Just(vec![Enter]),
            3 => Just(vec![Down]),
            3 => Just(vec![Up]),
            2 => Just(vec![Tab]),
            2 => Just(vec![Esc]),
            2 => Just(vec![Backspace]),
            1 => Just(vec![Input::Quit]),
            3 => any::<char>().prop_map(|c| vec![Input::Char(c)]),
            4 => prop::sample::select(vec![
                "dara", "root", "pw", "correct horse", "lab-07", "Lab 7", "256 GiB", "32 GiB",
                "32gib", "SAMSUNG MZVLB256", "8 GiB", "/bin/zsh", "Asia/Tokyo", "../x", ":",
            ])
            .prop_map(text),
        ];
        prop::collection::vec(key, 0..200).prop_map(|v| v.concat())
    }

    /// The happy path with a few keys changed, added or left out.
    fn perturbed() -> impl Strategy<Value = Vec<Input>> {
        let mut path = vec![Enter; 10];
        path.extend(text("dara"));
        path.extend([Enter, Enter]);
        path.extend(text("pw"));
        path.push(Enter);
        path.extend(text("pw"));
        path.extend([Enter, Enter, Enter, Enter]);
        path.extend(text("256 GiB"));
        path.push(Enter);
        let n = path.len();
        let edit = (
            0..n,
            prop_oneof![
                Just(None),
                Just(Some(Down)),
                Just(Some(Esc)),
                Just(Some(Tab)),
                Just(Some(Enter)),
                Just(Some(Backspace)),
                any::<char>().prop_map(|c| Some(Input::Char(c))),
            ],
        );
        prop::collection::vec(edit, 0..4).prop_map(move |edits| {
            let mut p = path.clone();
            for (at, k) in edits {
                let at = at.min(p.len().saturating_sub(1));
                match k {
                    None if !p.is_empty() => {
                        p.remove(at);
                    }
                    None => {}
                    Some(k) => p.insert(at, k),
                }
            }
            p
        })
    }

    /// Runs `inputs`; checks that nothing panics and that a confirmation is only ever
    /// given for the typed-back disk, with answers that are complete and valid.
    /// [`setting`] with partitions on /dev/vdb: an ESP, one that can take KOOMPI OS, one
    /// too small.
    fn wizard_with_partitions() -> Wizard<'static> {
        let part = |path: &str, parttype: &str, size| disks::Part {
            path: path.into(),
            parttype: Some(parttype.into()),
            fstype: Some("ext4".into()),
            size,
            ..disks::Part::default()
        };
        let mut s = setting();
        s.disks[3].partitions = vec![
            part("/dev/vdb1", "c12a7328-f81f-11d2-ba4b-00a0c93ec93b", GIB / 2),
            part(
                "/dev/vdb2",
                "0fc63daf-8483-4772-8e79-3d69d8477de4",
                20 * GIB,
            ),
            part("/dev/vdb3", "0fc63daf-8483-4772-8e79-3d69d8477de4", GIB),
        ];
        Wizard::new(s, Answers::default(), planner())
    }

    fn check_run(inputs: Vec<Input>) -> Result<bool, TestCaseError> {
        let mut w = wizard_with_partitions();
        for i in inputs {
            let typed = w.typed_back().to_string();
            let step = w.step();
            let _ = w.view();
            match w.handle(i) {
                Outcome::Continue => {}
                Outcome::Quit => return Ok(false),
                Outcome::Confirmed {
                    answers,
                    password,
                    passphrase,
                } => {
                    prop_assert_eq!(step, Step::Summary);
                    prop_assert_eq!(i, Enter);
                    let disk = w.chosen_disk().expect("a chosen disk").clone();
                    prop_assert!(disk.refused.is_none());
                    prop_assert!(
                        squash(&typed) == squash(&disk.size)
                            || disk.model.as_deref().map(squash) == Some(squash(&typed)),
                        "confirmed with {:?} for {:?}",
                        typed,
                        disk
                    );
                    // An install into a partition: one of the chosen disk's that can take it.
                    if let Some(root) = &answers.root_partition {
                        prop_assert!(
                            disk.partitions
                                .iter()
                                .any(|p| &p.path == root && p.refused.is_none()),
                            "{} is not a free partition of {}",
                            root,
                            disk.path
                        );
                    }
                    prop_assert_eq!(answers.disk.clone(), Some(DiskChoice::Path(disk.path)));
                    prop_assert!(answers.check().is_ok());
                    prop_assert!(answers.check_unattended().is_ok());
                    prop_assert!(password.is_some_and(|p| !p.expose().is_empty()));
                    prop_assert_eq!(answers.encrypt, passphrase.is_some());
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    proptest! {
        #[test]
        fn any_keys_never_panic_nor_confirm_without_the_disk(inputs in input()) {
            check_run(inputs)?;
        }

        #[test]
        fn a_confirmed_install_is_always_complete(inputs in perturbed()) {
            check_run(inputs)?;
        }
    }

    #[test]
    fn the_unperturbed_path_confirms() {
        let mut path = vec![Enter; 10];
        path.extend(text("dara"));
        path.extend([Enter, Enter]);
        path.extend(text("pw"));
        path.push(Enter);
        path.extend(text("pw"));
        path.extend([Enter, Enter, Enter, Enter]);
        path.extend(text("256 GiB"));
        path.push(Enter);
        assert!(matches!(check_run(path), Ok(true)));
    }

    /// The property above means something only if perturbed paths do confirm, often.
    #[test]
    fn perturbed_paths_often_confirm() {
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut confirmed = 0;
        for _ in 0..200 {
            let keys = perturbed().new_tree(&mut runner).expect("keys").current();
            if matches!(check_run(keys), Ok(true)) {
                confirmed += 1;
            }
        }
        assert!(confirmed >= 40, "only {confirmed} of 200 confirmed");
    }
}
