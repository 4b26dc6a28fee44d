//! Unit tests of the SQL layer: placeholder rewriting for SQLite.

use super::*;

#[test]
fn placeholders_become_sqlite_numbered_parameters() {
    assert_eq!(
        sqlite_sql("UPDATE runs SET status = $2 WHERE id = $1 AND x = '$'"),
        "UPDATE runs SET status = ?2 WHERE id = ?1 AND x = '$'"
    );
}
