//! The paths of Berth's pages and actions, built in one place so a handler's
//! redirect, a confirmation page's form action and a link all agree with
//! the routes.
//!
//! Nothing here is percent-encoded: every argument is a namespace or
//! workload name (a Kubernetes DNS label, validated before it reaches a
//! handler), a course name (validated the same way) or a numeric row id,
//! none of which holds a character that needs encoding in a path. The route
//! patterns themselves (`.route("/namespaces/{ns}/…")`) stay in each
//! feature's router, and templates write their own links.

/// The admin overview: `/admin`.
pub fn admin() -> &'static str {
    "/admin"
}

/// The admin list of namespaces: `/admin/namespaces`.
pub fn admin_namespaces() -> &'static str {
    "/admin/namespaces"
}

/// One namespace's admin page, with its quota and members.
pub fn admin_namespace(name: &str) -> String {
    format!("/admin/namespaces/{name}")
}

/// The action that removes a member from a namespace.
pub fn admin_namespace_member_remove(name: &str) -> String {
    format!("/admin/namespaces/{name}/members/remove")
}

/// One course's page.
pub fn course(name: &str) -> String {
    format!("/courses/{name}")
}

/// A namespace's registry credentials page.
pub fn registry(ns: &str) -> String {
    format!("/namespaces/{ns}/registry")
}

/// The form that replaces a credential's token.
pub fn credential_replace(ns: &str, id: i64) -> String {
    format!("/namespaces/{ns}/credentials/{id}/replace")
}

/// The action that deletes a credential.
pub fn credential_delete(ns: &str, id: i64) -> String {
    format!("/namespaces/{ns}/credentials/{id}/delete")
}

/// A namespace's registered images.
pub fn images(ns: &str) -> String {
    format!("/namespaces/{ns}/images")
}

/// One registered image's page.
pub fn image(ns: &str, id: i64) -> String {
    format!("/namespaces/{ns}/images/{id}")
}

/// The action that removes a registered image.
pub fn image_delete(ns: &str, id: i64) -> String {
    format!("/namespaces/{ns}/images/{id}/delete")
}

/// A namespace's workloads.
pub fn workloads(ns: &str) -> String {
    format!("/namespaces/{ns}/workloads")
}

/// One workload's page.
pub fn workload(ns: &str, name: &str) -> String {
    format!("/namespaces/{ns}/workloads/{name}")
}

/// The WebSocket of a shell in one of a workload's pods.
pub fn workload_shell(ns: &str, name: &str, pod: &str) -> String {
    format!("/namespaces/{ns}/workloads/{name}/shell?pod={pod}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_is_the_one_the_routes_serve() {
        assert_eq!(
            workload_shell("cs101", "web", "web-1"),
            "/namespaces/cs101/workloads/web/shell?pod=web-1"
        );
        assert_eq!(admin(), "/admin");
        assert_eq!(admin_namespaces(), "/admin/namespaces");
        assert_eq!(admin_namespace("cs101"), "/admin/namespaces/cs101");
        assert_eq!(
            admin_namespace_member_remove("cs101"),
            "/admin/namespaces/cs101/members/remove"
        );
        assert_eq!(course("cs101-fall"), "/courses/cs101-fall");
        assert_eq!(registry("cs101"), "/namespaces/cs101/registry");
        assert_eq!(
            credential_replace("cs101", 3),
            "/namespaces/cs101/credentials/3/replace"
        );
        assert_eq!(
            credential_delete("cs101", 3),
            "/namespaces/cs101/credentials/3/delete"
        );
        assert_eq!(images("cs101"), "/namespaces/cs101/images");
        assert_eq!(image("cs101", 7), "/namespaces/cs101/images/7");
        assert_eq!(
            image_delete("cs101", 7),
            "/namespaces/cs101/images/7/delete"
        );
        assert_eq!(workloads("cs101"), "/namespaces/cs101/workloads");
        assert_eq!(
            workload("cs101", "add-two"),
            "/namespaces/cs101/workloads/add-two"
        );
    }
}
