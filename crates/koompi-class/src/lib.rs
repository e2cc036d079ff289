//! The KOOMPI classroom (`koompi class`): a teacher shares lessons with every student's
//! laptop and collects homework, with no internet and no server, over the school's LAN.
//!
//! Syncthing moves the files peer to peer (students pass blocks to each other instead of
//! all pulling from the teacher); DNS-SD (`_koompi._tcp`, as Avahi speaks it) finds the
//! class; a join code, proven and never sent, admits a student. The modules: the Syncthing
//! engine (its process, its REST API, the classroom's settings), discovery, the join code
//! and handshake.

pub mod class;
pub mod code;
pub mod discovery;
pub mod join;
pub mod qr;
pub mod syncthing;
