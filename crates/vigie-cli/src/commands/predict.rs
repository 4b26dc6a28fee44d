//! `vigie predict`: score a table with a saved model.

use std::collections::HashMap;

use serde_json::json;
use vigie_core::{Column, ColumnData, ColumnKind, Frame, TextColumn, Value};
use vigie_ml::Task;
use vigie_registry::ModelRef;

use super::{Project, UsageError, header, read_table};
use crate::cli::{Format, PredictArgs};
use crate::output;
use crate::output::outln;

pub fn run(project: &Project, args: PredictArgs) -> anyhow::Result<()> {
    let reference: ModelRef = args.model.parse()?;
    let registry = project.registry()?;
    let version = registry.resolve(&reference)?;
    let model = registry.load(&version)?.into_tabular()?;
    let card = &model.card;

    // Read the model's inputs with their training types, so a bad value is reported by line and column.
    let header = header(&args.data)?;
    let types: HashMap<String, ColumnKind> = model
        .pipeline
        .inputs
        .iter()
        .filter(|input| header.contains(&input.name))
        .map(|input| (input.name.clone(), input.kind))
        .collect();
    let frame = read_table(&args.data, &types)?;

    let predictions = model.predict(&frame).map_err(|e| {
        anyhow::Error::new(e).context(format!("cannot score {}", args.data.display()))
    })?;
    let n_outputs = model.estimator.n_outputs();
    let ids: Vec<String> = if args.id.is_empty() {
        frame
            .names()
            .into_iter()
            .filter(|name| {
                *name != card.label && !model.pipeline.inputs.iter().any(|i| i.name == *name)
            })
            .map(str::to_owned)
            .collect()
    } else {
        for id in &args.id {
            frame.column(id).map_err(|e| UsageError(format!("--id: {e}")))?;
        }
        args.id.clone()
    };

    let mut columns: Vec<Column> = Vec::new();
    for id in &ids {
        if let Ok(column) = frame.column(id) {
            columns.push(column.clone());
        }
    }
    let rows = frame.n_rows();
    let row = |i: usize| &predictions[i * n_outputs..(i + 1) * n_outputs];
    match card.task {
        Task::Binary => {
            columns.push(Column {
                name: "score".into(),
                data: ColumnData::Numeric((0..rows).map(|i| row(i)[0]).collect()),
            });
        }
        Task::Regression => {
            columns.push(Column {
                name: "score".into(),
                data: ColumnData::Numeric((0..rows).map(|i| row(i)[0]).collect()),
            });
        }
        Task::Multiclass { .. } => {
            let best = |i: usize| row(i).iter().copied().fold(f64::NAN, f64::max);
            columns.push(Column {
                name: "score".into(),
                data: ColumnData::Numeric((0..rows).map(best).collect()),
            });
            for (k, class) in card.classes.iter().enumerate() {
                columns.push(Column {
                    name: format!("p_{class}"),
                    data: ColumnData::Numeric((0..rows).map(|i| row(i)[k]).collect()),
                });
            }
        }
    }
    if card.task.is_classification() {
        let labels: Vec<Option<String>> = (0..rows)
            .map(|i| match model.decide(row(i)) {
                Value::Text(label) => Some(label),
                _ => None,
            })
            .collect();
        columns.push(Column {
            name: "label".into(),
            data: ColumnData::Text(TextColumn::from_values(labels.iter().map(Option::as_deref))),
        });
    }
    if args.explain {
        let explanation = model.explain(&frame)?;
        let n_inputs = explanation.columns.len();
        // For multiclass, the contributions to the predicted class's raw output.
        let output_of = |i: usize| -> usize {
            if n_outputs == 1 {
                return 0;
            }
            row(i).iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(k, _)| k)
        };
        for (j, name) in explanation.columns.iter().enumerate() {
            let values = (0..rows)
                .map(|i| explanation.contributions[(i * n_outputs + output_of(i)) * n_inputs + j])
                .collect();
            columns.push(Column {
                name: format!("contrib_{name}"),
                data: ColumnData::Numeric(values),
            });
        }
        let bias = (0..rows).map(|i| explanation.bias[i * n_outputs + output_of(i)]).collect();
        columns.push(Column { name: "contrib_bias".into(), data: ColumnData::Numeric(bias) });
    }
    let out = Frame::new(columns)
        .map_err(|e| UsageError(format!("output columns clash: {e}; rename the id column")))?;
    vigie_connectors::files::write_csv(&args.out, &out)?;

    match args.format {
        Format::Json => output::json(&json!({
            "model": card.name,
            "version": card.version,
            "rows": rows,
            "out": args.out.display().to_string(),
            "explained": args.explain,
        }))?,
        Format::Text => outln!(
            "Scored {rows} rows with {} v{}; wrote {}",
            card.name,
            card.version,
            args.out.display()
        )?,
    }
    Ok(())
}
