//! Effective permissions per (tenant, user), cached in moka.
//!
//! An entry holds what the user's role assignments grant, with inheritance resolved: the
//! patterns of unconditional assignments in one list, each conditional assignment's patterns
//! with its conditions. Entries expire after a TTL (a safety net) and are evicted on every node
//! by NOTIFY when roles, assignments or the user's status change: one user's entry for a user
//! change, the whole tenant's for a role change.
//!
//! A load that races with an eviction does not put the stale result back ([`FreshCache`]).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use super::conditions::Conditions;
use super::split_grants;
use crate::fresh_cache::FreshCache;

/// A granted pattern, split once at load so a check does not split it again.
#[derive(Debug)]
struct Pattern {
    text: String,
    colon: usize,
}

impl Pattern {
    /// `None` for a stored string without a colon (which grants nothing).
    fn parse(text: String) -> Option<Self> {
        let colon = text.find(':')?;
        Some(Self { text, colon })
    }

    fn grants(&self, required: (&str, &str)) -> bool {
        split_grants(
            (&self.text[..self.colon], &self.text[self.colon + 1..]),
            required,
        )
    }
}

/// What a user's role assignments grant.
#[derive(Debug, Default)]
pub struct EffectivePermissions {
    unconditional: Vec<Pattern>,
    conditional: Vec<(Conditions, Vec<Pattern>)>,
}

impl EffectivePermissions {
    /// Builds the set from `(conditions, pattern)` pairs, one per pattern of each held role
    /// (inherited ones included). Conditions that no longer parse grant nothing.
    pub fn from_grants(
        rows: impl IntoIterator<Item = (Option<serde_json::Value>, String)>,
    ) -> Self {
        let mut permissions = Self::default();
        for (conditions, pattern) in rows {
            let Some(pattern) = Pattern::parse(pattern) else {
                continue;
            };
            match conditions {
                None => permissions.unconditional.push(pattern),
                Some(stored) => {
                    let Some(conditions) = Conditions::from_stored(&stored) else {
                        tracing::warn!("a role assignment's stored conditions do not parse");
                        continue;
                    };
                    match permissions
                        .conditional
                        .iter_mut()
                        .find(|(existing, _)| *existing == conditions)
                    {
                        Some((_, patterns)) => patterns.push(pattern),
                        None => permissions.conditional.push((conditions, vec![pattern])),
                    }
                }
            }
        }
        permissions
            .unconditional
            .sort_by(|a, b| a.text.cmp(&b.text));
        permissions.unconditional.dedup_by(|a, b| a.text == b.text);
        permissions
    }

    /// Whether a request from `ip` at `now` may do `permission` (`resource:action`).
    pub fn allows(&self, permission: &str, ip: Option<IpAddr>, now: OffsetDateTime) -> bool {
        let Some(required) = permission.split_once(':') else {
            return false;
        };
        self.unconditional
            .iter()
            .any(|granted| granted.grants(required))
            || self.conditional.iter().any(|(conditions, patterns)| {
                patterns.iter().any(|granted| granted.grants(required)) && conditions.admit(ip, now)
            })
    }

    /// The patterns in force for a request from `ip` at `now`.
    pub fn in_force(&self, ip: Option<IpAddr>, now: OffsetDateTime) -> Vec<&str> {
        let mut patterns: Vec<&str> = self
            .unconditional
            .iter()
            .map(|pattern| pattern.text.as_str())
            .collect();
        for (conditions, granted) in &self.conditional {
            if conditions.admit(ip, now) {
                patterns.extend(granted.iter().map(|pattern| pattern.text.as_str()));
            }
        }
        patterns
    }
}

#[derive(Clone)]
pub struct PermissionCache {
    entries: FreshCache<(Uuid, Uuid), Arc<EffectivePermissions>>,
}

impl PermissionCache {
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        Self {
            entries: FreshCache::new(ttl, capacity),
        }
    }

    /// The cached entry, if any.
    pub async fn get(&self, tenant_id: Uuid, user_id: Uuid) -> Option<Arc<EffectivePermissions>> {
        self.entries.get(&(tenant_id, user_id))
    }

    /// The entry, loaded by `load` on a miss.
    pub async fn get_or_load<E, F>(
        &self,
        tenant_id: Uuid,
        user_id: Uuid,
        load: F,
    ) -> Result<Arc<EffectivePermissions>, E>
    where
        F: std::future::Future<Output = Result<EffectivePermissions, E>>,
    {
        let loaded = self
            .entries
            .get_or_load((tenant_id, user_id), async {
                load.await.map(|permissions| Some(Arc::new(permissions)))
            })
            .await?;
        Ok(loaded.unwrap_or_default())
    }

    pub async fn invalidate_user(&self, tenant_id: Uuid, user_id: Uuid) {
        self.entries.invalidate(&(tenant_id, user_id));
    }

    pub fn invalidate_tenant(&self, tenant_id: Uuid) {
        self.entries
            .invalidate_if(move |(tenant, _), _| *tenant == tenant_id);
    }

    pub fn invalidate_all(&self) {
        self.entries.invalidate_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn conditional_grants_apply_only_inside_their_conditions() {
        let office = serde_json::json!({"ip_ranges": ["10.0.0.0/8"]});
        let permissions = EffectivePermissions::from_grants([
            (None, "records:read".to_owned()),
            (Some(office.clone()), "users:manage".to_owned()),
            (Some(office), "roles:manage".to_owned()),
            (
                Some(serde_json::json!({"ip_ranges": "not a list"})),
                "*:*".to_owned(),
            ),
        ]);
        let now = datetime!(2026-11-23 12:00 UTC);
        let inside = Some("10.0.0.7".parse().unwrap());
        let outside = Some("192.0.2.1".parse().unwrap());
        assert!(permissions.allows("records.notes:read", outside, now));
        assert!(permissions.allows("users:read", inside, now));
        assert!(!permissions.allows("users:read", outside, now));
        assert!(!permissions.allows("settings:manage", inside, now));
        assert_eq!(
            permissions.in_force(inside, now),
            ["records:read", "users:manage", "roles:manage"]
        );
        assert_eq!(permissions.in_force(outside, now), ["records:read"]);
    }

    #[tokio::test]
    async fn an_eviction_during_a_load_keeps_the_loaded_value_out() {
        let cache = PermissionCache::new(Duration::from_secs(60), 100);
        let (tenant, user) = (Uuid::new_v4(), Uuid::new_v4());
        let loaded = cache
            .get_or_load(tenant, user, async {
                cache.invalidate_tenant(tenant);
                Ok::<_, ()>(EffectivePermissions::default())
            })
            .await;
        assert!(loaded.is_ok());
        assert!(cache.get(tenant, user).await.is_none());
        cache
            .get_or_load(tenant, user, async {
                Ok::<_, ()>(EffectivePermissions::default())
            })
            .await
            .unwrap();
        assert!(cache.get(tenant, user).await.is_some());
        cache.invalidate_user(tenant, user).await;
        assert!(cache.get(tenant, user).await.is_none());
    }
}
