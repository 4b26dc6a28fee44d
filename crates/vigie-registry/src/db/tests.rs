//! Unit tests of the SQL layer: placeholder rewriting for SQLite.

use super::*;

#[test]
fn placeholders_become_sqlite_numbered_parameters() {
    assert_eq!(
        sqlite_sql("UPDATE runs SET status = $2 WHERE id = $1 AND x = '$'"),
        "UPDATE runs SET status = ?2 WHERE id = ?1 AND x = '$'"
    );
}

/// The journal mode and flush level of a SQLite connection.
fn modes(db: &Db) -> (String, i64) {
    let Backend::Sqlite(conn) = &db.backend else { panic!("a SQLite database") };
    let journal = conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).unwrap();
    let synchronous = conn.query_row("PRAGMA synchronous", [], |row| row.get(0)).unwrap();
    (journal, synchronous)
}

#[test]
fn new_and_existing_databases_open_in_wal_mode_with_every_commit_flushed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    let timeout = Duration::from_secs(1);
    let wal_full = ("wal".to_owned(), 2);
    {
        // A new file: switched to WAL without a rollback journal, then flushed.
        let mut db = Db::open_sqlite(&path, timeout).unwrap();
        assert_eq!(modes(&db), wal_full);
        db.transaction(|tx| tx.batch("CREATE TABLE t(x INTEGER); INSERT INTO t VALUES (7);"))
            .unwrap();
    }
    assert!(!dir.path().join("registry.db-journal").exists(), "no journal left behind");
    // An empty file someone created is as new; an existing database keeps its rows.
    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    assert_eq!(modes(&Db::open_sqlite(&empty, timeout).unwrap()), wal_full);
    let db = Db::open_sqlite(&path, timeout).unwrap();
    assert_eq!(modes(&db), wal_full);
    let row = db.query_one("SELECT x FROM t", &[]).unwrap();
    assert_eq!(db.read(row.int(0)).unwrap(), 7);
}
