//! The scopes of API clients: what a partner system's token may do, which scopes a partner of
//! each kind may be given, and which scope a request needs.
//!
//! A client is a user of its partner's role, so its token can never do more than that role's
//! users can; a scope narrows it further. A request outside every scope is refused (403).

use actix_web::http::Method;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::role::Role;

/// What an API client's token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    /// A bank's pull of eligible applicants, its applications and programmes (reads).
    #[serde(rename = "applicants:read")]
    ApplicantsRead,
    /// A bank's decisions on its applications (`PATCH /applications/{id}`).
    #[serde(rename = "applications:write")]
    ApplicationsWrite,
    /// A retailer's reads of the products and businesses it curates from.
    #[serde(rename = "products:read")]
    ProductsRead,
    /// A retailer's curations (reads and writes).
    #[serde(rename = "curations:write")]
    CurationsWrite,
    /// A retailer's outlets and the placements in them (reads and writes).
    #[serde(rename = "outlets:write")]
    OutletsWrite,
    /// The dashboard statistics the partner's role sees.
    #[serde(rename = "stats:read")]
    StatsRead,
    /// The partner's own webhook subscriptions and their delivery logs.
    #[serde(rename = "webhooks:manage")]
    WebhooksManage,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 7] = [
        Scope::ApplicantsRead,
        Scope::ApplicationsWrite,
        Scope::ProductsRead,
        Scope::CurationsWrite,
        Scope::OutletsWrite,
        Scope::StatsRead,
        Scope::WebhooksManage,
    ];

    /// The name in tokens and requests (`applicants:read`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ApplicantsRead => "applicants:read",
            Scope::ApplicationsWrite => "applications:write",
            Scope::ProductsRead => "products:read",
            Scope::CurationsWrite => "curations:write",
            Scope::OutletsWrite => "outlets:write",
            Scope::StatsRead => "stats:read",
            Scope::WebhooksManage => "webhooks:manage",
        }
    }

    /// Parses a name.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// Whether a client of `role` may hold this scope.
    pub fn fits(self, role: Role) -> bool {
        match self {
            Scope::ApplicantsRead | Scope::ApplicationsWrite => role == Role::Bank,
            Scope::ProductsRead | Scope::CurationsWrite | Scope::OutletsWrite => role == Role::Retail,
            Scope::StatsRead | Scope::WebhooksManage => matches!(role, Role::Bank | Role::Retail),
        }
    }

    /// What a client's request to `path` (under `/api/v1`) with `method` needs.
    pub fn needed(method: &Method, path: &str) -> Access {
        let path = path.strip_prefix("/api/v1").unwrap_or(path);
        let mut parts = path.trim_start_matches('/').split('/');
        let first = parts.next().unwrap_or("");
        let read = method == Method::GET || method == Method::HEAD;
        match first {
            "auth" | "regions" if read => Access::Open,
            "stats" if read => Access::Needs(Scope::StatsRead),
            "bank-partners" | "programmes" | "applications" if read => Access::Needs(Scope::ApplicantsRead),
            "applications" if method == Method::PATCH => Access::Needs(Scope::ApplicationsWrite),
            "products" | "businesses" | "retail-partners" if read => Access::Needs(Scope::ProductsRead),
            "curations" => Access::Needs(Scope::CurationsWrite),
            "outlets" | "placements" => Access::Needs(Scope::OutletsWrite),
            "webhook-subscriptions" => Access::Needs(Scope::WebhooksManage),
            _ => Access::Closed,
        }
    }
}

/// What a client's request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any client: who am I, the regions.
    Open,
    /// This scope.
    Needs(Scope),
    /// No scope reaches it: what only people do (users, the audit log, the office's writes).
    Closed,
}

/// Scopes as a space-separated list (RFC 6749 §3.3), sorted and without repeats.
pub fn join(scopes: &[Scope]) -> String {
    let mut sorted = scopes.to_vec();
    sorted.sort();
    sorted.dedup();
    sorted.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
}

/// A space-separated list read back; `Err` names the first unknown scope.
pub fn split(list: &str) -> Result<Vec<Scope>, String> {
    list.split_ascii_whitespace().map(|s| Scope::parse(s).ok_or_else(|| s.to_owned())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_back_and_fit_their_partner_kind() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
            assert!(scope.fits(Role::Bank) || scope.fits(Role::Retail));
            assert!(!scope.fits(Role::Admin) && !scope.fits(Role::Officer) && !scope.fits(Role::Viewer));
        }
        assert_eq!(split("stats:read  applicants:read").unwrap(), [Scope::StatsRead, Scope::ApplicantsRead]);
        assert_eq!(split("stats:read admin").unwrap_err(), "admin");
        assert_eq!(
            join(&[Scope::StatsRead, Scope::ApplicantsRead, Scope::StatsRead]),
            "applicants:read stats:read"
        );
    }

    #[test]
    fn each_request_needs_the_scope_of_its_resource() {
        use Access::*;
        let pull = "/api/v1/bank-partners/1/eligible-applicants";
        assert_eq!(Scope::needed(&Method::GET, pull), Needs(Scope::ApplicantsRead));
        assert_eq!(Scope::needed(&Method::PATCH, "/api/v1/applications/7"), Needs(Scope::ApplicationsWrite));
        assert_eq!(Scope::needed(&Method::POST, "/api/v1/applications"), Closed, "filing is the office's");
        assert_eq!(Scope::needed(&Method::GET, "/api/v1/stats/financing"), Needs(Scope::StatsRead));
        assert_eq!(Scope::needed(&Method::POST, "/api/v1/curations"), Needs(Scope::CurationsWrite));
        assert_eq!(Scope::needed(&Method::DELETE, "/api/v1/placements/3"), Needs(Scope::OutletsWrite));
        let log = "/api/v1/webhook-subscriptions/2/deliveries";
        assert_eq!(Scope::needed(&Method::GET, log), Needs(Scope::WebhooksManage));
        assert_eq!(Scope::needed(&Method::GET, "/api/v1/auth/me"), Open);
        assert_eq!(Scope::needed(&Method::GET, "/api/v1/users"), Closed);
        assert_eq!(Scope::needed(&Method::PATCH, "/api/v1/businesses/1"), Closed);
    }
}
