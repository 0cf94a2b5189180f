//! Change notifications from the control plane to data-plane nodes, over Postgres
//! `NOTIFY`/`LISTEN`.
//!
//! Every kind of change a node must hear of is one variant of [`Change`]. Its wire form (a
//! channel and a text payload) is written by [`Change::channel`] and [`Change::payload`] and
//! read back by [`Change::parse`], and nowhere else: producers hand a `Change` to [`notify`]
//! (a catalog transaction), [`crate::tenant_context::TenantTransaction::notify`] (a tenant
//! transaction) or a pipelined statement built from [`Notifications`]; listeners parse.
//!
//! The wire format is that of earlier releases, byte for byte, so nodes of the previous
//! version understand this one's notifications during a roll-out, and the other way round.
//!
//! Notifications are sent inside the transaction that makes the change, so a node never hears
//! of a change that was rolled back, and hears of a committed one within milliseconds. A node
//! that loses its listening connection must drop everything it cached, because it may have
//! missed notifications meanwhile.

use deadpool_postgres::GenericClient;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

/// Tenant status, name, plan, domains or quotas changed. Payload: the tenant's slug.
pub const TENANT_CHANGED: &str = "tenantry_tenant_changed";

/// A tenant's mail outbox has new mail; data-plane mail workers wake up. Payload: the
/// tenant's id. Sent by whoever enqueues mail, inside the enqueuing transaction.
pub const MAIL_PENDING: &str = "tenantry_mail";

/// Identity state that nodes cache changed. Payloads: `session:<tenant id>:<session id>` (a
/// session ended), `keys:<tenant id>` (signing keys rotated), `authz:<tenant id>:<user id>`
/// (a user's roles or status changed), `authz:<tenant id>` (a role changed),
/// `api_key:<tenant id>:<key prefix>` (an API key revoked or rotated),
/// `collection:<tenant id>:<name>` (a collection's settings changed).
pub const IDENTITY_CHANGED: &str = "tenantry_identity_changed";

/// Tenant settings that nodes cache changed. Payload: `cors:<tenant id>` (the tenant's CORS
/// allowed origins), or `clusters` (a Postgres cluster was registered: nodes start serving
/// it).
pub const SETTINGS_CHANGED: &str = "tenantry_settings_changed";

/// One change a data-plane node must hear of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The tenant's status, name, plan, domains or quotas changed.
    Tenant { slug: String },
    /// The tenant's mail outbox has unsent mail.
    MailPending { tenant: Uuid },
    /// A session ended (signed out, revoked, pushed out by the session limit).
    SessionEnded { tenant: Uuid, session: Uuid },
    /// The tenant's token signing keys rotated.
    SigningKeys { tenant: Uuid },
    /// One user's roles or status changed: their effective permissions are stale.
    Permissions { tenant: Uuid, user: Uuid },
    /// A role changed: every user's effective permissions in the tenant are stale.
    TenantPermissions { tenant: Uuid },
    /// An API key was revoked or rotated. The key is named by its public prefix.
    ApiKey { tenant: Uuid, prefix: String },
    /// A collection's settings changed.
    Collection { tenant: Uuid, name: String },
    /// The tenant's CORS allowed origins changed.
    Cors { tenant: Uuid },
    /// The cluster registry changed (a cluster was added).
    Clusters,
}

/// A notification that is not one of ours: an unknown channel or a payload that does not
/// match its channel's shape. The listener logs it and ignores it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unrecognised notification on {channel}: {payload:?}")]
pub struct UnknownChange {
    pub channel: String,
    pub payload: String,
}

impl Change {
    /// The channel the change is published on.
    pub fn channel(&self) -> &'static str {
        match self {
            Self::Tenant { .. } => TENANT_CHANGED,
            Self::MailPending { .. } => MAIL_PENDING,
            Self::Cors { .. } | Self::Clusters => SETTINGS_CHANGED,
            Self::SessionEnded { .. }
            | Self::SigningKeys { .. }
            | Self::Permissions { .. }
            | Self::TenantPermissions { .. }
            | Self::ApiKey { .. }
            | Self::Collection { .. } => IDENTITY_CHANGED,
        }
    }

    /// The payload, as the channel's documentation above describes it.
    pub fn payload(&self) -> String {
        match self {
            Self::Tenant { slug } => slug.clone(),
            Self::MailPending { tenant } => tenant.to_string(),
            Self::SessionEnded { tenant, session } => format!("session:{tenant}:{session}"),
            Self::SigningKeys { tenant } => format!("keys:{tenant}"),
            Self::Permissions { tenant, user } => format!("authz:{tenant}:{user}"),
            Self::TenantPermissions { tenant } => format!("authz:{tenant}"),
            Self::ApiKey { tenant, prefix } => format!("api_key:{tenant}:{prefix}"),
            Self::Collection { tenant, name } => format!("collection:{tenant}:{name}"),
            Self::Cors { tenant } => format!("cors:{tenant}"),
            Self::Clusters => "clusters".to_owned(),
        }
    }

    /// Reads a notification back. Anything that [`payload`](Self::payload) would not have
    /// written on that channel is refused.
    pub fn parse(channel: &str, payload: &str) -> Result<Self, UnknownChange> {
        let unknown = || UnknownChange {
            channel: channel.to_owned(),
            payload: payload.to_owned(),
        };
        let parsed = match channel {
            TENANT_CHANGED => parse_slug(payload).map(|slug| Self::Tenant { slug }),
            MAIL_PENDING => parse_id(payload).map(|tenant| Self::MailPending { tenant }),
            SETTINGS_CHANGED => match payload.split_once(':') {
                Some(("cors", tenant)) => parse_id(tenant).map(|tenant| Self::Cors { tenant }),
                None if payload == "clusters" => Some(Self::Clusters),
                _ => None,
            },
            IDENTITY_CHANGED => parse_identity(payload),
            _ => None,
        };
        parsed.ok_or_else(unknown)
    }
}

fn parse_identity(payload: &str) -> Option<Change> {
    let (kind, rest) = payload.split_once(':')?;
    // `<tenant id>` alone, or `<tenant id>:<item>`; a uuid holds no ':'.
    let (tenant, item) = match rest.split_once(':') {
        Some((tenant, item)) => (parse_id(tenant)?, Some(item)),
        None => (parse_id(rest)?, None),
    };
    // Names (a key's prefix, a collection's name) are taken whole, whatever they hold.
    let name = |item: &str| (!item.is_empty()).then(|| item.to_owned());
    match (kind, item) {
        ("session", Some(session)) => Some(Change::SessionEnded {
            tenant,
            session: parse_id(session)?,
        }),
        ("keys", None) => Some(Change::SigningKeys { tenant }),
        ("authz", Some(user)) => Some(Change::Permissions {
            tenant,
            user: parse_id(user)?,
        }),
        ("authz", None) => Some(Change::TenantPermissions { tenant }),
        ("api_key", Some(prefix)) => Some(Change::ApiKey {
            tenant,
            prefix: name(prefix)?,
        }),
        ("collection", Some(collection)) => Some(Change::Collection {
            tenant,
            name: name(collection)?,
        }),
        _ => None,
    }
}

/// A uuid in its hyphenated form only, as `Uuid`'s `Display` writes it.
fn parse_id(text: &str) -> Option<Uuid> {
    Uuid::try_parse(text)
        .ok()
        .filter(|id| id.hyphenated().to_string() == text)
}

/// The characters and length a slug may have. Not [`crate::tenant::TenantSlug::parse`]: a
/// slug that predates a newer rule (a word reserved later) must still evict its tenant.
fn parse_slug(text: &str) -> Option<String> {
    let plausible = (1..=63).contains(&text.len())
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    plausible.then(|| text.to_owned())
}

/// The statement that publishes any number of changes in one round trip. Parameters: `$1` the
/// channels, `$2` the payloads (both text arrays of equal length); see [`Notifications`].
pub const NOTIFY: &str = "SELECT pg_notify(change.channel, change.payload)
     FROM unnest($1::text[], $2::text[]) AS change(channel, payload)";

/// The parameters of [`NOTIFY`] for some changes, for callers that pipeline it with other
/// statements (provisioning) or run it through their own transaction type.
pub struct Notifications {
    channels: Vec<&'static str>,
    payloads: Vec<String>,
}

impl Notifications {
    pub fn new(changes: &[Change]) -> Self {
        Self {
            channels: changes.iter().map(Change::channel).collect(),
            payloads: changes.iter().map(Change::payload).collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.channels.is_empty()
    }

    /// The parameters of [`NOTIFY`], typed (no prepare round trip needed).
    pub fn params(&self) -> [(&(dyn ToSql + Sync), Type); 2] {
        [
            (&self.channels, Type::TEXT_ARRAY),
            (&self.payloads, Type::TEXT_ARRAY),
        ]
    }
}

/// Publishes `change` when the surrounding transaction commits (nothing if it rolls back).
pub async fn notify(
    transaction: &impl GenericClient,
    change: &Change,
) -> Result<(), tokio_postgres::Error> {
    let notifications = Notifications::new(std::slice::from_ref(change));
    transaction
        .execute(NOTIFY, &[&notifications.channels, &notifications.payloads])
        .await?;
    Ok(())
}

/// A dedicated connection `LISTEN`ing on some channels. Both the data plane's cache listener and
/// its mail worker use one; each decides itself what a lost connection means.
pub struct Listener {
    _client: tokio_postgres::Client,
    messages: tokio::sync::mpsc::UnboundedReceiver<
        Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>,
    >,
    driver: tokio::task::JoinHandle<()>,
}

/// Drives `connection`, sending its messages (notifications, notices, its end) to `sink`.
fn forward_messages<S, T>(
    mut connection: tokio_postgres::Connection<S, T>,
    sink: tokio::sync::mpsc::UnboundedSender<
        Result<tokio_postgres::AsyncMessage, tokio_postgres::Error>,
    >,
) -> tokio::task::JoinHandle<()>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use futures_util::StreamExt as _;
    tokio::spawn(async move {
        let mut stream = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = stream.next().await {
            if sink.send(message).is_err() {
                break;
            }
        }
    })
}

impl Listener {
    /// Connects (TLS or not as `crate::db::tls` decides) and listens on `channels` (our own
    /// constant names, never client input).
    pub async fn connect(
        config: &tokio_postgres::Config,
        channels: &[&str],
    ) -> Result<Self, tokio_postgres::Error> {
        let (message_tx, messages) = tokio::sync::mpsc::unbounded_channel();
        let (client, driver) = match crate::db::tls::for_connection(config) {
            Some((config, tls)) => {
                let (client, connection) = config.connect(tls).await?;
                (client, forward_messages(connection, message_tx))
            }
            None => {
                let (client, connection) = config.connect(tokio_postgres::NoTls).await?;
                (client, forward_messages(connection, message_tx))
            }
        };
        let listen: String = channels
            .iter()
            .map(|channel| format!("LISTEN {channel};"))
            .collect();
        client.batch_execute(&listen).await?;
        Ok(Self {
            _client: client,
            messages,
            driver,
        })
    }

    /// The next notification; `None` once the connection has closed. Notices are logged.
    pub async fn next(
        &mut self,
    ) -> Option<Result<tokio_postgres::Notification, tokio_postgres::Error>> {
        loop {
            match self.messages.recv().await? {
                Ok(tokio_postgres::AsyncMessage::Notification(notification)) => {
                    return Some(Ok(notification))
                }
                Ok(tokio_postgres::AsyncMessage::Notice(notice)) => {
                    tracing::debug!(%notice, "postgres notice");
                }
                Ok(_) => {}
                Err(error) => return Some(Err(error)),
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<Change> {
        let tenant = Uuid::now_v7();
        let other = Uuid::now_v7();
        vec![
            Change::Tenant {
                slug: "acme-2".to_owned(),
            },
            Change::MailPending { tenant },
            Change::SessionEnded {
                tenant,
                session: other,
            },
            Change::SigningKeys { tenant },
            Change::Permissions {
                tenant,
                user: other,
            },
            Change::TenantPermissions { tenant },
            Change::ApiKey {
                tenant,
                prefix: "tk_AbC123".to_owned(),
            },
            Change::Collection {
                tenant,
                name: "orders".to_owned(),
            },
            Change::Cors { tenant },
            Change::Clusters,
        ]
    }

    #[test]
    fn every_change_survives_a_round_trip() {
        for change in every_kind() {
            let parsed = Change::parse(change.channel(), &change.payload());
            assert_eq!(parsed, Ok(change));
        }
    }

    #[test]
    fn the_wire_format_is_that_of_earlier_releases() {
        let tenant = Uuid::parse_str("0190f5a4-7c1e-7b3a-9d2e-0123456789ab").unwrap();
        let user = Uuid::parse_str("0190f5a4-7c1e-7b3a-9d2e-ba9876543210").unwrap();
        let t = "0190f5a4-7c1e-7b3a-9d2e-0123456789ab";
        let u = "0190f5a4-7c1e-7b3a-9d2e-ba9876543210";
        let cases = [
            (
                Change::Tenant {
                    slug: "acme".to_owned(),
                },
                TENANT_CHANGED,
                "acme".to_owned(),
            ),
            (Change::MailPending { tenant }, MAIL_PENDING, t.to_owned()),
            (
                Change::SessionEnded {
                    tenant,
                    session: user,
                },
                IDENTITY_CHANGED,
                format!("session:{t}:{u}"),
            ),
            (
                Change::SigningKeys { tenant },
                IDENTITY_CHANGED,
                format!("keys:{t}"),
            ),
            (
                Change::Permissions { tenant, user },
                IDENTITY_CHANGED,
                format!("authz:{t}:{u}"),
            ),
            (
                Change::TenantPermissions { tenant },
                IDENTITY_CHANGED,
                format!("authz:{t}"),
            ),
            (
                Change::ApiKey {
                    tenant,
                    prefix: "tk_x".to_owned(),
                },
                IDENTITY_CHANGED,
                format!("api_key:{t}:tk_x"),
            ),
            (
                Change::Collection {
                    tenant,
                    name: "orders".to_owned(),
                },
                IDENTITY_CHANGED,
                format!("collection:{t}:orders"),
            ),
            (
                Change::Cors { tenant },
                SETTINGS_CHANGED,
                format!("cors:{t}"),
            ),
        ];
        for (change, channel, payload) in cases {
            assert_eq!((change.channel(), change.payload()), (channel, payload));
        }
    }

    #[test]
    fn garbage_is_refused() {
        let t = Uuid::now_v7();
        let garbage = [
            ("tenantry_unknown", t.to_string()),
            (TENANT_CHANGED, String::new()),
            (TENANT_CHANGED, "Acme Corp".to_owned()),
            (TENANT_CHANGED, "acme:x".to_owned()),
            (MAIL_PENDING, "not-a-uuid".to_owned()),
            (MAIL_PENDING, t.simple().to_string()),
            (SETTINGS_CHANGED, format!("cors:{t}:extra")),
            (SETTINGS_CHANGED, format!("quota:{t}")),
            (SETTINGS_CHANGED, "cors:".to_owned()),
            (SETTINGS_CHANGED, "clusters:x".to_owned()),
            (TENANT_CHANGED, "clusters ".to_owned()),
            (IDENTITY_CHANGED, String::new()),
            (IDENTITY_CHANGED, "session".to_owned()),
            (IDENTITY_CHANGED, format!("session:{t}")),
            (IDENTITY_CHANGED, format!("session:{t}:nope")),
            (IDENTITY_CHANGED, format!("session:{t}:{t}:{t}")),
            (IDENTITY_CHANGED, format!("keys:{t}:{t}")),
            (IDENTITY_CHANGED, "authz:not-a-uuid".to_owned()),
            (IDENTITY_CHANGED, format!("api_key:{t}")),
            (IDENTITY_CHANGED, format!("api_key:{t}:")),
            (IDENTITY_CHANGED, format!("collection:{t}:")),
            (IDENTITY_CHANGED, format!("unknown:{t}")),
            (IDENTITY_CHANGED, format!("cors:{t}")),
        ];
        for (channel, payload) in garbage {
            assert!(
                Change::parse(channel, &payload).is_err(),
                "{channel} {payload:?} was accepted"
            );
        }
    }

    #[test]
    fn names_are_taken_whole() {
        let tenant = Uuid::now_v7();
        let change = Change::ApiKey {
            tenant,
            prefix: "a:b".to_owned(),
        };
        assert_eq!(
            Change::parse(change.channel(), &change.payload()),
            Ok(change)
        );
    }
}
