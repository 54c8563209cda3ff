//! Side effects: the course store, applying a plan through the namespace
//! feature's own operations (as the person, each step audited), and the
//! end-of-course sweep.

use std::collections::BTreeMap;

use k8s_openapi::api::{
    apps::v1::Deployment,
    core::v1::{Namespace, PersistentVolumeClaim, Service},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams},
};
use serde_json::json;
use sqlx::SqlitePool;

use super::{
    plan::{Current, MemberChange, Plan, limits_summary},
    spec::{Course, Roster, Settings, namespace_of},
};
use crate::{
    app::AppState,
    audit::{self},
    kube::{Caches, Identity, KubeError},
    namespaces::{
        membership::{self, Role},
        ops as ns_ops,
        spec::{Limits, NamespaceSpec},
    },
};

pub use crate::kube::NOTICE_ANNOTATION;

/// A course as stored, with its sweep state.
#[derive(Debug, Clone)]
pub struct Stored {
    /// Settings last applied.
    pub settings: Settings,
    /// Roster last applied.
    pub roster: Roster,
    /// The admin who made the course (the sweep acts as them).
    pub created_by: String,
    /// When the sweep scaled its workloads to zero.
    pub scaled_at: Option<i64>,
    /// When the sweep deleted them.
    pub removed_at: Option<i64>,
}

type CourseRow = (
    String,
    String,
    i64,
    i64,
    i64,
    String,
    Option<i64>,
    Option<i64>,
);

/// The stored course `name`.
pub async fn load(db: &SqlitePool, name: &str) -> anyhow::Result<Option<Stored>> {
    let row: Option<CourseRow> = sqlx::query_as(
        "SELECT name, quota, ends_at, grace_secs, delete_volumes, created_by, scaled_at, removed_at
         FROM courses WHERE name = ?",
    )
    .bind(name)
    .fetch_optional(db)
    .await?;
    let Some((name, quota, ends_at, grace_secs, delete_volumes, created_by, scaled_at, removed_at)) =
        row
    else {
        return Ok(None);
    };
    let limits = Limits::from_flag(&quota).map_err(|e| anyhow::anyhow!("stored quota: {e}"))?;
    let members: Vec<(String, String, String)> =
        sqlx::query_as("SELECT team, email, role FROM course_members WHERE course = ?")
            .bind(&name)
            .fetch_all(db)
            .await?;
    let mut roster = Roster::new();
    for (team, email, role) in members {
        if let Some(role) = Role::parse(&role) {
            roster.entry(team).or_default().insert(email, role);
        }
    }
    Ok(Some(Stored {
        settings: Settings {
            name,
            limits,
            ends_at,
            grace_secs,
            delete_volumes: delete_volumes == 1,
        },
        roster,
        created_by,
        scaled_at,
        removed_at,
    }))
}

/// Every course's name, in order.
pub async fn names(db: &SqlitePool) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar("SELECT name FROM courses ORDER BY name")
        .fetch_all(db)
        .await
}

/// Stores what was applied. A moved end date starts the sweep over.
async fn save(db: &SqlitePool, plan: &Plan, by: &str) -> sqlx::Result<()> {
    let s = &plan.settings;
    let mut tx = crate::db::begin_write(db).await?;
    sqlx::query(
        "INSERT INTO courses (name, quota, ends_at, grace_secs, delete_volumes, created_by, applied_by, applied_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET quota = excluded.quota,
             scaled_at = CASE WHEN ends_at = excluded.ends_at THEN scaled_at END,
             removed_at = CASE WHEN ends_at = excluded.ends_at THEN removed_at END,
             ends_at = excluded.ends_at, grace_secs = excluded.grace_secs,
             delete_volumes = excluded.delete_volumes,
             applied_by = excluded.applied_by, applied_at = excluded.applied_at",
    )
    .bind(&s.name)
    .bind(limits_summary(&s.limits))
    .bind(s.ends_at)
    .bind(s.grace_secs)
    .bind(i64::from(s.delete_volumes))
    .bind(by)
    .bind(by)
    .bind(crate::clock::now())
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM course_members WHERE course = ?")
        .bind(&s.name)
        .execute(&mut *tx)
        .await?;
    for (team, members) in &plan.roster {
        for (email, role) in members {
            sqlx::query(
                "INSERT INTO course_members (course, team, email, role) VALUES (?, ?, ?, ?)",
            )
            .bind(&s.name)
            .bind(team)
            .bind(email)
            .bind(role.as_str())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await
}

/// What exists for `course`: the stored course, its namespaces in the
/// cluster (from the cache) and their members.
pub async fn current(state: &AppState, course: &Course) -> anyhow::Result<Current> {
    let stored = load(&state.db, &course.settings.name).await?;
    let caches = state.kube.caches()?;
    let teams: std::collections::BTreeSet<String> = course
        .roster
        .keys()
        .chain(stored.iter().flat_map(|s| s.roster.keys()))
        .cloned()
        .collect();
    let mut current = Current {
        stored: stored.map(|s| (s.settings, s.roster)),
        ..Current::default()
    };
    for team in teams {
        let namespace = namespace_of(&course.settings.name, &team);
        if caches.namespace(&namespace).is_some() {
            current.namespaces.insert(namespace.clone());
        }
        let members: BTreeMap<String, Role> = membership::members_of(&state.db, &namespace)
            .await?
            .into_iter()
            .map(|m| (m.email.to_lowercase(), m.role))
            .collect();
        current.members.insert(namespace, members);
    }
    Ok(current)
}

/// Applies `plan` as `identity` (the signed-in person): namespaces first,
/// then memberships, each step audited; the roster is stored once every
/// step succeeded. On a failure it stops and says which step; applying the
/// same roster again finishes the job (every step is idempotent).
pub async fn apply(
    state: &AppState,
    actor: &str,
    identity: &Identity,
    plan: &Plan,
) -> Result<usize, String> {
    let client = state.kube.client_for(identity).map_err(|e| e.to_string())?;
    let course = &plan.settings.name;
    let mut steps = 0;
    for ns in &plan.namespaces {
        if ns.create {
            let spec = NamespaceSpec {
                name: ns.namespace.clone(),
                description: format!("Course {course}, team {}", ns.team),
                limits: plan.settings.limits.clone(),
            };
            let result = ns_ops::create_namespace(&client, &spec).await;
            if result.is_ok() {
                // A new namespace: nothing stored under its name is its.
                membership::forget_namespace(&state.db, &ns.namespace)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let summary = limits_summary(&plan.settings.limits);
            audit::Entry::new(actor, "course.namespace.create")
                .in_namespace(&ns.namespace)
                .on(course)
                .record_result(&state.db, result.as_ref().map(|()| summary.as_str()))
                .await;
            result.map_err(|e| format!("Creating {}: {e}", ns.namespace))?;
            if let Ok(caches) = state.kube.caches() {
                caches
                    .wait_for_namespace(&ns.namespace, std::time::Duration::from_secs(5))
                    .await;
            }
            steps += 1;
        } else if ns.apply_quota {
            let result = ns_ops::apply_limits(&client, &ns.namespace, &plan.settings.limits).await;
            let summary = limits_summary(&plan.settings.limits);
            audit::Entry::new(actor, "course.namespace.quota")
                .in_namespace(&ns.namespace)
                .on(course)
                .record_result(&state.db, result.as_ref().map(|()| summary.as_str()))
                .await;
            result.map_err(|e| format!("The quota of {}: {e}", ns.namespace))?;
            steps += 1;
        }
        for change in &ns.changes {
            let result = match change {
                MemberChange::Add(email, role) | MemberChange::Change(email, _, role) => {
                    let bound = ns_ops::until_authorized(|| {
                        ns_ops::bind_member(&client, &ns.namespace, email, *role)
                    })
                    .await;
                    if bound.is_ok() {
                        membership::upsert(&state.db, &ns.namespace, email, *role, actor)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    bound
                }
                MemberChange::Remove(email) => {
                    let unbound = ns_ops::unbind_member(&client, &ns.namespace, email).await;
                    if unbound.is_ok() {
                        membership::remove(&state.db, &ns.namespace, email)
                            .await
                            .map_err(|e| e.to_string())?;
                    }
                    unbound
                }
            };
            let action = match change {
                MemberChange::Remove(_) => "course.member.remove",
                _ => "course.member.add",
            };
            let detail = change.describe();
            audit::Entry::new(actor, action)
                .in_namespace(&ns.namespace)
                .on(change.email())
                .record_result(&state.db, result.as_ref().map(|()| detail.as_str()))
                .await;
            result.map_err(|e| format!("{} in {}: {e}", detail, ns.namespace))?;
            steps += 1;
        }
    }
    save(&state.db, plan, actor)
        .await
        .map_err(|e| e.to_string())?;
    let detail = if plan.is_no_op() {
        "no changes".to_owned()
    } else {
        format!("{steps} steps; {}", plan.setting_changes.join("; "))
    };
    audit::Entry::new(actor, "course.apply")
        .on(course)
        .record_result(&state.db, Ok(detail.as_str()))
        .await;
    Ok(steps)
}

// ----------------------------------------------------------------- the sweep

/// Runs [`sweep`] every `every` seconds for as long as Berth runs.
pub fn spawn_sweep(state: AppState, every: u64) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(std::time::Duration::from_secs(every.max(1)));
        loop {
            ticks.tick().await;
            if let Err(error) = sweep(&state, crate::clock::now()).await {
                tracing::warn!(%error, "the end-of-course sweep failed; trying again later");
            }
        }
    });
}

/// The team namespaces of a stored course.
fn namespaces_of(stored: &Stored) -> Vec<String> {
    stored
        .roster
        .keys()
        .map(|team| namespace_of(&stored.settings.name, team))
        .collect()
}

/// At `now`: scales the workloads of every course past its end to zero, with
/// a notice; after the grace, deletes them (and their volumes if the course
/// says so). Acts as the admin who made the course; every step audited.
pub async fn sweep(state: &AppState, now: i64) -> anyhow::Result<()> {
    let Ok(caches) = state.kube.caches() else {
        return Ok(());
    };
    if !caches.is_ready() {
        return Ok(());
    }
    for name in names(&state.db).await? {
        let Some(stored) = load(&state.db, &name).await? else {
            continue;
        };
        let s = &stored.settings;
        let client = state
            .kube
            .client_for(&Identity::new(&stored.created_by, true))?;
        let actor = format!("{} (course end)", stored.created_by);
        if s.ends_at <= now && stored.scaled_at.is_none() {
            let until = crate::clock::display(s.ends_at + s.grace_secs);
            let notice = format!(
                "Course {name} ended on {}: its workloads were scaled to zero. They will be deleted on {until}{}.",
                crate::clock::display(s.ends_at),
                if s.delete_volumes {
                    " with their volumes"
                } else {
                    "; volumes are kept"
                }
            );
            let mut ok = true;
            for ns in namespaces_of(&stored) {
                ok &= scale_down(state, caches, &client, &actor, &ns, &notice).await;
            }
            if ok {
                sqlx::query("UPDATE courses SET scaled_at = ? WHERE name = ?")
                    .bind(now)
                    .bind(&name)
                    .execute(state.db.pool())
                    .await?;
            }
        } else if stored.scaled_at.is_some()
            && stored.removed_at.is_none()
            && s.ends_at + s.grace_secs <= now
        {
            let notice = format!(
                "Course {name} ended on {}: its workloads were deleted on {}{}.",
                crate::clock::display(s.ends_at),
                crate::clock::display(now),
                if s.delete_volumes {
                    " with their volumes"
                } else {
                    "; volumes were kept"
                }
            );
            let mut ok = true;
            for ns in namespaces_of(&stored) {
                ok &= remove_all(
                    state,
                    caches,
                    &client,
                    &actor,
                    &ns,
                    s.delete_volumes,
                    &notice,
                )
                .await;
            }
            if ok {
                sqlx::query("UPDATE courses SET removed_at = ? WHERE name = ?")
                    .bind(now)
                    .bind(&name)
                    .execute(state.db.pool())
                    .await?;
            }
        }
    }
    Ok(())
}

fn berth_deployments(caches: &Caches, ns: &str) -> Vec<String> {
    caches
        .deployments
        .in_namespace(ns)
        .iter()
        .filter(|d| d.managed)
        .map(|d| d.metadata.name.clone())
        .collect()
}

async fn annotate_namespace(client: &Client, ns: &str, notice: &str) -> Result<(), KubeError> {
    Api::<Namespace>::all(client.clone())
        .patch(
            ns,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {NOTICE_ANNOTATION: notice}}})),
        )
        .await?;
    Ok(())
}

async fn scale_down(
    state: &AppState,
    caches: &Caches,
    client: &Client,
    actor: &str,
    ns: &str,
    notice: &str,
) -> bool {
    if caches.namespace(ns).is_none() {
        return true;
    }
    let api: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let mut ok = true;
    for name in berth_deployments(caches, ns) {
        // A merge patch, not server-side apply: applying only these fields
        // as Berth's field manager would drop the rest of the spec.
        let result = api
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({
                    "metadata": {"annotations": {NOTICE_ANNOTATION: notice}},
                    "spec": {"replicas": 0},
                })),
            )
            .await
            .map(|_| ())
            .map_err(KubeError::from);
        audit::Entry::new(actor, "course.workload.scale-to-zero")
            .in_namespace(ns)
            .on(&name)
            .record_result(&state.db, result.as_ref().map(|()| "course ended"))
            .await;
        ok &= result.is_ok();
    }
    let result = annotate_namespace(client, ns, notice).await;
    if let Err(error) = &result {
        tracing::warn!(%error, ns, "could not put the course notice on the namespace");
    }
    ok && result.is_ok()
}

async fn remove_all(
    state: &AppState,
    caches: &Caches,
    client: &Client,
    actor: &str,
    ns: &str,
    delete_volumes: bool,
    notice: &str,
) -> bool {
    if caches.namespace(ns).is_none() {
        return true;
    }
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    let mut ok = true;
    for name in berth_deployments(caches, ns) {
        let mounted: Vec<String> = caches
            .deployments
            .get(ns, &name)
            .map(|d| {
                d.spec
                    .as_ref()
                    .and_then(|s| s.template.spec.as_ref())
                    .and_then(|p| p.volumes.as_ref())
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.persistent_volume_claim.as_ref())
                    .map(|c| c.claim_name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let result = async {
            crate::kube::delete_opt(&deployments, &name).await?;
            crate::kube::delete_opt(&services, &name).await?;
            if delete_volumes {
                for claim in &mounted {
                    crate::kube::delete_opt(&claims, claim).await?;
                }
            }
            Ok::<(), KubeError>(())
        }
        .await;
        let detail = if delete_volumes && !mounted.is_empty() {
            format!("course ended; volumes {} deleted", mounted.join(", "))
        } else if mounted.is_empty() {
            "course ended".to_owned()
        } else {
            format!("course ended; volumes {} kept", mounted.join(", "))
        };
        audit::Entry::new(actor, "course.workload.delete")
            .in_namespace(ns)
            .on(&name)
            .record_result(&state.db, result.as_ref().map(|()| detail.as_str()))
            .await;
        ok &= result.is_ok();
    }
    ok && annotate_namespace(client, ns, notice).await.is_ok()
}
