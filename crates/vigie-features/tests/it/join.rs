//! The point-in-time join against a nested loop: the latest view row of the
//! same key at or before the entity row's time, none past the time-to-live,
//! and never a row from after the entity row's time; with the view's rows
//! read as the offline store holds them (one part per time span, sorted by
//! key, time and arrival within), and as parts in any order within would be.

use std::sync::Arc;

use arrow::array::{Array, RecordBatch, StringArray, TimestampMicrosecondArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use proptest::prelude::*;
use vigie_features::ViewIndex;

/// Rows of (key, time).
type Rows = Vec<(String, i64)>;

/// View rows sorted by key and time; entity rows in any order; a time-to-live; how many
/// time spans the view is split into; whether each part's rows are reversed.
fn tables() -> impl Strategy<Value = (Rows, Rows, Option<i64>, i64, bool)> {
    (
        prop::collection::vec((0..4u8, 0..200i64), 0..60),
        prop::collection::vec((0..5u8, -20..240i64), 1..60),
        prop::option::of(1..80i64),
        1..6i64,
        any::<bool>(),
    )
        .prop_map(|(view, entities, ttl, spans, reversed)| {
            let mut view: Vec<(String, i64)> =
                view.into_iter().map(|(k, t)| (format!("c{k}"), t)).collect();
            view.sort();
            let entities = entities.into_iter().map(|(k, t)| (format!("c{k}"), t)).collect();
            (view, entities, ttl, spans, reversed)
        })
}

/// The parts of `view` (sorted by key and time; a row's arrival is its position): one per
/// time span, in time order, each sorted by key, time and arrival (or reversed).
fn parts(view: &Rows, spans: i64, reversed: bool) -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("_key", DataType::Utf8, false),
        Field::new("_time", DataType::Timestamp(TimeUnit::Microsecond, None), false),
        Field::new("_arrival", DataType::UInt64, false),
        Field::new("id", DataType::UInt64, false),
    ]));
    (0..spans)
        .filter_map(|span| {
            let mut rows: Vec<(usize, &(String, i64))> =
                view.iter().enumerate().filter(|(_, (_, t))| t * spans / 200 == span).collect();
            if reversed {
                rows.reverse();
            }
            (!rows.is_empty()).then(|| {
                let ids: Vec<u64> = rows.iter().map(|(i, _)| *i as u64).collect();
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(StringArray::from(
                            rows.iter().map(|(_, (k, _))| k.as_str()).collect::<Vec<_>>(),
                        )),
                        Arc::new(TimestampMicrosecondArray::from(
                            rows.iter().map(|(_, (_, t))| *t).collect::<Vec<_>>(),
                        )),
                        Arc::new(UInt64Array::from(ids.clone())),
                        Arc::new(UInt64Array::from(ids)),
                    ],
                )
                .expect("part")
            })
        })
        .collect()
}

proptest! {
    #[test]
    fn as_of_join_equals_a_nested_loop_and_never_looks_ahead(
        (view, entities, ttl, spans, reversed) in tables()
    ) {
        let index = ViewIndex::new(parts(&view, spans, reversed)).expect("index");
        prop_assert_eq!(index.len(), view.len());
        let entity_keys = StringArray::from(entities.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>());
        let entity_times: Vec<i64> = entities.iter().map(|(_, t)| *t).collect();
        let picks = index.as_of(&entity_keys, &entity_times, ttl);
        let found: Vec<Option<usize>> = match index.gather("id", &picks).expect("gather") {
            Some(ids) => {
                let ids = ids.as_any().downcast_ref::<UInt64Array>().expect("ids");
                (0..ids.len()).map(|i| (!ids.is_null(i)).then(|| ids.value(i) as usize)).collect()
            }
            None => {
                // No view rows at all: nothing can be found.
                prop_assert!(view.is_empty());
                vec![None; entities.len()]
            }
        };
        for ((key, time), found) in entities.iter().zip(&found) {
            // The nested loop: the last (in sorted order) row of the key at or before the time.
            let expected = view
                .iter()
                .enumerate()
                .filter(|(_, (k, t))| k == key && t <= time)
                .map(|(i, _)| i)
                .next_back()
                .filter(|&i| ttl.is_none_or(|ttl| time - view[i].1 <= ttl));
            prop_assert_eq!(*found, expected);
            if let Some(i) = found {
                prop_assert!(view[*i].1 <= *time, "a value from after the row's time");
                prop_assert_eq!(&view[*i].0, key);
            }
        }
        // The whole view in key, time and arrival order.
        if !view.is_empty() {
            let sorted = index.sorted_rows().expect("sorted");
            let ids = sorted.column_by_name("id").expect("ids");
            let ids = ids.as_any().downcast_ref::<UInt64Array>().expect("ids");
            let expected: Vec<u64> = (0..view.len() as u64).collect();
            prop_assert_eq!(ids.values().to_vec(), expected);
        }
    }
}

/// Past 65,536 rows the search is shared among the cores: the same picks as row by row.
#[test]
fn a_long_entity_table_gets_the_same_rows_as_one_row_at_a_time() {
    let mut view: Rows = (0..3_000).map(|i| (format!("c{}", i % 97), i * 7 % 1_000)).collect();
    view.sort();
    let index = ViewIndex::new(parts(&view, 5, false)).expect("index");
    let keys: Vec<String> = (0..70_000).map(|i| format!("c{}", i % 101)).collect();
    let times: Vec<i64> = (0..70_000).map(|i| i * 13 % 1_100 - 50).collect();
    let all = index.as_of(&StringArray::from(keys.clone()), &times, Some(300));
    assert_eq!(all.len(), keys.len());
    for (row, pick) in all.iter().enumerate().step_by(7) {
        let alone =
            index.as_of(&StringArray::from(vec![keys[row].as_str()]), &times[row..=row], Some(300));
        assert_eq!(alone, [*pick], "row {row}");
    }
    assert!(all.iter().filter(|p| p.is_some()).count() > 10_000, "the test finds rows");
}
