//! The two passes of a write, with the server's replies scripted: a real
//! server of the MongoDB wire protocol that runs one command at a time
//! (SecantusDB, in the tests) never lets two inserts of a new key race, so
//! the second pass after a lost race is checked here.

use serde_json::Map;

use super::{BATCH, LatestDocument, write_batches};

#[test]
fn rows_refused_as_duplicate_keys_are_sent_again_without_upsert() {
    let values = Map::new();
    let keys: Vec<String> = (0..BATCH + 2).map(|i| format!("k{i}")).collect();
    let rows: Vec<LatestDocument<'_>> = keys
        .iter()
        .map(|key| LatestDocument { key, time: 1, version: "v", values: &values })
        .collect();
    let mut sent: Vec<(bool, Vec<String>)> = Vec::new();
    let written = write_batches(&rows, |batch, upsert| {
        let keys: Vec<String> = batch.iter().map(|row| row.key.to_owned()).collect();
        sent.push((upsert, keys));
        // First pass of each batch: rows 0 and 1 lose a race (duplicate keys), the rest are
        // written; the second pass replaces one of the two (the other was newer already).
        Ok(if upsert { (batch.len() - 2, vec![0, 1]) } else { (1, Vec::new()) })
    })
    .expect("written");
    let expected = vec![
        (true, keys[..BATCH].to_vec()),
        (false, vec!["k0".to_owned(), "k1".to_owned()]),
        (true, keys[BATCH..].to_vec()),
        (false, keys[BATCH..].to_vec()),
    ];
    assert_eq!(sent, expected);
    assert_eq!(written, (BATCH - 2 + 1) + 1);
}
