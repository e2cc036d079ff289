//! The KOOMPI OS installer engine.
//!
//! An install is decided before anything is written: [`answers`] reads what the user
//! wants (a config file whose keys equal the command-line flags, checked before anything
//! is touched), [`disks`] picks and vets the target disk from what the machine has, and
//! [`plan`] turns both into an [`plan::Plan`]: pure data, every partition, format, mount,
//! copy, file and command in order, which `--dry-run` prints and the executor runs. All
//! three are pure: no I/O, no secrets (passwords are named by the file that holds them,
//! never carried). [`facts`] is the read-only survey of the machine that feeds them, and
//! [`exec`] runs a plan, journaling each step so that a re-run resumes. [`fleet`] finds a
//! classroom's answer file. [`wizard`] is the interactive installer's questions, a pure state
//! machine that a terminal front end drives.

pub mod answers;
pub mod disks;
pub mod exec;
pub mod facts;
pub mod fleet;
pub mod plan;
pub mod wizard;
