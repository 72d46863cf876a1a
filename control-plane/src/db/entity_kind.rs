//! How the database names a replicated entity kind ([`EntityKind`], the one type the wire
//! protocol and the control plane share): its name in the tombstones table and the change
//! feed, and the table that holds it.

use license_shared::protocol::EntityKind;

/// The database's names for an [`EntityKind`].
pub(crate) trait EntityKindSql: Sized {
    /// The name stored in `tombstones.entity` and reported by the change feed.
    fn sql_name(self) -> &'static str;
    /// The table whose rows are entities of this kind.
    fn table(self) -> &'static str;
    /// The kind a stored name stands for; `None` for a name this build does not know.
    fn from_sql_name(raw: &str) -> Option<Self>;
}

impl EntityKindSql for EntityKind {
    fn sql_name(self) -> &'static str {
        match self {
            EntityKind::Product => "product",
            EntityKind::Customer => "customer",
            EntityKind::License => "license",
            EntityKind::Credential => "credential",
            EntityKind::SigningKey => "signing_key",
        }
    }

    fn table(self) -> &'static str {
        match self {
            EntityKind::Product => "products",
            EntityKind::Customer => "customers",
            EntityKind::License => "licenses",
            EntityKind::Credential => "api_credentials",
            EntityKind::SigningKey => "signing_keys",
        }
    }

    fn from_sql_name(raw: &str) -> Option<Self> {
        match raw {
            "product" => Some(EntityKind::Product),
            "customer" => Some(EntityKind::Customer),
            "license" => Some(EntityKind::License),
            "credential" => Some(EntityKind::Credential),
            "signing_key" => Some(EntityKind::SigningKey),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_wire_names() {
        for kind in [
            EntityKind::Product,
            EntityKind::Customer,
            EntityKind::License,
            EntityKind::Credential,
            EntityKind::SigningKey,
        ] {
            assert_eq!(EntityKind::from_sql_name(kind.sql_name()), Some(kind));
            // The feed's names are the protocol's, so the two never drift apart.
            let wire = serde_json::to_value(kind).expect("serialises");
            assert_eq!(wire.as_str(), Some(kind.sql_name()));
        }
        assert_eq!(EntityKind::from_sql_name("widget"), None);
    }
}
