//! Unit tests of the PostgreSQL client that need no server: passwords kept out of
//! messages, and an unreachable server named in one clear error.

use super::*;

#[test]
fn passwords_never_reach_messages() {
    assert_eq!(
        redact_url("postgres://vigie:s3cr@t@db.internal:5432/registry"),
        "postgres://vigie@db.internal:5432/registry"
    );
    assert_eq!(
        redact_url("postgresql://db:5432/registry?user=vigie&password=hunter2&sslmode=disable"),
        "postgresql://db:5432/registry?user=vigie&sslmode=disable"
    );
    assert_eq!(redact_url("postgres://vigie@db/registry"), "postgres://vigie@db/registry");
}

#[test]
fn an_unreachable_server_is_a_message_naming_it() {
    // Port 1 on the loopback interface: nothing listens there.
    let options = PgOptions { connect_timeout: Duration::from_secs(5), ..PgOptions::default() };
    let Err(error) = PgClient::connect("postgres://vigie:hunter2@127.0.0.1:1/registry", options)
    else {
        panic!("connected to port 1");
    };
    let message = error.to_string();
    assert!(
        message.starts_with("postgresql postgres://vigie@127.0.0.1:1/registry: cannot connect"),
        "{message}"
    );
    assert!(!message.contains("hunter2"), "{message}");
    assert_eq!(error.code(), vigie_core::ErrorCode::Unavailable);
}
