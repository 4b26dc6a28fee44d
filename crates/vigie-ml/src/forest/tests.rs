//! Unit tests of the forest internals: binning edges and codes, the
//! refinement of bin cuts, and in-bag rows reaching the leaves they built.

use super::binning::{BinnedMatrix, MISSING_BIN, edge_between, quantile_edges};
use super::grow::{TreeData, TreeSettings, TreeWorkspace, grow_tree};
use super::*;
use crate::matrix::{FeatureInfo, Matrix};

fn numeric(n_features: usize) -> Vec<FeatureInfo> {
    (0..n_features)
        .map(|idx| FeatureInfo { name: format!("x{idx}"), source: idx, categories: None })
        .collect()
}

#[test]
fn few_distinct_values_get_one_bin_each() {
    let (edges, exact) = quantile_edges(&[-1.0, -1.0, 0.0, 0.0, 0.5, 3.0, 3.0], 255);
    assert!(exact);
    assert_eq!(edges, vec![-0.5, 0.25, 1.75]);
    // -0.0 and 0.0 are one value.
    let (edges, _) = quantile_edges(&[-0.0, 0.0, 1.0], 255);
    assert_eq!(edges, vec![0.5]);
}

#[test]
fn many_values_get_balanced_bins() {
    let sorted: Vec<f32> = (0..10_000).map(|v| v as f32).collect();
    let (edges, exact) = quantile_edges(&sorted, 10);
    assert!(!exact);
    assert_eq!(edges.len(), 9);
    assert!(edges.windows(2).all(|pair| pair[0] < pair[1]));
    // Bins of 1000 values: the edges fall halfway between two integers.
    assert_eq!(edges[0], 999.5);
    // One value holding most rows takes a bin of its own; the rest still split.
    let mut heavy = vec![5.0f32; 9000];
    heavy.extend((0..1000).map(|v| 10.0 + v as f32));
    heavy.sort_by(f32::total_cmp);
    let (edges, _) = quantile_edges(&heavy, 10);
    assert!(edges.len() >= 5, "{edges:?}");
    assert!(edges.windows(2).all(|pair| pair[0] < pair[1]));
}

#[test]
fn edges_lie_strictly_above_the_lower_value() {
    let low = 1.0f32;
    let high = f32::from_bits(low.to_bits() + 1);
    assert_eq!(edge_between(low, high), high);
    assert_eq!(edge_between(1.0, 2.0), 1.5);
    assert_eq!(edge_between(f32::MAX * 0.9, f32::MAX), f32::MAX * 0.9 * 0.5 + f32::MAX * 0.5);
    assert_eq!(edge_between(f32::NEG_INFINITY, 0.0), 0.0);
    assert_eq!(edge_between(1.0, f32::INFINITY), f32::INFINITY);
}

/// Codes and thresholds agree on every value, including ones the edges were
/// not placed from: `x < edge_after(b)` exactly when the code is at most `b`.
#[test]
fn codes_agree_with_thresholds() {
    let mut rng = Rng::new(3);
    let n_rows = 3000;
    let mut x = Matrix::zeros(n_rows, 2);
    for row in 0..n_rows {
        let value = match row % 10 {
            0 => f32::NAN,
            1 => f32::INFINITY,
            2 => -0.0,
            3 => 0.0,
            4 => f32::MIN_POSITIVE / 2.0,
            _ => (rng.normal() * 10.0) as f32,
        };
        x.row_mut(row)[0] = value;
        x.row_mut(row)[1] = rng.below(7) as f32;
    }
    let binned = BinnedMatrix::build(&x, &numeric(2), 16, &mut Rng::new(1));
    for feature in 0..2 {
        let bins = &binned.features[feature];
        assert!(bins.n_bins <= 16);
        assert_eq!(bins.exact, feature == 1);
        for row in 0..n_rows {
            let code = binned.codes(feature)[row];
            let value = x.row(row)[feature];
            assert_eq!(code == MISSING_BIN, value.is_nan());
            if value.is_nan() {
                continue;
            }
            for bin in 0..bins.n_bins - 1 {
                assert_eq!(
                    value < bins.edge_after(bin),
                    usize::from(code) <= bin,
                    "{value} {code}"
                );
            }
        }
    }
}

#[test]
fn categories_map_to_their_code_and_unknowns_to_one_bin() {
    let values = [0.0, 3.0, 2.0, f32::NAN, 4.0, 2.5, -1.0, -0.0];
    let x = Matrix { n_rows: values.len(), n_cols: 1, values: values.to_vec() };
    let infos = vec![FeatureInfo { name: "c".into(), source: 0, categories: Some(4) }];
    let binned = BinnedMatrix::build(&x, &infos, 255, &mut Rng::new(1));
    assert_eq!(binned.codes(0), &[0, 3, 2, MISSING_BIN, 4, 4, 4, 0]);
    assert_eq!(binned.features[0].n_bins, 5);
    // Too many categories for the bins: binned as numbers.
    let binned = BinnedMatrix::build(&x, &infos, 4, &mut Rng::new(1));
    assert!(matches!(binned.features[0].kind, BinKind::Numeric { .. }));
}

/// Every in-bag row, weighted by how often the bootstrap drew it, reaches
/// through the saved tree on raw floats the leaf whose cover it made up.
#[test]
fn bootstrapped_rows_reach_the_leaf_they_were_grown_in() {
    let mut rng = Rng::new(5);
    let n_rows = 4000;
    let mut x = Matrix::zeros(n_rows, 3);
    let mut y = Vec::new();
    let mut weights = Vec::new();
    for row in 0..n_rows {
        let values = x.row_mut(row);
        for value in values.iter_mut() {
            *value = if rng.below(10) == 0 { f32::NAN } else { rng.normal() as f32 };
        }
        y.push(f32::from(values[0] + values[1] * values[2] + rng.normal() as f32 > 0.0));
        weights.push(0.5 + rng.next_f64() as f32);
    }
    let binned = BinnedMatrix::build(&x, &numeric(3), 32, &mut Rng::new(1));
    let prior = [1.0, 0.5];
    let data = TreeData { binned: &binned, targets: &y, weights: Some(&weights), prior: &prior };
    let settings = TreeSettings {
        max_depth: usize::MAX,
        min_samples_leaf: 1,
        max_features: 2,
        bootstrap: true,
        // Large nodes on histograms, small ones on sorted values: both paths.
        exact_max_rows: 500,
        n_channels: 1,
    };
    let mut workspace = TreeWorkspace::new(&settings);
    let tree = grow_tree(&data, &settings, &mut Rng::new(9), &mut workspace, None);
    let ensemble = assemble(std::slice::from_ref(&tree), &binned, 1).unwrap();
    let mut reached = vec![0.0f64; ensemble.nodes.len()];
    for row in 0..n_rows {
        // The in-bag weight, rounded to f32 as training stores it.
        let drawn = f64::from(weights[row] * workspace.draws[row] as f32);
        reached[ensemble.leaf_of(0, x.row(row)).unwrap()] += drawn;
    }
    for (idx, node) in ensemble.nodes.iter().enumerate().filter(|(_, node)| node.is_leaf()) {
        assert!(
            (reached[idx] - node.cover).abs() < 1e-9 * node.cover.max(1.0),
            "leaf {idx}: {} vs {}",
            reached[idx],
            node.cover
        );
    }
}

/// A node split on histograms is cut on bins, then re-cut on the raw values
/// of the two bins around the cut: the threshold lands where the classes
/// change, inside a bin, not on the bin edge.
#[test]
fn a_cut_on_bins_is_refined_on_raw_values() {
    let n_rows = 10_000;
    let x = Matrix { n_rows, n_cols: 1, values: (0..n_rows).map(|v| v as f32).collect() };
    let y: Vec<f32> = (0..n_rows).map(|v| f32::from(v > 5003)).collect();
    let features = numeric(1);
    let train = TrainSet { x: &x, y: &y, weights: None, features: &features, task: Task::Binary };
    let params = ForestParams {
        n_trees: 1,
        bootstrap: false,
        max_bins: 10,
        histogram_above_rows: Some(0),
        max_depth: Some(1),
        ..ForestParams::default()
    };
    let fitted = fit(&params, &train, 1).unwrap();
    assert_eq!(fitted.ensemble.nodes[0].threshold, 5003.5);
    assert_eq!(fitted.ensemble.nodes[1].value, 0.0);
    assert_eq!(fitted.ensemble.nodes[2].value, 1.0);
}
