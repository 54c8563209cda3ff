//! Namespaces, their members and quotas (the admin side), and the membership
//! checks every other feature asks before acting in a namespace.

pub mod membership;
