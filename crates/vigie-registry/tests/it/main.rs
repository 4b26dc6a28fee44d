//! Integration tests of the registry through its public API, on every metadata backend:
//! SQLite in a scratch folder, and a real PostgreSQL server (`VIGIE_TEST_POSTGRES_URL`), each
//! test in a fresh database; artifacts on local disk and on a real S3 server
//! (`VIGIE_TEST_S3_ENDPOINT`, moto). Start the servers with
//! `scripts/services.sh run postgres s3 -- cargo test -p vigie-registry`; without them those
//! tests print SKIPPED (with `CI=true` they fail instead).

mod behaviour;
mod failures;
mod routing;
mod s3;
mod support;
