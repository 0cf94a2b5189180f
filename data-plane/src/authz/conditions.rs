//! Conditions on a role assignment: where from (source IP ranges) and when (a weekly time
//! window, and an absolute validity period). Outside its conditions an assignment grants
//! nothing.
//!
//! Clients send [`ConditionsInput`]; [`Conditions::parse`] turns it into the checked form,
//! which is what is stored (as JSON, in `user_roles.conditions`) and returned. A stored value
//! that no longer parses grants nothing (fail closed).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use time::{OffsetDateTime, UtcOffset, Weekday};

/// Most IP ranges one assignment may list.
const MAX_RANGES: usize = 32;

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionsInput {
    #[serde(default)]
    pub ip_ranges: Option<Vec<String>>,
    #[serde(default)]
    pub time_window: Option<TimeWindowInput>,
    #[serde(default)]
    pub not_before: Option<String>,
    #[serde(default)]
    pub not_after: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeWindowInput {
    /// `mon` … `sun`; absent or empty: every day.
    #[serde(default)]
    pub days: Vec<String>,
    /// `HH:MM`, inclusive.
    pub start: String,
    /// `HH:MM`, exclusive; earlier than `start` for a window across midnight.
    pub end: String,
    /// `+HH:MM` or `-HH:MM`; absent: UTC.
    #[serde(default)]
    pub utc_offset: Option<String>,
}

/// Checked conditions. Serialises to the same shape as [`ConditionsInput`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conditions {
    ip_ranges: Vec<IpNet>,
    time_window: Option<TimeWindow>,
    not_before: Option<OffsetDateTime>,
    not_after: Option<OffsetDateTime>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct TimeWindow {
    /// Bit `n` set: weekday `n` (Monday = 0) is in the window.
    days: u8,
    start_minute: u16,
    end_minute: u16,
    offset: UtcOffset,
}

const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const EVERY_DAY: u8 = 0b111_1111;

fn minute_of_day(raw: &str) -> Result<u16, String> {
    let invalid = || format!("'{raw}' is not a time of day (HH:MM, 00:00 to 24:00)");
    let (hours, minutes) = raw.split_once(':').ok_or_else(invalid)?;
    if hours.len() != 2 || minutes.len() != 2 {
        return Err(invalid());
    }
    let hours: u16 = hours.parse().map_err(|_| invalid())?;
    let minutes: u16 = minutes.parse().map_err(|_| invalid())?;
    if minutes >= 60 || hours > 24 || (hours == 24 && minutes != 0) {
        return Err(invalid());
    }
    Ok(hours * 60 + minutes)
}

fn utc_offset(raw: &str) -> Result<UtcOffset, String> {
    let invalid = || format!("'{raw}' is not a UTC offset (+HH:MM or -HH:MM)");
    let (sign, rest) = match raw.as_bytes().first() {
        Some(b'+') => (1i8, &raw[1..]),
        Some(b'-') => (-1i8, &raw[1..]),
        _ => return Err(invalid()),
    };
    let (hours, minutes) = rest.split_once(':').ok_or_else(invalid)?;
    if hours.len() != 2 || minutes.len() != 2 {
        return Err(invalid());
    }
    let hours: i8 = hours.parse().map_err(|_| invalid())?;
    let minutes: i8 = minutes.parse().map_err(|_| invalid())?;
    if hours > 14 || minutes >= 60 {
        return Err(invalid());
    }
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).map_err(|_| invalid())
}

fn timestamp(field: &str, raw: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("{field} must be an RFC 3339 timestamp"))
}

fn weekday_index(day: Weekday) -> u8 {
    day.number_days_from_monday()
}

impl Conditions {
    /// Checks what a client sent; `Ok(None)` when it sets no condition at all.
    pub fn parse(input: &ConditionsInput) -> Result<Option<Self>, String> {
        let ranges = input.ip_ranges.as_deref().unwrap_or_default();
        if ranges.len() > MAX_RANGES {
            return Err(format!("at most {MAX_RANGES} ip_ranges"));
        }
        if input.ip_ranges.as_ref().is_some_and(Vec::is_empty) {
            return Err("ip_ranges must not be empty (omit it to allow every address)".into());
        }
        let ip_ranges = ranges
            .iter()
            .map(|raw| {
                raw.trim()
                    .parse::<IpNet>()
                    .map(|net| net.trunc())
                    .map_err(|_| format!("'{raw}' is not an IP range in CIDR notation"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let time_window = input
            .time_window
            .as_ref()
            .map(|window| {
                let mut days = 0u8;
                for day in &window.days {
                    let index = DAY_NAMES
                        .iter()
                        .position(|name| name.eq_ignore_ascii_case(day.trim()))
                        .ok_or_else(|| format!("'{day}' is not a day (mon … sun)"))?;
                    days |= 1 << index;
                }
                let start_minute = minute_of_day(&window.start)?;
                let end_minute = minute_of_day(&window.end)?;
                if start_minute == end_minute {
                    return Err("time_window start and end must differ".to_owned());
                }
                Ok(TimeWindow {
                    days: if days == 0 { EVERY_DAY } else { days },
                    start_minute,
                    end_minute,
                    offset: window
                        .utc_offset
                        .as_deref()
                        .map(utc_offset)
                        .transpose()?
                        .unwrap_or(UtcOffset::UTC),
                })
            })
            .transpose()?;
        let not_before = input
            .not_before
            .as_deref()
            .map(|raw| timestamp("not_before", raw))
            .transpose()?;
        let not_after = input
            .not_after
            .as_deref()
            .map(|raw| timestamp("not_after", raw))
            .transpose()?;
        if let (Some(from), Some(until)) = (not_before, not_after) {
            if from >= until {
                return Err("not_before must be earlier than not_after".into());
            }
        }
        let conditions = Self {
            ip_ranges,
            time_window,
            not_before,
            not_after,
        };
        Ok((conditions != Self::none()).then_some(conditions))
    }

    fn none() -> Self {
        Self {
            ip_ranges: Vec::new(),
            time_window: None,
            not_before: None,
            not_after: None,
        }
    }

    /// Reads conditions as stored; `None` if they no longer parse.
    pub fn from_stored(value: &serde_json::Value) -> Option<Self> {
        let input: ConditionsInput = serde_json::from_value(value.clone()).ok()?;
        Self::parse(&input).ok().flatten()
    }

    /// Whether the assignment grants anything to a request from `ip` at `now`.
    pub fn admit(&self, ip: Option<IpAddr>, now: OffsetDateTime) -> bool {
        if !self.ip_ranges.is_empty() {
            let Some(ip) = ip.map(|ip| ip.to_canonical()) else {
                return false;
            };
            if !self.ip_ranges.iter().any(|range| range.contains(&ip)) {
                return false;
            }
        }
        if self.not_before.is_some_and(|from| now < from)
            || self.not_after.is_some_and(|until| now >= until)
        {
            return false;
        }
        match &self.time_window {
            None => true,
            Some(window) => {
                let local = now.to_offset(window.offset);
                let minute = u16::from(local.hour()) * 60 + u16::from(local.minute());
                let in_day = window.days & (1 << weekday_index(local.weekday())) != 0;
                let in_hours = if window.start_minute < window.end_minute {
                    (window.start_minute..window.end_minute).contains(&minute)
                } else {
                    minute >= window.start_minute || minute < window.end_minute
                };
                in_day && in_hours
            }
        }
    }
}

fn format_minute(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn format_offset(offset: UtcOffset) -> String {
    let (hours, minutes, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!(
        "{sign}{:02}:{:02}",
        hours.unsigned_abs(),
        minutes.unsigned_abs()
    )
}

#[derive(Serialize)]
struct TimeWindowView {
    days: Vec<&'static str>,
    start: String,
    end: String,
    utc_offset: String,
}

impl Serialize for Conditions {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let rfc3339 = |at: OffsetDateTime| {
            at.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        let mut map = serializer.serialize_map(None)?;
        if !self.ip_ranges.is_empty() {
            let ranges: Vec<String> = self.ip_ranges.iter().map(ToString::to_string).collect();
            map.serialize_entry("ip_ranges", &ranges)?;
        }
        if let Some(window) = &self.time_window {
            let days = DAY_NAMES
                .iter()
                .enumerate()
                .filter(|(index, _)| window.days & (1 << index) != 0)
                .map(|(_, name)| *name)
                .collect();
            map.serialize_entry(
                "time_window",
                &TimeWindowView {
                    days,
                    start: format_minute(window.start_minute),
                    end: format_minute(window.end_minute),
                    utc_offset: format_offset(window.offset),
                },
            )?;
        }
        if let Some(at) = self.not_before {
            map.serialize_entry("not_before", &rfc3339(at))?;
        }
        if let Some(at) = self.not_after {
            map.serialize_entry("not_after", &rfc3339(at))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn parse(json: serde_json::Value) -> Result<Option<Conditions>, String> {
        let input: ConditionsInput = serde_json::from_value(json).map_err(|e| e.to_string())?;
        Conditions::parse(&input)
    }

    #[test]
    fn ip_ranges_admit_only_addresses_inside_them() {
        let conditions = parse(serde_json::json!({"ip_ranges": ["10.0.0.0/8", "2001:db8::/32"]}))
            .unwrap()
            .unwrap();
        let now = datetime!(2026-11-23 12:00 UTC);
        assert!(conditions.admit(Some("10.1.2.3".parse().unwrap()), now));
        assert!(conditions.admit(Some("::ffff:10.1.2.3".parse().unwrap()), now));
        assert!(conditions.admit(Some("2001:db8::1".parse().unwrap()), now));
        assert!(!conditions.admit(Some("127.0.0.1".parse().unwrap()), now));
        assert!(!conditions.admit(None, now));
    }

    #[test]
    fn a_weekly_window_admits_its_days_and_hours_in_its_offset() {
        let conditions = parse(serde_json::json!({"time_window": {
            "days": ["mon", "tue", "wed", "thu", "fri"],
            "start": "09:00", "end": "17:00", "utc_offset": "+02:00"}}))
        .unwrap()
        .unwrap();
        // Monday 2026-11-23.
        assert!(conditions.admit(None, datetime!(2026-11-23 07:00 UTC)));
        assert!(conditions.admit(None, datetime!(2026-11-23 14:59 UTC)));
        assert!(!conditions.admit(None, datetime!(2026-11-23 15:00 UTC)));
        assert!(!conditions.admit(None, datetime!(2026-11-23 06:59 UTC)));
        assert!(!conditions.admit(None, datetime!(2026-11-22 10:00 UTC)));
    }

    #[test]
    fn a_window_across_midnight_and_a_validity_period() {
        let night = parse(serde_json::json!({"time_window": {"start": "22:00", "end": "06:00"}}))
            .unwrap()
            .unwrap();
        assert!(night.admit(None, datetime!(2026-11-23 23:30 UTC)));
        assert!(night.admit(None, datetime!(2026-11-23 05:59 UTC)));
        assert!(!night.admit(None, datetime!(2026-11-23 12:00 UTC)));
        let period = parse(serde_json::json!({
            "not_before": "2026-11-23T00:00:00Z", "not_after": "2026-11-24T00:00:00Z"}))
        .unwrap()
        .unwrap();
        assert!(period.admit(None, datetime!(2026-11-23 12:00 UTC)));
        assert!(!period.admit(None, datetime!(2026-11-24 00:00 UTC)));
        assert!(!period.admit(None, datetime!(2026-11-22 23:59 UTC)));
    }

    #[test]
    fn bad_conditions_are_refused_and_stored_ones_round_trip() {
        for bad in [
            serde_json::json!({"ip_ranges": ["10.0.0.0/33"]}),
            serde_json::json!({"ip_ranges": ["10.0.0.0/8'; DROP TABLE roles; --"]}),
            serde_json::json!({"ip_ranges": []}),
            serde_json::json!({"time_window": {"start": "25:00", "end": "06:00"}}),
            serde_json::json!({"time_window": {"start": "09:00", "end": "09:00"}}),
            serde_json::json!({"time_window": {"days": ["someday"], "start": "09:00", "end": "10:00"}}),
            serde_json::json!({"time_window": {"start": "09:00", "end": "10:00", "utc_offset": "2"}}),
            serde_json::json!({"not_before": "tomorrow"}),
            serde_json::json!({"not_before": "2026-11-24T00:00:00Z", "not_after": "2026-11-23T00:00:00Z"}),
            serde_json::json!({"unknown": 1}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad} was accepted");
        }
        assert_eq!(parse(serde_json::json!({})).unwrap(), None);
        let conditions = parse(serde_json::json!({
            "ip_ranges": ["10.1.2.3/8"],
            "time_window": {"days": ["sat", "mon"], "start": "09:00", "end": "17:30", "utc_offset": "-05:30"},
            "not_after": "2027-01-01T00:00:00Z"}))
        .unwrap()
        .unwrap();
        let stored = serde_json::to_value(&conditions).unwrap();
        assert_eq!(stored["ip_ranges"][0], "10.0.0.0/8");
        assert_eq!(
            stored["time_window"]["days"],
            serde_json::json!(["mon", "sat"])
        );
        assert_eq!(stored["time_window"]["utc_offset"], "-05:30");
        assert_eq!(Conditions::from_stored(&stored), Some(conditions));
    }
}
