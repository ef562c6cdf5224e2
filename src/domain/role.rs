//! The roles a user can hold. They live with the rules, so that authentication and user
//! management both depend on this module instead of on each other.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a user may do: admins everything; officers the office's records with PII; bank and
/// retail users their own partner's records; viewers read with PII masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including users and the audit log.
    Admin,
    /// Office staff: reads and writes the office's records, sees PII.
    Officer,
    /// A partner bank's system or staff, bound to one bank partner.
    Bank,
    /// A retail partner's staff, bound to one retail partner.
    Retail,
    /// Read-only, PII masked.
    Viewer,
}

impl Role {
    /// Every role, from most to least trusted.
    pub const ALL: [Role; 5] = [Role::Admin, Role::Officer, Role::Bank, Role::Retail, Role::Viewer];

    /// The stored and serialized name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Officer => "officer",
            Role::Bank => "bank",
            Role::Retail => "retail",
            Role::Viewer => "viewer",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Role {
    type Error = String;

    fn try_from(name: String) -> Result<Role, String> {
        Role::parse(&name).ok_or_else(|| format!("unknown role {name:?} in the database"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
    }
}
