//! The window kernel: values equal a brute-force scan of the window, the
//! stream execution equals the batch one row for row, late and out-of-order
//! events included, and a held key's preview equals the batch over the events
//! so far.

use proptest::prelude::*;
use vigie_core::config::Function;
use vigie_features::window::{self, Cell, Event, Output, Stream, WindowSpec};

const FUNCTIONS: [Function; 6] = [
    Function::Count,
    Function::Sum,
    Function::Mean,
    Function::Min,
    Function::Max,
    Function::DistinctCount,
];

fn specs(windows: &[i64]) -> Vec<WindowSpec> {
    FUNCTIONS
        .iter()
        .zip(windows.iter().cycle())
        .map(|(&function, &window)| WindowSpec { function, window })
        .collect()
}

/// Events of 3 keys: times jitter around arrival order by up to `disorder`.
fn events() -> impl Strategy<Value = (Vec<Event>, i64)> {
    (
        prop::collection::vec((0..3u8, 0..100i64, prop::option::of(0..6u8), 0..40i64), 1..80),
        0..30i64,
    )
        .prop_map(|(raw, lateness)| {
            let events = raw
                .into_iter()
                .enumerate()
                .map(|(arrival, (key, jitter, value, _))| Event {
                    key: format!("k{key}"),
                    time: arrival as i64 * 10 + jitter - 50,
                    arrival: arrival as u64,
                    cells: vec![value.map_or(Cell::Missing, |v| Cell::Number(f64::from(v))); 6],
                })
                .collect();
            (events, lateness)
        })
}

/// The value of `spec` at `event` by scanning every accepted event of its key.
fn brute_force(accepted: &[&Event], event: &Event, spec: WindowSpec) -> f64 {
    let in_window: Vec<f64> = accepted
        .iter()
        .filter(|e| e.key == event.key && e.time > event.time - spec.window)
        .filter(|e| (e.time, e.arrival) <= (event.time, event.arrival))
        .map(|e| match e.cells[0] {
            Cell::Number(x) => x,
            _ => f64::NAN,
        })
        .collect();
    let numbers: Vec<f64> = in_window.iter().copied().filter(|x| !x.is_nan()).collect();
    match spec.function {
        Function::Count => in_window.len() as f64,
        Function::Sum => numbers.iter().sum(),
        Function::Mean if numbers.is_empty() => f64::NAN,
        Function::Mean => numbers.iter().sum::<f64>() / numbers.len() as f64,
        Function::Min => numbers.iter().copied().fold(f64::NAN, f64::min),
        Function::Max => numbers.iter().copied().fold(f64::NAN, f64::max),
        Function::DistinctCount => {
            let mut distinct: Vec<u64> = numbers.iter().map(|x| x.to_bits()).collect();
            distinct.sort_unstable();
            distinct.dedup();
            distinct.len() as f64
        }
    }
}

fn same(a: f64, b: f64) -> bool {
    (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(1.0)
}

proptest! {
    #[test]
    fn batch_windows_equal_a_scan_of_each_window((events, lateness) in events(), short in 1..40i64, long in 40..400i64) {
        let specs = specs(&[short, long]);
        let (outputs, late) = window::batch(&events, &specs, lateness);
        let accepted: Vec<&Event> = events.iter().filter(|e| !late.contains(&e.arrival)).collect();
        prop_assert_eq!(outputs.len() + late.len(), events.len());
        for output in &outputs {
            let event = events.iter().find(|e| e.arrival == output.arrival).expect("event");
            for (spec, &value) in specs.iter().zip(&output.values) {
                let expected = brute_force(&accepted, event, *spec);
                prop_assert!(same(value, expected), "{:?} of {:?}: {} != {}", spec, event, value, expected);
            }
        }
    }

    #[test]
    fn the_stream_equals_the_batch_row_for_row((events, lateness) in events(), release_every in 1..10usize) {
        let specs = specs(&[25, 300]);
        let (batch, batch_late) = window::batch(&events, &specs, lateness);
        let mut stream = Stream::new(&specs, lateness);
        let mut streamed: Vec<(String, i64, Output)> = Vec::new();
        let mut stream_late = Vec::new();
        for (i, event) in events.iter().enumerate() {
            if !stream.push(event.clone()) {
                stream_late.push(event.arrival);
            }
            if i % release_every == 0 {
                streamed.extend(stream.release(false));
            }
        }
        streamed.extend(stream.release(true));
        prop_assert_eq!(stream.waiting(), 0);
        prop_assert_eq!(&stream_late, &batch_late);
        // The batch lists rows by key; the stream in release order. Same rows, same bits.
        streamed.sort_by(|a, b| (&a.0, a.1, a.2.arrival).cmp(&(&b.0, b.1, b.2.arrival)));
        let streamed: Vec<Output> = streamed.into_iter().map(|(_, _, output)| output).collect();
        prop_assert_eq!(streamed.len(), batch.len());
        for (s, b) in streamed.iter().zip(&batch) {
            prop_assert_eq!(s.arrival, b.arrival);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&s.values), bits(&b.values));
        }
    }
}

proptest! {
    #[test]
    fn a_preview_equals_the_batch_over_the_events_so_far((events, lateness) in events(), cut in 1..80usize) {
        let specs = specs(&[25, 300]);
        let prefix = &events[..cut.min(events.len())];
        let mut stream = Stream::new(&specs, lateness);
        for event in prefix {
            stream.push(event.clone());
        }
        stream.release(false);
        let (batch, _) = window::batch(prefix, &specs, lateness);
        for key in stream.holding().map(str::to_owned).collect::<Vec<_>>() {
            let (_, preview) = stream.preview(&key).expect("a held event");
            // The batch's rows of this key are sorted by time and arrival: its newest is last.
            let newest = batch
                .iter()
                .rev()
                .find(|o| prefix.iter().any(|e| e.arrival == o.arrival && e.key == key))
                .expect("the batch has the key");
            prop_assert_eq!(preview.arrival, newest.arrival);
            let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            prop_assert_eq!(bits(&preview.values), bits(&newest.values));
        }
    }
}

#[test]
fn late_events_are_dead_letters_in_both_executions() {
    let event = |arrival: u64, time: i64| Event {
        key: "a".into(),
        time,
        arrival,
        cells: vec![Cell::Number(1.0)],
    };
    let events = [event(0, 100), event(1, 95), event(2, 80), event(3, 101)];
    let specs = [WindowSpec { function: Function::Count, window: 1_000 }];
    let (outputs, late) = window::batch(&events, &specs, 10);
    assert_eq!(late, [2], "80 arrived after 100 with 10 allowed");
    let counts: Vec<(u64, f64)> = outputs.iter().map(|o| (o.arrival, o.values[0])).collect();
    assert_eq!(counts, [(1, 1.0), (0, 2.0), (3, 3.0)], "in event-time order");
}
