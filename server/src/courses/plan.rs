//! Roster + what exists → the plan: which namespaces are created, who is
//! added, changed or removed in each, which settings change. Pure, so the dry
//! run and the apply compute exactly the same thing.

use std::collections::{BTreeMap, BTreeSet};

use super::spec::{Course, Roster, Settings, namespace_of};
use crate::namespaces::{membership::Role, spec::Limits};

/// What is there now, as far as the plan cares.
#[derive(Debug, Clone, Default)]
pub struct Current {
    /// The course as last applied, if it was.
    pub stored: Option<(Settings, Roster)>,
    /// Namespaces of the course's teams that exist in the cluster.
    pub namespaces: BTreeSet<String>,
    /// Memberships of those namespaces (namespace → email → role).
    pub members: BTreeMap<String, BTreeMap<String, Role>>,
}

/// One membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// A person who was not a member.
    Add(String, Role),
    /// A member whose role changes (from, to).
    Change(String, Role, Role),
    /// A person the last roster listed and this one does not.
    Remove(String),
}

impl MemberChange {
    /// The change in words, for the dry run and the audit log.
    pub fn describe(&self) -> String {
        match self {
            Self::Add(email, role) => format!("add {email} as {}", role.as_str()),
            Self::Change(email, from, to) => {
                format!("change {email} from {} to {}", from.as_str(), to.as_str())
            }
            Self::Remove(email) => format!("remove {email}"),
        }
    }

    /// Whose membership it is.
    pub fn email(&self) -> &str {
        match self {
            Self::Add(e, _) | Self::Change(e, _, _) | Self::Remove(e) => e,
        }
    }
}

/// The plan for one team's namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespacePlan {
    /// The team.
    pub team: String,
    /// Its namespace, `<course>-<team>`.
    pub namespace: String,
    /// It does not exist yet.
    pub create: bool,
    /// Its quota and defaults are (re)applied: new, or the course's changed.
    pub apply_quota: bool,
    /// Membership changes, in email order.
    pub changes: Vec<MemberChange>,
    /// Members after the plan, for the dry run.
    pub members: usize,
    /// The team is no longer in the roster (its people are removed; the
    /// namespace and what runs in it stay).
    pub dropped: bool,
}

impl NamespacePlan {
    /// Whether anything happens to it.
    pub fn changes_anything(&self) -> bool {
        self.create || self.apply_quota || !self.changes.is_empty()
    }
}

/// What applying an upload does.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The settings the upload asks for.
    pub settings: Settings,
    /// The roster the upload asks for.
    pub roster: Roster,
    /// Per team namespace (dropped teams last).
    pub namespaces: Vec<NamespacePlan>,
    /// Settings that differ from the stored course, in words.
    pub setting_changes: Vec<String>,
    /// The course is new to Berth.
    pub new_course: bool,
}

impl Plan {
    /// Nothing would change: re-uploading what was applied.
    pub fn is_no_op(&self) -> bool {
        !self.new_course
            && self.setting_changes.is_empty()
            && self.namespaces.iter().all(|n| !n.changes_anything())
    }

    /// Namespaces that would be created.
    pub fn creates(&self) -> impl Iterator<Item = &NamespacePlan> {
        self.namespaces.iter().filter(|n| n.create)
    }

    /// Whether only an admin may apply it: it creates namespaces, applies
    /// quotas or changes the course's settings.
    pub fn needs_admin(&self) -> bool {
        self.new_course
            || !self.setting_changes.is_empty()
            || self.namespaces.iter().any(|n| n.create || n.apply_quota)
    }
}

/// The quota as one line, `key=value, …`, in setting order.
pub fn limits_summary(limits: &Limits) -> String {
    crate::namespaces::spec::all_settings()
        .filter_map(|s| limits.get(s).map(|v| format!("{}={v}", s.key)))
        .collect::<Vec<_>>()
        .join(",")
}

/// Compares the upload with what exists.
pub fn plan(course: &Course, current: &Current) -> Plan {
    let settings = &course.settings;
    let stored_settings = current.stored.as_ref().map(|(s, _)| s);
    let stored_roster = current.stored.as_ref().map(|(_, r)| r);
    let quota_changed = stored_settings.is_some_and(|s| s.limits != settings.limits);
    let mut setting_changes = Vec::new();
    if let Some(stored) = stored_settings {
        if quota_changed {
            setting_changes.push(format!(
                "quota: {} → {}",
                limits_summary(&stored.limits),
                limits_summary(&settings.limits)
            ));
        }
        if stored.ends_at != settings.ends_at {
            setting_changes.push(format!(
                "end: {} → {}",
                crate::clock::display(stored.ends_at),
                crate::clock::display(settings.ends_at)
            ));
        }
        if stored.grace_secs != settings.grace_secs {
            setting_changes.push(format!(
                "grace: {} → {} days",
                stored.grace_secs / 86_400,
                settings.grace_secs / 86_400
            ));
        }
        if stored.delete_volumes != settings.delete_volumes {
            setting_changes.push(if settings.delete_volumes {
                "volumes: kept → deleted at the end of the grace".to_owned()
            } else {
                "volumes: deleted → kept".to_owned()
            });
        }
    }
    let empty = BTreeMap::new();
    let mut namespaces = Vec::new();
    let teams: BTreeSet<&String> = course
        .roster
        .keys()
        .chain(stored_roster.into_iter().flat_map(|r| r.keys()))
        .collect();
    for team in teams {
        let namespace = namespace_of(&settings.name, team);
        let wanted = course.roster.get(team).unwrap_or(&empty);
        let before = stored_roster.and_then(|r| r.get(team)).unwrap_or(&empty);
        let exists = current.namespaces.contains(&namespace);
        let members = current.members.get(&namespace).unwrap_or(&empty);
        let mut changes = Vec::new();
        for (email, role) in wanted {
            match members.get(email) {
                None => changes.push(MemberChange::Add(email.clone(), *role)),
                Some(now) if now != role => {
                    changes.push(MemberChange::Change(email.clone(), *now, *role));
                }
                Some(_) => {}
            }
        }
        // Only people the last roster put there are removed: someone an
        // admin added by hand is not the roster's to take away.
        for email in before.keys() {
            if !wanted.contains_key(email) && members.contains_key(email) {
                changes.push(MemberChange::Remove(email.clone()));
            }
        }
        changes.sort_by(|a, b| a.email().cmp(b.email()));
        let dropped = !course.roster.contains_key(team);
        if dropped && !exists {
            continue;
        }
        let kept = members
            .keys()
            .filter(|e| !wanted.contains_key(*e) && !before.contains_key(*e));
        namespaces.push(NamespacePlan {
            team: team.clone(),
            namespace,
            create: !exists && !dropped,
            apply_quota: (!exists || quota_changed) && !dropped,
            changes,
            members: wanted.len() + kept.count(),
            dropped,
        });
    }
    namespaces.sort_by_key(|n| n.dropped);
    Plan {
        settings: settings.clone(),
        roster: course.roster.clone(),
        namespaces,
        setting_changes,
        new_course: current.stored.is_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::courses::spec::{Course, RosterRow, roster_of};

    fn course(rows: &[(&str, &str, Role)]) -> Course {
        let rows: Vec<RosterRow> = rows
            .iter()
            .enumerate()
            .map(|(i, (team, email, role))| RosterRow {
                line: i + 1,
                team: (*team).into(),
                email: (*email).into(),
                role: *role,
            })
            .collect();
        Course {
            settings: Settings {
                name: "cs1".into(),
                limits: Limits::from_flag("pods=5").expect("limits"),
                ends_at: 1_000,
                grace_secs: 0,
                delete_volumes: false,
            },
            roster: roster_of(&rows),
        }
    }

    #[test]
    fn a_new_course_creates_every_namespace_and_adds_everyone() {
        let c = course(&[
            ("a", "x@p.edu", Role::Owner),
            ("b", "y@p.edu", Role::Member),
        ]);
        let plan = plan(&c, &Current::default());
        assert!(plan.new_course && plan.needs_admin());
        let names: Vec<&str> = plan.creates().map(|n| n.namespace.as_str()).collect();
        assert_eq!(names, ["cs1-a", "cs1-b"]);
        assert_eq!(
            plan.namespaces[0].changes,
            [MemberChange::Add("x@p.edu".into(), Role::Owner)]
        );
    }

    #[test]
    fn the_same_roster_again_changes_nothing_and_a_new_one_is_a_diff() {
        let c = course(&[
            ("a", "x@p.edu", Role::Owner),
            ("a", "y@p.edu", Role::Member),
        ]);
        let current = Current {
            stored: Some((c.settings.clone(), c.roster.clone())),
            namespaces: ["cs1-a".to_owned()].into(),
            members: [(
                "cs1-a".to_owned(),
                [
                    ("x@p.edu".to_owned(), Role::Owner),
                    ("y@p.edu".to_owned(), Role::Member),
                    ("ta@p.edu".to_owned(), Role::Member),
                ]
                .into(),
            )]
            .into(),
        };
        let again = plan(&c, &current);
        assert!(again.is_no_op(), "{again:?}");
        assert!(!again.needs_admin());

        let next = course(&[
            ("a", "y@p.edu", Role::Owner),
            ("a", "z@p.edu", Role::Member),
        ]);
        let diff = plan(&next, &current);
        assert_eq!(
            diff.namespaces[0].changes,
            [
                MemberChange::Remove("x@p.edu".into()),
                MemberChange::Change("y@p.edu".into(), Role::Member, Role::Owner),
                MemberChange::Add("z@p.edu".into(), Role::Member),
            ],
            "the hand-added ta stays"
        );
        assert!(!diff.needs_admin(), "an owner may apply membership changes");
    }
}
