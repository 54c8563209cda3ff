//! The course form and its roster CSV, parsed into a validated [`Course`].
//!
//! Every row is checked before anything is planned: a bad email, an unknown
//! role, an empty team, a team whose namespace name would not be a DNS label,
//! an email outside the allowed domains, or one person listed with two roles
//! is reported by its line number, and nothing is applied.

use std::collections::{BTreeMap, HashMap};

use time::{PrimitiveDateTime, macros::format_description};

use crate::{
    namespaces::{
        membership::{self, Role},
        spec::{self as ns_spec, Limits, SETTINGS},
    },
    web::FieldErrors,
};

/// The largest roster Berth reads (bytes): a course of a few hundred people
/// is a few kilobytes.
pub const MAX_ROSTER_BYTES: usize = 256 * 1024;
/// The most rows a roster may have.
pub const MAX_ROWS: usize = 2000;

/// One roster line, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterRow {
    /// 1-based line in the uploaded text.
    pub line: usize,
    /// Team, lower-cased.
    pub team: String,
    /// Lower-cased email.
    pub email: String,
    /// Owner or member of the team's namespace.
    pub role: Role,
}

/// What the roster says: team → (email → role), each team's namespace named.
pub type Roster = BTreeMap<String, BTreeMap<String, Role>>;

/// The course-level settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The course's name: the prefix of its namespaces (`<course>-<team>`).
    pub name: String,
    /// Quota and container defaults every team's namespace gets.
    pub limits: Limits,
    /// When the course ends (unix seconds, UTC): workloads scale to zero.
    pub ends_at: i64,
    /// How long after the end workloads are kept (scaled to zero) before
    /// they are deleted, in seconds.
    pub grace_secs: i64,
    /// Whether the volumes go with the workloads at the end of the grace.
    pub delete_volumes: bool,
}

/// A validated upload: settings and roster.
#[derive(Debug, Clone, PartialEq)]
pub struct Course {
    /// Course settings.
    pub settings: Settings,
    /// Team → members.
    pub roster: Roster,
}

/// The namespace a team of `course` lives in.
pub fn namespace_of(course: &str, team: &str) -> String {
    format!("{course}-{team}")
}

/// One line's problem, by its line number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong with it.
    pub message: String,
}

/// The course form's fields, top to bottom.
pub const FORM_ORDER: [&str; 6 + SETTINGS] = ns_spec::form_order(
    &["course", "ends_at", "grace_days", "delete_volumes"],
    &["roster_file", "roster"],
);

/// Why an upload was refused: form fields and roster lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Messages beside form fields, in form order.
    pub fields: FieldErrors,
    /// Messages about roster lines.
    pub lines: Vec<LineError>,
}

impl Default for Refusal {
    fn default() -> Self {
        Self {
            fields: FieldErrors::in_order(&FORM_ORDER),
            lines: Vec::new(),
        }
    }
}

impl Refusal {
    /// A refusal of one form field.
    pub fn of_field(field: &'static str, message: impl Into<String>) -> Self {
        let mut refusal = Self::default();
        refusal.fields.add(field, message);
        refusal
    }

    /// The message for a form field.
    pub fn for_field(&self, field: &str) -> Option<&str> {
        self.fields.get(field)
    }

    /// Nothing wrong.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.lines.is_empty()
    }
}

/// Splits one CSV line into cells: commas separate, double quotes may wrap a
/// cell (`""` is a quote inside one). Enough for what spreadsheets export.
fn cells(line: &str) -> Result<Vec<String>, String> {
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if cell.trim().is_empty() => {
                cell.clear();
                quoted = true;
            }
            (',', false) => cells.push(std::mem::take(&mut cell)),
            (c, _) => cell.push(c),
        }
    }
    if quoted {
        return Err("a quote is not closed".to_owned());
    }
    cells.push(cell);
    Ok(cells.into_iter().map(|c| c.trim().to_owned()).collect())
}

/// Parses the roster: `team,email,role` per line (a header line naming those
/// columns is skipped, blank lines and lines starting with `#` too).
/// `allowed` says whether an email's domain may sign in.
pub fn parse_roster(
    course: &str,
    text: &str,
    allowed: &dyn Fn(&str) -> bool,
) -> Result<Vec<RosterRow>, Vec<LineError>> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut bad = |line: usize, message: String| errors.push(LineError { line, message });
    let mut seen: HashMap<String, (usize, Role)> = HashMap::new();
    let mut pairs: HashMap<(String, String), usize> = HashMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let raw = raw.trim_start_matches('\u{feff}').trim();
        if raw.is_empty() || raw.starts_with('#') {
            continue;
        }
        let cells = match cells(raw) {
            Ok(cells) => cells,
            Err(e) => {
                bad(line, format!("Cannot read this line: {e}."));
                continue;
            }
        };
        let lower: Vec<String> = cells.iter().map(|c| c.to_lowercase()).collect();
        if rows.is_empty() && lower == ["team", "email", "role"] {
            continue;
        }
        if cells.len() != 3 {
            bad(
                line,
                format!(
                    "Write three columns, team,email,role (this line has {}).",
                    cells.len()
                ),
            );
            continue;
        }
        let (team, email, role) = (&lower[0], &lower[1], &lower[2]);
        let mut ok = true;
        if team.is_empty() {
            bad(line, "The team is empty.".to_owned());
            ok = false;
        } else {
            let namespace = namespace_of(course, team);
            if !membership::valid_name(&namespace) {
                bad(
                    line,
                    format!(
                        "Team {team:?} would make the namespace {namespace:?}: use lowercase letters, digits and dashes, at most {} characters in all.",
                        63
                    ),
                );
                ok = false;
            }
        }
        if !ns_spec::valid_email(email) {
            bad(line, format!("{email:?} is not an email address."));
            ok = false;
        } else if !allowed(email) {
            bad(
                line,
                format!("{email} is outside the email domains allowed to sign in."),
            );
            ok = false;
        }
        let role = Role::parse(role);
        if role.is_none() {
            bad(
                line,
                format!("Unknown role {:?}: use owner or member.", cells[2]),
            );
            ok = false;
        }
        let (true, Some(role)) = (ok, role) else {
            continue;
        };
        if let Some((first, other)) = seen.get(email) {
            if *other != role {
                bad(
                    line,
                    format!(
                        "{email} is {} here but {} on line {first}: give one role.",
                        role.as_str(),
                        other.as_str()
                    ),
                );
                continue;
            }
        } else {
            seen.insert(email.clone(), (line, role));
        }
        if pairs.insert((team.clone(), email.clone()), line).is_some() {
            // The same person twice in a team with the same role: harmless.
            continue;
        }
        rows.push(RosterRow {
            line,
            team: team.clone(),
            email: email.clone(),
            role,
        });
        if rows.len() > MAX_ROWS {
            bad(line, format!("A roster has at most {MAX_ROWS} rows."));
            break;
        }
    }
    if rows.is_empty() && errors.is_empty() {
        errors.push(LineError {
            line: 1,
            message: "The roster is empty: one team,email,role per line.".to_owned(),
        });
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// The roster rows as team → members.
pub fn roster_of(rows: &[RosterRow]) -> Roster {
    let mut roster = Roster::new();
    for row in rows {
        roster
            .entry(row.team.clone())
            .or_default()
            .insert(row.email.clone(), row.role);
    }
    roster
}

/// Parses `2026-12-18` or `2026-12-18 17:00` (UTC) into unix seconds.
pub fn parse_end(text: &str) -> Result<i64, String> {
    let text = text.trim().replace('T', " ");
    let with_time = format_description!("[year]-[month]-[day] [hour]:[minute]");
    let date_only = format_description!("[year]-[month]-[day]");
    let parsed = PrimitiveDateTime::parse(&text, with_time).or_else(|_| {
        time::Date::parse(&text, date_only).map(|d| d.with_hms(23, 59, 0).unwrap_or(d.midnight()))
    });
    parsed
        .map(|t| t.assume_utc().unix_timestamp())
        .map_err(|_| "Enter a date like 2026-12-18, or 2026-12-18 17:00 (UTC).".to_owned())
}

/// Parses the form: settings and roster together, every problem reported.
pub fn parse(
    form: &HashMap<String, String>,
    allowed: &dyn Fn(&str) -> bool,
) -> Result<Course, Refusal> {
    let mut refusal = Refusal::default();
    let name = form
        .get("course")
        .map(|n| n.trim().to_lowercase())
        .unwrap_or_default();
    // The course name plus a dash and at least one character must stay a label.
    if name.is_empty() || name.len() > 40 || !membership::valid_name(&name) {
        refusal.fields.add(
            "course",
            "Use lowercase letters, digits and dashes (at most 40), like cs101-fall.",
        );
    }
    let limits = match ns_spec::parse_limits(form) {
        Ok(limits) => Some(limits),
        Err(errors) => {
            refusal.fields.extend(errors);
            None
        }
    };
    let ends_at = match parse_end(form.get("ends_at").map_or("", String::as_str)) {
        Ok(at) => Some(at),
        Err(e) => {
            refusal.fields.add("ends_at", e);
            None
        }
    };
    let grace_days = form.get("grace_days").map_or("", |g| g.trim());
    let grace_secs = match grace_days.parse::<u32>() {
        Ok(days) if days <= 365 => Some(i64::from(days) * 86_400),
        _ => {
            refusal
                .fields
                .add("grace_days", "Enter whole days, 0 to 365.");
            None
        }
    };
    let delete_volumes = form.get("delete_volumes").map(String::as_str) == Some("on");
    let text = form.get("roster").map_or("", String::as_str);
    let rows = if text.len() > MAX_ROSTER_BYTES {
        refusal.fields.add(
            "roster",
            format!("The roster is larger than {} KiB.", MAX_ROSTER_BYTES / 1024),
        );
        None
    } else if refusal.for_field("course").is_some() {
        None
    } else {
        match parse_roster(&name, text, allowed) {
            Ok(rows) => Some(rows),
            Err(lines) => {
                refusal.fields.add(
                    "roster",
                    format!(
                        "{} line{} of the roster need fixing; nothing was changed.",
                        lines.len(),
                        if lines.len() == 1 { "" } else { "s" }
                    ),
                );
                refusal.lines = lines;
                None
            }
        }
    };
    match (limits, ends_at, grace_secs, rows) {
        (Some(limits), Some(ends_at), Some(grace_secs), Some(rows)) if refusal.is_empty() => {
            Ok(Course {
                settings: Settings {
                    name,
                    limits,
                    ends_at,
                    grace_secs,
                    delete_volumes,
                },
                roster: roster_of(&rows),
            })
        }
        _ => Err(refusal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purdue(email: &str) -> bool {
        email.ends_with("@purdue.edu")
    }

    #[test]
    fn a_good_roster_groups_people_by_team() {
        let text = "team,email,role\nalpha, Ann@Purdue.edu ,owner\nalpha,bob@purdue.edu,member\n\n\"beta\",cy@purdue.edu,member\nalpha,bob@purdue.edu,member\n";
        let rows = parse_roster("cs1", text, &purdue).expect("valid");
        let roster = roster_of(&rows);
        assert_eq!(roster.len(), 2);
        assert_eq!(roster["alpha"]["ann@purdue.edu"], Role::Owner);
        assert_eq!(roster["alpha"]["bob@purdue.edu"], Role::Member);
        assert_eq!(roster["beta"]["cy@purdue.edu"], Role::Member);
        assert_eq!(rows[0].line, 2);
    }

    #[test]
    fn bad_rows_are_reported_by_line() {
        let text = "alpha,ann@purdue.edu,owner\nalpha,not-an-email,member\nbeta,bo@purdue.edu,boss\n,cy@purdue.edu,member\ngamma,eve@evil.com,member\nbeta,ann@purdue.edu,member\nUnder_Score,dd@purdue.edu,member\n";
        let errors = parse_roster("cs1", text, &purdue).expect_err("refused");
        let lines: Vec<usize> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![2, 3, 4, 5, 6, 7], "{errors:?}");
        assert!(errors[1].message.contains("Unknown role"));
        assert!(errors[2].message.contains("team is empty"));
        assert!(errors[3].message.contains("outside the email domains"));
        assert!(errors[4].message.contains("on line 1"));
    }

    #[test]
    fn end_dates_are_utc() {
        assert_eq!(parse_end("1970-01-02 00:00"), Ok(86_400));
        assert_eq!(parse_end("1970-01-01"), Ok(23 * 3600 + 59 * 60));
        assert!(parse_end("tomorrow").is_err());
    }
}
