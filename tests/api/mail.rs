//! Mail delivery through the outbox, against the real test SMTP server (aiosmtpd, started by
//! deploy/local/test.sh) whose Maildir the tests read.

use std::time::Duration;

use data_plane::mail::{enqueue, EnqueueError, OutgoingMail};
use shared::tenant::{Tenant, TenantSlug};
use shared::tenant_context::{TenantDbError, TenantScope};
use tenantry_tests::{column, unique_address, TestApp, TestOptions};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;
use uuid::Uuid;

const MAIL_WAIT: Duration = Duration::from_secs(60);

async fn enqueue_committed(app: &TestApp, tenant: &Tenant, mail: &OutgoingMail) -> Uuid {
    let mut transaction = app
        .data
        .tenant_db
        .begin(&TenantScope::for_tenant(tenant))
        .await
        .unwrap();
    let id = enqueue(&mut transaction, tenant.id, mail).await.unwrap();
    transaction.commit().await.unwrap();
    id
}

fn notice(to: &str) -> OutgoingMail {
    OutgoingMail::new(to, "Your Tenantry notice", "Hello,\nthis is a notice.\n").unwrap()
}

#[derive(Debug)]
struct OutboxRow {
    attempts: i32,
    sent: bool,
    last_error: Option<String>,
    body_text: Option<String>,
}

async fn outbox_row(app: &TestApp, tenant: &Tenant, id: Uuid) -> OutboxRow {
    let row = app
        .superuser()
        .await
        .query_one(
            &format!(
                "SELECT attempts, sent_at IS NOT NULL, last_error, body_text
                 FROM {}.mail_outbox WHERE id = $1",
                tenant.schema.quoted()
            ),
            &[&id],
        )
        .await
        .unwrap();
    OutboxRow {
        attempts: row.get(0),
        sent: row.get(1),
        last_error: row.get(2),
        body_text: row.get(3),
    }
}

async fn is_marked_pending(app: &TestApp, tenant: &Tenant) -> bool {
    app.superuser()
        .await
        .query_opt(
            "SELECT 1 FROM control.mail_pending WHERE tenant_id = $1",
            &[&tenant.id],
        )
        .await
        .unwrap()
        .is_some()
}

/// An SMTP URL on which nothing listens: a mail server outage.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("smtp://127.0.0.1:{port}")
}

#[tokio::test]
async fn a_mail_enqueued_in_a_committed_transaction_reaches_the_smtp_server() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let to = unique_address("welcome");
    let body = "Hallo Zoë,\n\nbitte bestätige deine Adresse, indem du diesen Link öffnest: \
                https://acme.tenantry.test/verify?token=abc123\n\nGrüße\nAcme\n";
    let mail = OutgoingMail::new(&to, "Willkommen bei Acme, Zoë", body).unwrap();

    let mut transaction = app
        .data
        .tenant_db
        .begin(&TenantScope::for_tenant(&tenant))
        .await
        .unwrap();
    transaction
        .query_typed(
            "UPDATE tenant_profile SET display_name = $1 WHERE id = 1",
            &[(&"Acme (verified)", Type::TEXT)],
        )
        .await
        .unwrap();
    let id = enqueue(&mut transaction, tenant.id, &mail).await.unwrap();
    transaction.commit().await.unwrap();

    let mails = app.wait_for_mail(&to, MAIL_WAIT).await;
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let received = &mails[0];
    assert_eq!(received.to, to);
    assert_eq!(received.envelope_to, vec![to.clone()]);
    assert_eq!(received.from, "no-reply@localhost");
    assert_eq!(received.subject, "Willkommen bei Acme, Zoë");
    assert_eq!(
        received.body.replace("\r\n", "\n").trim_end(),
        body.trim_end()
    );
    assert_eq!(received.message_id, format!("{id}@localhost"));

    // The outbox records the delivery and forgets the body (it held a live link); the tenant
    // is no longer marked as having mail to send.
    let recorded = TestApp::eventually(MAIL_WAIT, || async {
        outbox_row(&app, &tenant, id).await.sent && !is_marked_pending(&app, &tenant).await
    })
    .await;
    assert!(
        recorded.is_some(),
        "{:?}",
        outbox_row(&app, &tenant, id).await
    );
    let row = outbox_row(&app, &tenant, id).await;
    assert_eq!(
        (row.attempts, row.last_error, row.body_text),
        (1, None, None)
    );
}

#[tokio::test]
async fn a_mail_enqueued_in_a_transaction_that_does_not_commit_is_never_sent() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let scope = TenantScope::for_tenant(&tenant);

    let rolled_back = unique_address("rolled-back");
    let mut transaction = app.data.tenant_db.begin(&scope).await.unwrap();
    transaction
        .query_typed(
            "UPDATE tenant_profile SET display_name = 'changed' WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    enqueue(&mut transaction, tenant.id, &notice(&rolled_back))
        .await
        .unwrap();
    transaction.rollback().await.unwrap();

    // A request cancelled part-way drops its transaction without committing.
    let dropped = unique_address("dropped");
    let mut transaction = app.data.tenant_db.begin(&scope).await.unwrap();
    enqueue(&mut transaction, tenant.id, &notice(&dropped))
        .await
        .unwrap();
    drop(transaction);

    // A mail committed afterwards is delivered; the others never existed.
    let committed = unique_address("committed");
    enqueue_committed(&app, &tenant, &notice(&committed)).await;
    app.wait_for_mail(&committed, MAIL_WAIT).await;
    assert!(app.mails_to(&rolled_back).is_empty());
    assert!(app.mails_to(&dropped).is_empty());

    let client = app.superuser().await;
    let left: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {}.mail_outbox WHERE to_address IN ($1, $2)",
                tenant.schema.quoted()
            ),
            &[&rolled_back, &dropped],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    let display_name: String = client
        .query_one(
            &format!(
                "SELECT display_name FROM {}.tenant_profile",
                tenant.schema.quoted()
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(display_name, "acme display");
}

#[tokio::test]
async fn enqueue_keeps_the_transaction_in_its_own_tenant_and_role() {
    let app = TestApp::spawn().await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let mut transaction = app
        .data
        .tenant_db
        .begin(&TenantScope::for_tenant(&acme))
        .await
        .unwrap();

    // A transaction of one tenant cannot put mail into another tenant's outbox.
    let refused = enqueue(
        &mut transaction,
        globex.id,
        &notice(&unique_address("other")),
    )
    .await;
    assert!(
        matches!(refused, Err(EnqueueError::WrongTenant { .. })),
        "{refused:?}"
    );

    enqueue(&mut transaction, acme.id, &notice(&unique_address("own")))
        .await
        .unwrap();
    // Marking the catalog ran as the login role; afterwards the transaction is back in the
    // tenant's role, which may not read the catalog.
    let user: String = transaction
        .query_typed("SELECT current_user::text", &[])
        .await
        .unwrap()[0]
        .get(0);
    assert_eq!(user, acme.role.as_str());
    match transaction
        .query_typed("SELECT count(*) FROM control.mail_pending", &[])
        .await
    {
        Err(TenantDbError::Query(error)) => {
            assert_eq!(error.code(), Some(&SqlState::INSUFFICIENT_PRIVILEGE))
        }
        other => panic!("the tenant role read the catalog: {other:?}"),
    }
    transaction.rollback().await.unwrap();
}

#[tokio::test]
async fn mail_survives_an_smtp_outage_and_another_node_delivers_it_once() {
    // The first node's mail server is down; it retries fast so the test need not wait.
    let app = TestApp::spawn_with(TestOptions {
        smtp_url: Some(closed_port_url()),
        mail_retry_base: Duration::from_millis(200),
        mail_retry_cap: Duration::from_secs(1),
        ..TestOptions::default()
    })
    .await;
    let tenant = app.create_tenant("acme").await;
    let to = unique_address("outage");
    let id = enqueue_committed(&app, &tenant, &notice(&to)).await;

    let failed = TestApp::eventually(MAIL_WAIT, || async {
        let row = outbox_row(&app, &tenant, id).await;
        row.attempts > 0 && row.last_error.is_some()
    })
    .await;
    assert!(
        failed.is_some(),
        "{:?}",
        outbox_row(&app, &tenant, id).await
    );
    let row = outbox_row(&app, &tenant, id).await;
    assert!(!row.sent, "{row:?}");
    assert!(row.body_text.is_some(), "an unsent mail lost its body");
    assert!(app.mails_to(&to).is_empty());
    assert!(is_marked_pending(&app, &tenant).await);

    // A node whose mail server works picks the mail up.
    let (_node, _url) = app.spawn_data_node(&TestOptions::default()).await;
    let mails = app.wait_for_mail(&to, MAIL_WAIT).await;
    assert_eq!(mails[0].message_id, format!("{id}@localhost"));
    let sent = TestApp::eventually(MAIL_WAIT, || async {
        outbox_row(&app, &tenant, id).await.sent
    })
    .await;
    assert!(sent.is_some());
    // Marked sent, so no node sends it again: exactly one copy arrived.
    assert_eq!(app.mails_to(&to).len(), 1);
    let row = outbox_row(&app, &tenant, id).await;
    assert!(row.attempts >= 2, "{row:?}");
    assert_eq!(row.last_error, None);
}

#[tokio::test]
async fn two_nodes_draining_one_tenant_deliver_each_mail_exactly_once() {
    let app = TestApp::spawn().await;
    let (_node, _url) = app.spawn_data_node(&TestOptions::default()).await;
    let tenant = app.create_tenant("acme").await;
    let addresses: Vec<String> = (0..24)
        .map(|index| unique_address(&format!("burst{index}")))
        .collect();
    let scope = TenantScope::for_tenant(&tenant);
    // Several transactions, so both nodes are woken while the outbox fills.
    for chunk in addresses.chunks(4) {
        let mut transaction = app.data.tenant_db.begin(&scope).await.unwrap();
        for to in chunk {
            enqueue(&mut transaction, tenant.id, &notice(to))
                .await
                .unwrap();
        }
        transaction.commit().await.unwrap();
    }

    for to in &addresses {
        app.wait_for_mail(to, MAIL_WAIT).await;
    }
    let drained = TestApp::eventually(MAIL_WAIT, || async {
        !is_marked_pending(&app, &tenant).await
    })
    .await;
    assert!(drained.is_some(), "the tenant is still marked as pending");
    for to in &addresses {
        assert_eq!(app.mails_to(to).len(), 1, "{to}");
    }
    let attempts: Vec<i32> = column(
        &app.superuser().await,
        &format!(
            "SELECT attempts FROM {}.mail_outbox WHERE sent_at IS NOT NULL",
            tenant.schema.quoted()
        ),
    )
    .await;
    assert_eq!(attempts, vec![1; addresses.len()]);
}

#[tokio::test]
async fn the_pending_mark_of_a_deleted_tenant_is_dropped_and_nothing_is_sent() {
    // No mail worker on the first node: the mail waits in the outbox.
    let app = TestApp::spawn_with(TestOptions {
        smtp_url: None,
        ..TestOptions::default()
    })
    .await;
    let tenant = app.create_tenant("doomed").await;
    let to = unique_address("doomed");
    enqueue_committed(&app, &tenant, &notice(&to)).await;
    assert!(is_marked_pending(&app, &tenant).await);

    control_plane::tenants::service::delete(
        &app.control,
        &TenantSlug::parse("doomed").unwrap(),
        None,
    )
    .await
    .unwrap();
    let (_node, _url) = app.spawn_data_node(&TestOptions::default()).await;
    let dropped = TestApp::eventually(MAIL_WAIT, || async {
        !is_marked_pending(&app, &tenant).await
    })
    .await;
    assert!(dropped.is_some(), "the deleted tenant is still marked");
    assert!(app.mails_to(&to).is_empty());
}

async fn generation(app: &TestApp, tenant: &Tenant) -> i64 {
    app.superuser()
        .await
        .query_one(
            "SELECT generation FROM control.mail_pending WHERE tenant_id = $1",
            &[&tenant.id],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_pending_mark_made_again_never_reuses_a_generation_a_worker_read() {
    // No mail worker: the test plays the workers' part on the catalog itself.
    let app = TestApp::spawn_with(TestOptions {
        smtp_url: None,
        ..TestOptions::default()
    })
    .await;
    let tenant = app.create_tenant("acme").await;
    enqueue_committed(&app, &tenant, &notice(&unique_address("first"))).await;
    let read_by_slow_worker = generation(&app, &tenant).await;
    enqueue_committed(&app, &tenant, &notice(&unique_address("second"))).await;
    let read_by_fast_worker = generation(&app, &tenant).await;
    assert_ne!(read_by_fast_worker, read_by_slow_worker);

    // The fast worker sent everything and clears the mark; a new mail makes it again.
    let client = app.superuser().await;
    let clear = "DELETE FROM control.mail_pending WHERE tenant_id = $1 AND generation = $2";
    assert_eq!(
        client
            .execute(clear, &[&tenant.id, &read_by_fast_worker])
            .await
            .unwrap(),
        1
    );
    enqueue_committed(&app, &tenant, &notice(&unique_address("third"))).await;
    let remade = generation(&app, &tenant).await;
    assert!(
        remade != read_by_slow_worker && remade != read_by_fast_worker,
        "{remade}"
    );

    // The slow worker's clear, with the generation it read before, leaves the new mark.
    assert_eq!(
        client
            .execute(clear, &[&tenant.id, &read_by_slow_worker])
            .await
            .unwrap(),
        0
    );
    assert!(is_marked_pending(&app, &tenant).await);
}
