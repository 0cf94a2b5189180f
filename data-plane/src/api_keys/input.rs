//! What a tenant admin sends about a key, parsed at the edge: its name, its scopes, its IP
//! allow-list and a rotation's grace period. Only these types reach the service.

use std::net::IpAddr;

use ipnet::IpNet;

use super::ApiKeyError;

const MAX_NAME: usize = 100;
const MAX_SCOPES: usize = 32;
const MAX_SCOPE_LENGTH: usize = 128;
const MAX_ALLOWED_IPS: usize = 64;
/// The grace period of a rotation unless the request names one: 30 minutes.
pub const DEFAULT_GRACE_SECONDS: u32 = 30 * 60;
/// The longest grace period a rotation may give the old secret: 7 days.
pub const MAX_GRACE_SECONDS: u32 = 7 * 24 * 60 * 60;

fn invalid(code: &'static str, message: impl Into<String>) -> ApiKeyError {
    ApiKeyError::Invalid {
        code,
        message: message.into(),
    }
}

/// A key's label: 1 to 100 characters, trimmed, without control characters.
#[derive(Debug, Clone)]
pub struct KeyName(String);

impl KeyName {
    pub fn parse(input: &str) -> Result<Self, ApiKeyError> {
        let name = input.trim();
        let length = name.chars().count();
        if length == 0 || length > MAX_NAME || name.chars().any(char::is_control) {
            return Err(invalid(
                "invalid_name",
                format!("name must be 1 to {MAX_NAME} characters, without control characters"),
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `pattern` is a permission pattern as the guard reads them (`authz::grants`):
/// `resource:action`, where the resource is `*` or dot-separated lower-case words
/// (`records.invoices`) and the action is `*` or one lower-case word.
pub fn is_permission_pattern(pattern: &str) -> bool {
    let word = |part: &str| {
        part.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    };
    let Some((resource, action)) = pattern.split_once(':') else {
        return false;
    };
    pattern.len() <= MAX_SCOPE_LENGTH
        && (resource == "*" || resource.split('.').all(word))
        && (action == "*" || (word(action) && !action.contains('-')))
}

/// A key's scopes: 1 to 32 permission patterns, deduplicated and sorted.
#[derive(Debug, Clone)]
pub struct Scopes(Vec<String>);

impl Scopes {
    pub fn parse(input: &[String]) -> Result<Self, ApiKeyError> {
        if input.is_empty() || input.len() > MAX_SCOPES {
            return Err(invalid(
                "invalid_scope",
                format!("scopes must list 1 to {MAX_SCOPES} permissions"),
            ));
        }
        let mut scopes = Vec::with_capacity(input.len());
        for scope in input {
            if !is_permission_pattern(scope) {
                let shown: String = scope.chars().take(MAX_SCOPE_LENGTH).collect();
                return Err(ApiKeyError::InvalidScope(shown));
            }
            scopes.push(scope.clone());
        }
        scopes.sort();
        scopes.dedup();
        Ok(Self(scopes))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

/// The source addresses a key may be used from: 1 to 64 CIDR ranges (a bare address is a
/// range of one). Ranges with host bits set (`10.1.2.3/8`) are refused as likely mistakes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAllowList(Vec<IpNet>);

fn parse_range(text: &str) -> Option<IpNet> {
    let text = text.trim();
    if let Ok(address) = text.parse::<IpAddr>() {
        return Some(IpNet::from(address.to_canonical()));
    }
    let range: IpNet = text.parse().ok()?;
    (range.trunc() == range).then_some(range)
}

impl IpAllowList {
    pub fn parse(input: &[String]) -> Result<Self, ApiKeyError> {
        if input.is_empty() || input.len() > MAX_ALLOWED_IPS {
            return Err(invalid(
                "invalid_cidr",
                format!(
                    "allowed_ips must list 1 to {MAX_ALLOWED_IPS} CIDR ranges; omit it to allow any address"
                ),
            ));
        }
        let mut ranges = Vec::with_capacity(input.len());
        for text in input {
            let range = parse_range(text).ok_or_else(|| {
                let shown: String = text.chars().take(64).collect();
                ApiKeyError::InvalidCidr(shown)
            })?;
            ranges.push(range);
        }
        ranges.sort();
        ranges.dedup();
        Ok(Self(ranges))
    }

    /// The list as stored; a stored entry that does not parse (it never should) is dropped,
    /// which only narrows the list.
    pub fn from_stored(stored: &[String]) -> Self {
        Self(stored.iter().filter_map(|text| parse_range(text)).collect())
    }

    /// Whether a request from `address` may use the key. IPv4 peers seen as IPv6-mapped
    /// addresses match IPv4 ranges.
    pub fn allows(&self, address: Option<IpAddr>) -> bool {
        address.is_some_and(|address| {
            let address = address.to_canonical();
            self.0.iter().any(|range| range.contains(&address))
        })
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(ToString::to_string).collect()
    }
}

/// How long a rotated-out secret keeps working.
#[derive(Debug, Clone, Copy)]
pub struct GracePeriod(u32);

impl GracePeriod {
    pub fn parse(seconds: Option<i64>) -> Result<Self, ApiKeyError> {
        match seconds {
            None => Ok(Self(DEFAULT_GRACE_SECONDS)),
            Some(seconds) => u32::try_from(seconds)
                .ok()
                .filter(|seconds| *seconds <= MAX_GRACE_SECONDS)
                .map(Self)
                .ok_or_else(|| {
                    invalid(
                        "invalid_grace",
                        format!("grace_seconds must be 0 to {MAX_GRACE_SECONDS}"),
                    )
                }),
        }
    }

    pub fn duration(self) -> time::Duration {
        time::Duration::seconds(i64::from(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| (*item).to_owned()).collect()
    }

    #[test]
    fn permission_patterns_follow_the_guards_syntax() {
        for good in [
            "usage:read",
            "records:*",
            "*:*",
            "*:read",
            "records.invoices:read",
            "telemetry:write",
            "api_keys:manage",
        ] {
            assert!(is_permission_pattern(good), "{good}");
        }
        for bad in [
            "",
            "usage",
            "usage:",
            ":read",
            "Usage:read",
            "usage:read:x",
            "usage :read",
            "records.:read",
            "records..x:read",
            "records*:read",
            "users:re-ad",
            "1records:read",
            "records.invoices';--:read",
            "ｕsage:read",
        ] {
            assert!(!is_permission_pattern(bad), "{bad}");
        }
        assert!(!is_permission_pattern(&format!("{}:read", "a".repeat(200))));
    }

    #[test]
    fn scopes_are_bounded_and_normalised() {
        let scopes =
            Scopes::parse(&strings(&["usage:read", "records:read", "usage:read"])).unwrap();
        assert_eq!(scopes.as_slice(), ["records:read", "usage:read"]);
        assert!(Scopes::parse(&[]).is_err());
        assert!(Scopes::parse(&strings(&["usage:read", "nope"])).is_err());
        let many: Vec<String> = (0..33).map(|i| format!("r{i}:read")).collect();
        assert!(Scopes::parse(&many).is_err());
    }

    #[test]
    fn allow_lists_parse_cidrs_and_match_addresses() {
        let list =
            IpAllowList::parse(&strings(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.7"])).unwrap();
        assert!(list.allows(Some("10.1.2.3".parse().unwrap())));
        assert!(list.allows(Some("192.0.2.7".parse().unwrap())));
        assert!(list.allows(Some("::ffff:10.9.9.9".parse().unwrap())));
        assert!(list.allows(Some("2001:db8::1".parse().unwrap())));
        assert!(!list.allows(Some("127.0.0.1".parse().unwrap())));
        assert!(!list.allows(Some("192.0.2.8".parse().unwrap())));
        assert!(!list.allows(None));
        assert_eq!(
            list.to_strings(),
            ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]
        );
        assert_eq!(IpAllowList::from_stored(&list.to_strings()), list);
        for bad in [
            &["10.0.0.0/33"][..],
            &["10.1.2.3/8"],
            &["not an address"],
            &["10.0.0.0/8; DROP TABLE api_keys"],
            &[],
        ] {
            assert!(IpAllowList::parse(&strings(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn grace_periods_default_to_thirty_minutes_and_are_bounded() {
        assert_eq!(
            GracePeriod::parse(None).unwrap().duration(),
            time::Duration::minutes(30)
        );
        assert_eq!(
            GracePeriod::parse(Some(0)).unwrap().duration(),
            time::Duration::ZERO
        );
        assert!(GracePeriod::parse(Some(-1)).is_err());
        assert!(GracePeriod::parse(Some(i64::from(MAX_GRACE_SECONDS) + 1)).is_err());
    }
}
