//! The online store's contract, run on both backends: the embedded SQLite
//! file, and a real server of the MongoDB wire protocol started by
//! `scripts/services.sh` (`VIGIE_TEST_MONGODB_URL`; without it the MongoDB
//! tests print SKIPPED, and with `CI=true` they fail).

mod contract;
mod mongodb;
