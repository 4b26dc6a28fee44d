//! The point-in-time join against a nested loop: the latest view row of the
//! same key at or before the entity row's time, none past the time-to-live,
//! and never a row from after the entity row's time.

use arrow::array::StringArray;
use proptest::prelude::*;
use vigie_features::join::as_of_indices;

/// Rows of (key, time).
type Rows = Vec<(String, i64)>;

/// View rows sorted by key and time; entity rows in any order; a time-to-live.
fn tables() -> impl Strategy<Value = (Rows, Rows, Option<i64>)> {
    (
        prop::collection::vec((0..4u8, 0..200i64), 0..60),
        prop::collection::vec((0..5u8, -20..240i64), 1..60),
        prop::option::of(1..80i64),
    )
        .prop_map(|(view, entities, ttl)| {
            let mut view: Vec<(String, i64)> =
                view.into_iter().map(|(k, t)| (format!("c{k}"), t)).collect();
            view.sort();
            let entities = entities.into_iter().map(|(k, t)| (format!("c{k}"), t)).collect();
            (view, entities, ttl)
        })
}

proptest! {
    #[test]
    fn as_of_join_equals_a_nested_loop_and_never_looks_ahead((view, entities, ttl) in tables()) {
        let view_keys = StringArray::from(view.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>());
        let view_times: Vec<i64> = view.iter().map(|(_, t)| *t).collect();
        let entity_keys = StringArray::from(entities.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>());
        let entity_times: Vec<i64> = entities.iter().map(|(_, t)| *t).collect();
        let joined = as_of_indices(&entity_keys, &entity_times, &view_keys, &view_times, ttl);
        for ((key, time), found) in entities.iter().zip(&joined) {
            // The nested loop: the last (in sorted order) row of the key at or before the time.
            let expected = view
                .iter()
                .enumerate()
                .filter(|(_, (k, t))| k == key && t <= time)
                .map(|(i, _)| i)
                .next_back()
                .filter(|&i| ttl.is_none_or(|ttl| time - view[i].1 <= ttl));
            prop_assert_eq!(found.map(|i| i as usize), expected);
            if let Some(i) = found {
                prop_assert!(view[*i as usize].1 <= *time, "a value from after the row's time");
                prop_assert_eq!(&view[*i as usize].0, key);
            }
        }
    }
}
