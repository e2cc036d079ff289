//! Whose home it is, and writing as that user.
//!
//! `--user NAME` looks the user up with `getent passwd NAME` (through the command runner,
//! so NSS users, e.g. from LDAP, are found too) and parses the one line it prints.
//!
//! Root writes into a user's home *as the user*: the calling thread takes the user's
//! effective uid and gid (and only that group) with the thread-level `setresuid`/`setresgid`
//! system calls, which change the thread that does the work and nothing else, and takes
//! root back when done ([`AsUser`] does both). Files and directories are then the user's
//! without any chown, and the kernel checks every access as it would for the user: a
//! directory the user cannot write stays unwritten, a file the user cannot read stays
//! unread. The real and saved uids stay 0 meanwhile, so the user cannot signal or trace the
//! process. koompi-apply-config does its file work on its main thread and starts no other
//! thread around it.

use rustix::process::{Gid, Uid};

use koompi_core::cmd::{Cmd, CmdError, Runner};

/// One user's passwd entry (the fields koompi-apply-config needs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// Why a user cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentError {
    #[error("`{0}` is not a user name")]
    BadName(String),
    #[error("no user `{0}` on this system")]
    Unknown(String),
    #[error("cannot look up user `{name}`: {source}")]
    Lookup {
        name: String,
        #[source]
        source: CmdError,
    },
    #[error("the passwd entry of `{name}` is not usable: {why}")]
    Entry { name: String, why: String },
    #[error("cannot act as user {uid}: {source}")]
    Switch {
        uid: u32,
        #[source]
        source: std::io::Error,
    },
}

/// A user name as useradd accepts it: no `-` first, no `:`, `/`, space or control.
pub fn check_name(name: &str) -> Result<(), IdentError> {
    let ok = !name.is_empty()
        && name.len() <= 256
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| !c.is_control() && !c.is_whitespace() && c != ':' && c != '/');
    if ok {
        Ok(())
    } else {
        Err(IdentError::BadName(name.escape_default().to_string()))
    }
}

/// Parses one line of /etc/passwd (`name:x:uid:gid:gecos:home:shell`).
pub fn parse_passwd(line: &str) -> Result<Passwd, String> {
    let fields: Vec<&str> = line.trim_end_matches('\n').split(':').collect();
    if fields.len() != 7 {
        return Err(format!("{} fields, not 7", fields.len()));
    }
    let num = |s: &str, what: &str| {
        s.parse::<u32>()
            .map_err(|_| format!("{what} `{s}` is not a number"))
    };
    let home = fields[5];
    if !home.starts_with('/') {
        return Err(format!("the home `{home}` is not an absolute path"));
    }
    Ok(Passwd {
        name: fields[0].to_string(),
        uid: num(fields[2], "uid")?,
        gid: num(fields[3], "gid")?,
        home: home.to_string(),
    })
}

/// Looks `name` up with `getent passwd`.
pub fn lookup(runner: &Runner, name: &str) -> Result<Passwd, IdentError> {
    check_name(name)?;
    let out = Cmd::new("getent")
        .args(["passwd", "--", name])
        .run(runner)
        .map_err(|source| match source {
            // getent: 2 = not found.
            CmdError::Failed { code: Some(2), .. } => IdentError::Unknown(name.into()),
            source => IdentError::Lookup {
                name: name.into(),
                source,
            },
        })?;
    let line = out.stdout.lines().next().unwrap_or_default();
    if line.is_empty() {
        return Err(IdentError::Unknown(name.into()));
    }
    let p = parse_passwd(line).map_err(|why| IdentError::Entry {
        name: name.into(),
        why,
    })?;
    if p.name != name {
        return Err(IdentError::Unknown(name.into()));
    }
    Ok(p)
}

/// While alive, the calling thread acts as another user (see the module's words); dropping
/// it takes root back.
#[derive(Debug)]
pub struct AsUser {
    groups: Vec<Gid>,
    gid: Gid,
}

impl AsUser {
    /// Acts as `uid`/`gid` when running as root and `uid` is not root; `None` otherwise
    /// (nothing to change).
    pub fn become_user(uid: u32, gid: u32) -> Result<Option<AsUser>, IdentError> {
        if !rustix::process::geteuid().is_root() || uid == 0 {
            return Ok(None);
        }
        let err = |source: rustix::io::Errno| IdentError::Switch {
            uid,
            source: source.into(),
        };
        let saved = AsUser {
            groups: rustix::process::getgroups().map_err(err)?,
            gid: rustix::process::getegid(),
        };
        rustix::thread::set_thread_groups(&[Gid::from_raw(gid)]).map_err(err)?;
        if let Err(e) = rustix::thread::set_thread_res_gid(None, Gid::from_raw(gid), None) {
            drop(saved);
            return Err(err(e));
        }
        if let Err(e) = rustix::thread::set_thread_res_uid(None, Uid::from_raw(uid), None) {
            drop(saved);
            return Err(err(e));
        }
        Ok(Some(saved))
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        // Root first: only root may set the groups back.
        let uid = rustix::thread::set_thread_res_uid(None, Uid::ROOT, None);
        let gid = rustix::thread::set_thread_res_gid(None, self.gid, None);
        let groups = rustix::thread::set_thread_groups(&self.groups);
        if uid.is_err() || gid.is_err() || groups.is_err() {
            // Going on with another user's identity would do the wrong thing quietly.
            eprintln!("koompi-apply-config: cannot take root's identity back; stopping");
            std::process::abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_lines() {
        let p = parse_passwd("sok:x:1000:1000:Sok Dara,,,:/home/sok:/bin/bash").expect("ok");
        assert_eq!(
            p,
            Passwd {
                name: "sok".into(),
                uid: 1000,
                gid: 1000,
                home: "/home/sok".into()
            }
        );
        assert!(parse_passwd("sok:x:1000:1000::/home/sok").is_err());
        assert!(parse_passwd("sok:x:abc:1000::/home/sok:/bin/sh")
            .expect_err("uid")
            .contains("uid `abc`"));
        assert!(parse_passwd("sok:x:1:1::home:/bin/sh")
            .expect_err("home")
            .contains("not an absolute path"));
    }

    #[test]
    fn refuses_names_that_are_options_or_paths() {
        for bad in ["", "-rf", "a:b", "a/b", "a b", "a\nb"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("sok.dara_1").expect("ok");
        let e = lookup(&Runner::real(), "-x").expect_err("bad");
        assert_eq!(e.to_string(), "`-x` is not a user name");
    }

    #[test]
    fn looks_up_root_and_an_unknown_user() {
        if koompi_testutil::which("getent").is_none() {
            eprintln!("SKIP: no getent");
            return;
        }
        let r = Runner::real();
        let root = lookup(&r, "root").expect("root");
        assert_eq!((root.uid, root.gid), (0, 0));
        let e = lookup(&r, "koompi-no-such-user").expect_err("unknown");
        assert_eq!(
            e.to_string(),
            "no user `koompi-no-such-user` on this system"
        );
    }
}
