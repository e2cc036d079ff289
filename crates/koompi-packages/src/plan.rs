//! Where each target of `koompi install` comes from: the pure decision.
//!
//! Official repositories first, then the AUR, Flathub for application IDs or when asked
//! (DESIGN.md). The lookups (pacman's sync databases, the AUR's RPC) are done by the
//! caller; this module only decides, so the rule is tested exhaustively without a network.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::name::Target;

/// Which sources a run may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Only {
    /// Repositories, then the AUR; Flathub for application IDs.
    #[default]
    Any,
    /// Official repositories only (`--repo`).
    Repo,
    /// The AUR only (`--aur`).
    Aur,
    /// Flathub only (`--flatpak`).
    Flatpak,
}

/// Why a target cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MissingReason {
    /// Found nowhere that was searched.
    NotFound,
    /// Not in the repositories, and the AUR could not be asked.
    AurUnreachable,
}

/// A target that cannot be installed, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Missing {
    pub name: String,
    pub reason: MissingReason,
}

/// The targets sorted by source, each in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct InstallPlan {
    pub repo: Vec<String>,
    pub aur: Vec<String>,
    pub flatpak: Vec<String>,
    pub missing: Vec<Missing>,
}

impl InstallPlan {
    /// Whether the AUR has to be used (and so paru, as a normal user).
    pub fn needs_aur(&self) -> bool {
        !self.aur.is_empty()
    }
}

/// What the lookups found.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Names the sync databases have (as packages or groups).
    pub repo: BTreeSet<String>,
    /// Names the AUR has; `None` when the AUR could not be asked.
    pub aur: Option<BTreeSet<String>>,
}

/// Decides the source of every target.
pub fn plan(targets: &[Target], only: Only, found: &Found) -> InstallPlan {
    let mut p = InstallPlan::default();
    for t in targets {
        let (qualified, name) = match t {
            Target::FlatpakApp { id } => {
                if only == Only::Repo || only == Only::Aur {
                    p.missing.push(Missing {
                        name: id.clone(),
                        reason: MissingReason::NotFound,
                    });
                } else {
                    p.flatpak.push(id.clone());
                }
                continue;
            }
            Target::Package { repo, name } => (repo.is_some(), name),
        };
        let shown = t.to_string();
        if only == Only::Flatpak {
            p.flatpak.push(shown);
            continue;
        }
        let in_repo = qualified || found.repo.contains(name);
        if in_repo && only != Only::Aur {
            p.repo.push(shown);
            continue;
        }
        if only == Only::Repo || qualified {
            p.missing.push(Missing {
                name: shown,
                reason: MissingReason::NotFound,
            });
            continue;
        }
        match &found.aur {
            Some(aur) if aur.contains(name) => p.aur.push(shown),
            Some(_) => p.missing.push(Missing {
                name: shown,
                reason: MissingReason::NotFound,
            }),
            None => p.missing.push(Missing {
                name: shown,
                reason: MissingReason::AurUnreachable,
            }),
        }
    }
    p
}

/// The package names (not Flatpak IDs, not repo-qualified) the lookups need to check.
pub fn names_to_look_up(targets: &[Target]) -> Vec<String> {
    targets
        .iter()
        .filter_map(|t| match t {
            Target::Package { repo: None, name } => Some(name.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::name::classify;
    use proptest::prelude::*;

    fn targets(names: &[&str]) -> Vec<Target> {
        names.iter().map(|n| classify(n).unwrap()).collect()
    }

    fn found(repo: &[&str], aur: Option<&[&str]>) -> Found {
        Found {
            repo: repo.iter().map(|s| s.to_string()).collect(),
            aur: aur.map(|a| a.iter().map(|s| s.to_string()).collect()),
        }
    }

    #[test]
    fn repositories_first_then_the_aur_then_flathub_for_app_ids() {
        let t = targets(&[
            "firefox",
            "paru",
            "org.gnome.Calculator",
            "nothing",
            "extra/vim",
        ]);
        let p = plan(
            &t,
            Only::Any,
            &found(&["firefox", "paru"], Some(&["paru", "yay"])),
        );
        assert_eq!(p.repo, ["firefox", "paru", "extra/vim"]);
        assert!(p.aur.is_empty());
        assert_eq!(p.flatpak, ["org.gnome.Calculator"]);
        assert_eq!(p.missing.len(), 1);
        assert_eq!(p.missing[0].name, "nothing");
    }

    #[test]
    fn the_aur_when_the_repositories_do_not_have_it() {
        let t = targets(&["yay"]);
        let p = plan(&t, Only::Any, &found(&[], Some(&["yay"])));
        assert_eq!(p.aur, ["yay"]);
        assert!(p.needs_aur());
        let p = plan(&t, Only::Any, &found(&[], None));
        assert_eq!(p.missing[0].reason, MissingReason::AurUnreachable);
        let p = plan(&t, Only::Repo, &found(&[], Some(&["yay"])));
        assert_eq!(p.missing[0].reason, MissingReason::NotFound);
    }

    #[test]
    fn flags_force_a_source() {
        let t = targets(&["firefox"]);
        let f = found(&["firefox"], Some(&["firefox"]));
        assert_eq!(plan(&t, Only::Aur, &f).aur, ["firefox"]);
        assert_eq!(plan(&t, Only::Flatpak, &f).flatpak, ["firefox"]);
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z][a-z0-9]{0,6}",
            "(core|extra)/[a-z][a-z0-9]{0,6}",
            "org\\.[a-z]{2,5}\\.[A-Z][a-z]{1,5}",
        ]
    }

    proptest! {
        #[test]
        fn every_target_lands_in_exactly_one_place_in_order(
            names in proptest::collection::vec(name(), 0..12),
            repo in proptest::collection::btree_set("[a-z][a-z0-9]{0,6}", 0..6),
            aur in proptest::option::of(proptest::collection::btree_set("[a-z][a-z0-9]{0,6}", 0..6)),
            only in prop_oneof![Just(Only::Any), Just(Only::Repo), Just(Only::Aur), Just(Only::Flatpak)],
        ) {
            let t: Vec<Target> = names.iter().map(|n| classify(n).unwrap()).collect();
            let f = Found { repo, aur };
            let p = plan(&t, only, &f);
            let total = p.repo.len() + p.aur.len() + p.flatpak.len() + p.missing.len();
            prop_assert_eq!(total, t.len());
            // Each bucket keeps the order the user gave: it is a subsequence of the names
            // (names may repeat, so positions are taken left to right).
            for bucket in [&p.repo, &p.aur, &p.flatpak] {
                let mut rest = names.iter();
                for n in bucket.iter() {
                    prop_assert!(rest.any(|x| x == n), "{n} out of order in {bucket:?}");
                }
            }
            // Nothing goes to the AUR that the AUR did not confirm.
            for a in &p.aur {
                prop_assert!(f.aur.as_ref().is_some_and(|s| s.contains(a)));
            }
            // A repository package is never sent elsewhere unless a flag says so.
            if only == Only::Any {
                for n in &names {
                    if f.repo.contains(n) {
                        prop_assert!(p.repo.contains(n));
                    }
                }
            }
        }
    }
}
