use std::collections::HashMap;

use vigie_core::{ColumnKind, Value};

use super::*;

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn csv_types_are_inferred_and_missing_markers_kept_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "t.csv",
        "id,amount,ok,city\n1,2.5,true,Paris\n2,NA,false,\n3,NaN,,null\n4,7,true,Lyon\n",
    );
    let frame = read_csv(&path, &HashMap::new()).unwrap();
    let kinds: Vec<ColumnKind> = frame.columns().iter().map(|c| c.data.kind()).collect();
    assert_eq!(
        kinds,
        [ColumnKind::Numeric, ColumnKind::Numeric, ColumnKind::Boolean, ColumnKind::Text]
    );
    let amount = &frame.column("amount").unwrap().data;
    assert_eq!(amount.value(0), Value::Number(2.5));
    assert_eq!(amount.missing_count(), 2);
    assert_eq!(frame.column("ok").unwrap().data.value(2), Value::Missing);
    assert_eq!(frame.column("city").unwrap().data.missing_count(), 2);
}

#[test]
fn overridden_types_apply_and_bad_values_name_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "t.csv", "id,amount\n1,2\n2,3\n");
    let types = HashMap::from([("id".to_owned(), ColumnKind::Text)]);
    let frame = read_csv(&path, &types).unwrap();
    assert_eq!(frame.column("id").unwrap().data.value(1), Value::Text("2".into()));

    let bad = write(&dir, "bad.csv", "id,amount\n1,2\n2,abc\n");
    let types = HashMap::from([("amount".to_owned(), ColumnKind::Numeric)]);
    let message = read_csv(&bad, &types).unwrap_err().to_string();
    assert!(message.contains("bad.csv"), "{message}");
    assert!(
        message.contains(
            "column \"amount\" at data row 2 (line 3): \"abc\" is not a number (the row: 2,abc)"
        ),
        "{message}"
    );

    let empty = write(&dir, "empty.csv", "");
    let message = read_csv(&empty, &HashMap::new()).unwrap_err().to_string();
    assert!(message.contains("empty.csv: the file is empty: no header line"), "{message}");

    let unknown = HashMap::from([("nope".to_owned(), ColumnKind::Numeric)]);
    assert!(read_csv(&path, &unknown).unwrap_err().to_string().contains("nope"));
    let missing = dir.path().join("absent.csv");
    assert_eq!(
        read_table(&missing, &HashMap::new()).unwrap_err().code(),
        vigie_core::ErrorCode::NotFound
    );
}

#[test]
fn csv_round_trips_through_write_and_parquet_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "t.csv", "a,b,c\n1.5,\"x, y\",true\n,z,false\n");
    let frame = read_csv(&path, &HashMap::new()).unwrap();
    let copy = dir.path().join("copy.csv");
    write_csv(&copy, &frame).unwrap();
    let again = read_csv(&copy, &HashMap::new()).unwrap();
    let cells = |f: &Frame| -> Vec<Value> {
        f.columns().iter().flat_map(|c| (0..f.n_rows()).map(move |i| c.data.value(i))).collect()
    };
    assert_eq!(cells(&again), cells(&frame));
    assert_eq!(again.names(), frame.names());

    // Parquet written by the parquet crate reads back to the same values.
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(arrow::array::Int64Array::from(vec![Some(1), None])),
            Arc::new(arrow::array::StringArray::from(vec![Some("u"), Some("v")])),
        ],
    )
    .unwrap();
    let pq = dir.path().join("t.parquet");
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(File::create(&pq).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let frame = read_table(&pq, &HashMap::new()).unwrap();
    assert_eq!(frame.column("n").unwrap().data.value(0), Value::Number(1.0));
    assert_eq!(frame.column("n").unwrap().data.value(1), Value::Missing);
    assert_eq!(frame.column("s").unwrap().data.value(1), Value::Text("v".into()));
}

/// A CSV body of `rows` lines (store, day, amount, note) with missing cells,
/// over [`PARALLEL_BYTES`] from about 150,000 rows.
fn large_csv_rows(rows: usize) -> String {
    let mut text = String::with_capacity(rows * 40);
    for row in 0..rows {
        let amount = if row % 97 == 0 { "NA".to_owned() } else { format!("{}.25", row % 1000) };
        let note = if row % 13 == 0 { "" } else { ["promo", "holiday", "plain"][row % 3] };
        text.push_str(&format!("S{:04},2024-{:02}-01,{amount},{note}\n", row % 500, row % 12 + 1));
    }
    text
}

#[test]
fn pieces_cut_anywhere_own_every_line_once_in_order() {
    let dir = tempfile::tempdir().unwrap();
    // Lines of 1 to 300 bytes (an empty one, a long one), with and without a
    // line break at the end of the file, and a header longer than some pieces.
    let mut body = String::new();
    for line in 0..400 {
        let width = [0, 1, 7, 300, 40][line % 5] + line % 3;
        body.push_str(&"x".repeat(width));
        body.push('\n');
    }
    for (name, text) in [
        ("ends_with_break.csv", format!("a,b\n{body}")),
        ("no_final_break.csv", format!("a,b\n{}", body.trim_end_matches('\n'))),
        ("long_header.csv", format!("{}\n{body}", "h".repeat(500))),
        ("header_only.csv", "a,b\n".to_owned()),
    ] {
        let path = write(&dir, name, &text);
        let size = text.len() as u64;
        let body_start = text.find('\n').unwrap() + 1;
        for pieces in [1, 2, 3, 7, 16, 61, 400, text.len() as u64] {
            let mut joined = Vec::new();
            for piece in 0..pieces {
                let (start, end) = (size * piece / pieces, size * (piece + 1) / pieces);
                let (bytes, first) = owned_lines(&path, start, end).unwrap();
                let owned = &bytes[first..];
                // Whole lines only: each ends with a break, but the file's last one may not.
                let at_end = start.saturating_sub(1) + bytes.len() as u64 == size;
                assert!(owned.is_empty() || owned.ends_with(b"\n") || at_end, "{name} {piece}");
                // Each starts a line: the byte before it ends one.
                assert!(owned.is_empty() || bytes[first - 1] == b'\n', "{name} {piece}");
                joined.extend_from_slice(owned);
            }
            assert_eq!(
                String::from_utf8(joined).unwrap(),
                text[body_start..],
                "{name} in {pieces} pieces"
            );
        }
    }
}

#[test]
fn a_large_unquoted_csv_reads_in_parallel_as_the_serial_reader_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let body = large_csv_rows(200_000);
    let path = write(&dir, "large.csv", &format!("store,day,amount,note\n{body}"));
    assert!(std::fs::metadata(&path).unwrap().len() >= PARALLEL_BYTES as u64);
    // The same cells with a quoted header: read serially.
    let quoted = write(&dir, "quoted.csv", &format!("\"store\",day,amount,note\n{body}"));
    let types = HashMap::from([("store".to_owned(), ColumnKind::Text)]);
    let parallel = read_csv(&path, &types).unwrap();
    let serial = read_csv(&quoted, &types).unwrap();
    assert_eq!(parallel.n_rows(), 200_000);
    assert_eq!(format!("{parallel:?}"), format!("{serial:?}"));
    // Every row in order: the last chunk's last line too.
    let store = &parallel.column("store").unwrap().data;
    assert_eq!(store.value(199_999), Value::Text("S0499".into()));
    assert_eq!(parallel.column("amount").unwrap().data.missing_count(), 200_000_usize.div_ceil(97));

    // A bad cell deep in the file is named by its line, as the serial reader names it.
    // (The last row written so is row 198,123, in the last chunk.)
    let at = body.rfind("S0123,2024-04-01,123.25").unwrap();
    let bad_body = format!("{}S0123,2024-04-01,lots{}", &body[..at], &body[at + 23..]);
    let bad = write(&dir, "bad.csv", &format!("store,day,amount,note\n{bad_body}"));
    let types = HashMap::from([
        ("store".to_owned(), ColumnKind::Text),
        ("amount".to_owned(), ColumnKind::Numeric),
    ]);
    let error = read_csv(&bad, &types).unwrap_err().to_string();
    assert!(
        error.contains(
            "column \"amount\" at data row 198124 (line 198125): \"lots\" is not a number"
        ),
        "{error}"
    );
}

#[test]
fn numbers_are_what_arrows_inference_reads_as_numbers() {
    for number in ["0", "-12", "3.5", "3.", ".5", "-.5e-3", "1e5", "2E+07"] {
        assert!(is_number(number), "{number:?} is a number");
    }
    for other in
        ["", "-", ".", "+1", "1e", "1e+", "1.2.3", " 1", "1 ", "inf", "NaN", "true", "0x1F"]
    {
        assert!(!is_number(other), "{other:?} is not a number");
    }
}

#[test]
fn non_numeric_columns_are_named_from_the_first_rows_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        &dir,
        "t.csv",
        "n,flag,city,late,day\n1,true,Paris,1,2024-01-01\nNA,false,,2,2024-01-02\n-2.5e3,,Lyon,x,\n",
    );
    assert_eq!(non_numeric_columns(&path, 2).unwrap(), ["flag", "city", "day"]);
    assert_eq!(non_numeric_columns(&path, 1_000).unwrap(), ["flag", "city", "late", "day"]);
    let empty = write(&dir, "e.csv", "a,b\n");
    assert!(non_numeric_columns(&empty, 1_000).unwrap().is_empty());
}

#[test]
fn csv_writing_keeps_row_order_across_parallel_blocks() {
    // More rows than one round of blocks in flight, ending mid-block.
    let n = 4096 * (4 * rayon::current_num_threads() + 3) + 5;
    let ids: Vec<f64> = (0..n).map(|i| i as f64).collect();
    let names: Vec<String> = (0..n).map(|i| format!("n,{}", i % 7)).collect();
    let frame = Frame::new(vec![
        Column { name: "id".into(), data: ColumnData::Numeric(ids) },
        Column {
            name: "name".into(),
            data: ColumnData::Text(TextColumn::from_values(names.iter().map(|s| Some(s.as_str())))),
        },
    ])
    .unwrap();
    let mut out = Vec::new();
    write_csv_to(&mut out, &frame).unwrap();
    let text = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), n + 1);
    assert_eq!(lines[0], "id,name");
    for (i, line) in lines[1..].iter().enumerate() {
        assert_eq!(*line, format!("{i},\"n,{}\"", i % 7));
    }
}
