use proptest::prelude::*;

use super::*;

/// A node under construction: the node, its children, its left categories.
type LocalNode = (Node, Option<(usize, usize)>, Option<Vec<u32>>);

/// A random full binary tree over `n_features` features, built through the builder.
fn random_ensemble(
    seed: u64,
    n_features: usize,
    n_trees: usize,
    with_categories: bool,
) -> TreeEnsemble {
    random_trees(seed, n_features, n_trees, 6, with_categories, false)
}

/// Random ensembles of trees grown by splitting random leaves up to `max_splits`
/// times (so paths test features again); with `zero_covers`, some children get no cover.
fn random_trees(
    seed: u64,
    n_features: usize,
    n_trees: usize,
    max_splits: usize,
    with_categories: bool,
    zero_covers: bool,
) -> TreeEnsemble {
    let mut rng = crate::rng::Rng::new(seed);
    let mut builder = EnsembleBuilder::new(n_features, 1, vec![0.25], Link::Identity);
    for _ in 0..n_trees {
        // Local nodes: grow by splitting random leaves.
        let mut nodes: Vec<LocalNode> = vec![(Node::leaf(rng.normal(), 100.0), None, None)];
        for _ in 0..rng.below(max_splits) + 1 {
            let leaves: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].1.is_none()).collect();
            let leaf = leaves.get(rng.below(leaves.len())).copied().unwrap_or(0);
            let cover = nodes[leaf].0.cover;
            let share = match rng.below(8) {
                0 if zero_covers => 0.0,
                1 if zero_covers => 1.0,
                _ => 0.1 + 0.8 * rng.next_f64(),
            };
            let (l, r) = (nodes.len(), nodes.len() + 1);
            nodes.push((Node::leaf(rng.normal(), cover * share), None, None));
            nodes.push((Node::leaf(rng.normal(), cover * (1.0 - share)), None, None));
            let categorical = with_categories && rng.below(2) == 0;
            let node = &mut nodes[leaf];
            node.0.feature = rng.below(n_features) as u32;
            node.0.threshold = rng.next_f64() as f32 * 3.0;
            node.0.default_left = rng.below(2) == 0;
            node.1 = Some((l, r));
            node.2 = categorical.then(|| vec![0, 2]);
        }
        let source = TreeSource {
            n_nodes: nodes.len(),
            children: &|i| nodes[i].1,
            node: &|i| nodes[i].0,
            left_categories: &|i| nodes[i].2.clone(),
        };
        builder.push_tree(0, &source).unwrap();
    }
    builder.finish().unwrap()
}

/// E[f | x_S] the way TreeSHAP defines it, by brute force.
fn conditional(ensemble: &TreeEnsemble, row: &[f32], subset: u32) -> f64 {
    fn walk(e: &TreeEnsemble, idx: usize, row: &[f32], subset: u32) -> f64 {
        let node = &e.nodes[idx];
        if node.is_leaf() {
            return node.value;
        }
        if subset & (1 << node.feature) != 0 {
            let next = if e.sends_left(Route::of(node), row[node.feature as usize]) {
                node.left
            } else {
                node.right
            };
            return walk(e, next as usize, row, subset);
        }
        let (zl, zr) =
            zero_fractions(node, &e.nodes[node.left as usize], &e.nodes[node.right as usize]);
        zl * walk(e, node.left as usize, row, subset)
            + zr * walk(e, node.right as usize, row, subset)
    }
    ensemble.base_score[0]
        + ensemble.roots.iter().map(|&r| walk(ensemble, r as usize, row, subset)).sum::<f64>()
}

fn brute_force_shap(ensemble: &TreeEnsemble, row: &[f32]) -> Vec<f64> {
    let n = ensemble.n_features;
    let factorial = |k: usize| (1..=k).map(|v| v as f64).product::<f64>();
    let mut phi = vec![0.0; n + 1];
    for (feature, value) in phi.iter_mut().enumerate().take(n) {
        for subset in 0u32..(1 << n) {
            if subset & (1 << feature) != 0 {
                continue;
            }
            let size = subset.count_ones() as usize;
            let weight = factorial(size) * factorial(n - size - 1) / factorial(n);
            *value += weight
                * (conditional(ensemble, row, subset | (1 << feature))
                    - conditional(ensemble, row, subset));
        }
    }
    phi[n] = conditional(ensemble, row, 0);
    phi
}

/// The recursive path algorithm of Lundberg et al. (2020, Algorithm 2), which
/// Vigie ran before the quadrature pass: `O(leaves × depth²)` per tree, kept
/// here as the reference the new pass must equal.
mod reference {
    use super::super::{Node, Route, TreeEnsemble, zero_fractions};

    #[derive(Debug, Clone, Copy, Default)]
    struct PathElement {
        feature: i64,
        zero: f64,
        one: f64,
        weight: f64,
    }

    /// Contributions of one row for a one-output ensemble, bias last.
    pub fn contributions(ensemble: &TreeEnsemble, row: &[f32]) -> Vec<f64> {
        let n = ensemble.n_features;
        let mut phi = vec![0.0; n + 1];
        phi[n] = ensemble.base_score[0];
        let depth = ensemble.max_depth + 2;
        let mut path = vec![PathElement::default(); depth * (depth + 1) / 2 + depth];
        for &root in &ensemble.roots {
            phi[n] += expected_value(ensemble, root as usize);
            recurse(ensemble, row, &mut phi, root as usize, &mut path, 0, 0, 1.0, 1.0, -1);
        }
        phi
    }

    fn expected_value(e: &TreeEnsemble, idx: usize) -> f64 {
        let node = &e.nodes[idx];
        if node.is_leaf() {
            return node.value;
        }
        let (zl, zr) =
            zero_fractions(node, &e.nodes[node.left as usize], &e.nodes[node.right as usize]);
        zl * expected_value(e, node.left as usize) + zr * expected_value(e, node.right as usize)
    }

    #[allow(clippy::too_many_arguments)]
    fn recurse(
        e: &TreeEnsemble,
        row: &[f32],
        phi: &mut [f64],
        idx: usize,
        path: &mut [PathElement],
        offset: usize,
        mut unique_depth: usize,
        parent_zero: f64,
        parent_one: f64,
        parent_feature: i64,
    ) {
        let start = offset + unique_depth + 1;
        let (parent_part, own_part) = path.split_at_mut(start);
        own_part[..=unique_depth].copy_from_slice(&parent_part[offset..offset + unique_depth + 1]);
        let own = &mut own_part[..];
        extend(own, unique_depth, parent_zero, parent_one, parent_feature);
        let node: &Node = &e.nodes[idx];
        if node.is_leaf() {
            for i in 1..=unique_depth {
                let weight = unwound_sum(own, unique_depth, i);
                let element = own[i];
                phi[element.feature as usize] += weight * (element.one - element.zero) * node.value;
            }
            return;
        }
        let x = row.get(node.feature as usize).copied().unwrap_or(f32::NAN);
        let (left, right) = (node.left as usize, node.right as usize);
        let (hot, cold) =
            if e.sends_left(Route::of(node), x) { (left, right) } else { (right, left) };
        let (zl, zr) = zero_fractions(node, &e.nodes[left], &e.nodes[right]);
        let (hot_zero, cold_zero) = if hot == left { (zl, zr) } else { (zr, zl) };
        let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
        let feature = i64::from(node.feature);
        if let Some(k) = (1..=unique_depth).find(|&k| own[k].feature == feature) {
            incoming_zero = own[k].zero;
            incoming_one = own[k].one;
            unwind(own, unique_depth, k);
            unique_depth -= 1;
        }
        let next = unique_depth + 1;
        recurse(
            e,
            row,
            phi,
            hot,
            path,
            start,
            next,
            hot_zero * incoming_zero,
            incoming_one,
            feature,
        );
        recurse(e, row, phi, cold, path, start, next, cold_zero * incoming_zero, 0.0, feature);
    }

    fn extend(path: &mut [PathElement], depth: usize, zero: f64, one: f64, feature: i64) {
        path[depth] =
            PathElement { feature, zero, one, weight: if depth == 0 { 1.0 } else { 0.0 } };
        let d = depth as f64;
        for i in (0..depth).rev() {
            let fi = i as f64;
            path[i + 1].weight += one * path[i].weight * (fi + 1.0) / (d + 1.0);
            path[i].weight = zero * path[i].weight * (d - fi) / (d + 1.0);
        }
    }

    fn unwind(path: &mut [PathElement], depth: usize, index: usize) {
        let (one, zero) = (path[index].one, path[index].zero);
        let d = depth as f64;
        let mut next_one = path[depth].weight;
        for i in (0..depth).rev() {
            let fi = i as f64;
            if one != 0.0 {
                let tmp = path[i].weight;
                path[i].weight = next_one * (d + 1.0) / ((fi + 1.0) * one);
                next_one = tmp - path[i].weight * zero * (d - fi) / (d + 1.0);
            } else {
                path[i].weight = path[i].weight * (d + 1.0) / (zero * (d - fi));
            }
        }
        for i in index..depth {
            path[i].feature = path[i + 1].feature;
            path[i].zero = path[i + 1].zero;
            path[i].one = path[i + 1].one;
        }
    }

    fn unwound_sum(path: &[PathElement], depth: usize, index: usize) -> f64 {
        let (one, zero) = (path[index].one, path[index].zero);
        let d = depth as f64;
        let mut next_one = path[depth].weight;
        let mut total = 0.0;
        for i in (0..depth).rev() {
            let fi = i as f64;
            if one != 0.0 {
                let tmp = next_one * (d + 1.0) / ((fi + 1.0) * one);
                total += tmp;
                next_one = path[i].weight - tmp * zero * (d - fi) / (d + 1.0);
            } else if zero != 0.0 {
                total += path[i].weight / zero / ((d - fi) / (d + 1.0));
            }
        }
        total
    }
}

proptest! {
    #[test]
    fn treeshap_equals_brute_force_shapley_and_sums_to_the_output(
        seed in 0u64..10_000,
        values in proptest::collection::vec(prop_oneof![Just(f32::NAN), 0.0f32..3.0], 4),
    ) {
        let ensemble = random_trees(seed, 4, 3, 6, true, seed % 2 == 0);
        let row: Vec<f32> = values.iter().map(|v| if v.is_nan() { *v } else { v.floor() }).collect();
        let mut contributions = vec![0.0; 5];
        ensemble.contributions_into(&row, &mut contributions, &mut ShapScratch::default()).unwrap();
        let expected = brute_force_shap(&ensemble, &row);
        for (got, want) in contributions.iter().zip(&expected) {
            prop_assert!((got - want).abs() <= 1e-9 * (1.0 + want.abs()), "{contributions:?} vs {expected:?}");
        }
        let mut raw = [0.0];
        ensemble.predict_raw_into(&row, &mut raw);
        let sum: f64 = contributions.iter().sum();
        prop_assert!((sum - raw[0]).abs() <= 1e-6 * raw[0].abs().max(1.0));
    }
}

proptest! {
    #[test]
    fn treeshap_equals_brute_force_shapley_on_deeper_trees_with_empty_children(
        seed in 0u64..100_000,
        values in proptest::collection::vec(prop_oneof![1 => Just(f32::NAN), 6 => 0.0f32..3.0], 7),
    ) {
        let ensemble = random_trees(seed, 7, 2, 24, true, true);
        let row: Vec<f32> = values.iter().map(|v| if v.is_nan() { *v } else { v.floor() }).collect();
        let mut contributions = vec![0.0; 8];
        ensemble.contributions_into(&row, &mut contributions, &mut ShapScratch::default()).unwrap();
        let expected = brute_force_shap(&ensemble, &row);
        for (got, want) in contributions.iter().zip(&expected) {
            prop_assert!((got - want).abs() <= 1e-9 * (1.0 + want.abs()), "{contributions:?} vs {expected:?}");
        }
    }

    #[test]
    fn quadrature_pass_equals_the_recursive_algorithm_on_deep_random_trees(
        seed in 0u64..100_000,
        n_features in 1usize..24,
        max_splits in 1usize..80,
        values in proptest::collection::vec(prop_oneof![1 => Just(f32::NAN), 6 => 0.0f32..3.0], 24),
    ) {
        // No zero covers: the recursive algorithm divides by them (NaN), the new pass
        // skips what they make unreachable; the brute-force tests cover that case.
        let ensemble = random_trees(seed, n_features, 4, max_splits, true, false);
        let row: Vec<f32> =
            values[..n_features].iter().map(|v| if v.is_nan() { *v } else { v.floor() }).collect();
        let mut contributions = vec![0.0; n_features + 1];
        ensemble.contributions_into(&row, &mut contributions, &mut ShapScratch::default()).unwrap();
        let expected = reference::contributions(&ensemble, &row);
        let scale = expected.iter().map(|v| v.abs()).fold(1.0, f64::max);
        for (got, want) in contributions.iter().zip(&expected) {
            prop_assert!((got - want).abs() <= 1e-9 * scale, "{contributions:?} vs {expected:?}");
        }
    }
}

/// `count` seeded rows of `n_features` values among 0, 1 and 2, one in eight missing.
fn small_rows(count: u64, n_features: usize) -> Vec<Vec<f32>> {
    (0..count)
        .map(|seed| {
            let mut rng = crate::rng::Rng::new(seed);
            (0..n_features)
                .map(|_| if rng.below(8) == 0 { f32::NAN } else { rng.below(3) as f32 })
                .collect()
        })
        .collect()
}

/// The TreeSHAP contributions of each row (one output, the bias last).
fn explain_rows(
    ensemble: &TreeEnsemble,
    rows: &[Vec<f32>],
    scratch: &mut ShapScratch,
) -> Vec<Vec<f64>> {
    rows.iter()
        .map(|row| {
            let mut contributions = vec![0.0; ensemble.n_features + 1];
            ensemble.contributions_into(row, &mut contributions, scratch).unwrap();
            contributions
        })
        .collect()
}

#[test]
fn trees_compiled_at_each_call_explain_as_the_kept_tables_do() {
    let mut ensemble = random_trees(5, 12, 6, 60, true, true);
    let mut scratch = ShapScratch::default();
    let rows = small_rows(20, 12);
    let with_tables = explain_rows(&ensemble, &rows, &mut scratch);
    *ensemble.shap = shap::ShapPlan::within(&ensemble, 0);
    let without = explain_rows(&ensemble, &rows, &mut scratch);
    for (a, b) in with_tables.iter().flatten().zip(without.iter().flatten()) {
        assert!((a - b).abs() <= 1e-12 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

#[test]
fn trees_over_few_features_explain_from_leaf_tables_as_the_edge_pass_does() {
    // Deep trees over 3 features (with categorical splits and missing values): every path
    // repeats features, and every tree has a leaf table.
    let mut ensemble = random_trees(7, 3, 20, 40, true, true);
    assert_eq!(ensemble.shap.leaf_tables(), 20, "every tree is explained from its table");
    let mut scratch = ShapScratch::default();
    let rows = small_rows(50, 3);
    let from_tables = explain_rows(&ensemble, &rows, &mut scratch);
    *ensemble.shap = shap::ShapPlan::within(&ensemble, 0);
    assert_eq!(ensemble.shap.leaf_tables(), 0);
    let from_edges = explain_rows(&ensemble, &rows, &mut scratch);
    for (row, (a, b)) in rows.iter().zip(from_tables.iter().zip(&from_edges)) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-12 * (1.0 + x.abs()), "row {row:?}: {a:?} vs {b:?}");
        }
        let mut raw = vec![0.0];
        ensemble.predict_raw_into(row, &mut raw);
        let sum: f64 = a.iter().sum();
        assert!((sum - raw[0]).abs() <= 1e-9 * (1.0 + raw[0].abs()), "{sum} vs {}", raw[0]);
    }
}

#[test]
fn gauss_legendre_integrates_polynomials_below_twice_its_points_exactly() {
    for n in [1, 2, 4, 8, 12, 40, 100] {
        let (points, weights) = shap::gauss_legendre(n);
        for degree in 0..2 * n {
            let integral: f64 =
                points.iter().zip(&weights).map(|(u, w)| w * u.powi(degree as i32)).sum();
            let exact = 1.0 / (degree as f64 + 1.0);
            assert!((integral - exact).abs() <= 1e-13, "n {n}, degree {degree}: {integral}");
        }
    }
}

#[test]
fn one_scratch_explains_ensembles_of_any_size_in_turn() {
    let mut scratch = ShapScratch::default();
    for (seed, n_features, max_splits) in [(1, 3, 4), (2, 20, 120), (3, 2, 2), (4, 9, 60)] {
        let ensemble = random_trees(seed, n_features, 3, max_splits, false, false);
        let row = vec![1.0; n_features];
        let mut contributions = vec![0.0; n_features + 1];
        ensemble.contributions_into(&row, &mut contributions, &mut scratch).unwrap();
        let expected = reference::contributions(&ensemble, &row);
        for (got, want) in contributions.iter().zip(&expected) {
            assert!((got - want).abs() <= 1e-9 * (1.0 + want.abs()), "{got} vs {want}");
        }
    }
}

#[test]
fn quadrature_pass_stays_exact_on_a_path_of_a_hundred_splits() {
    // A chain: each split's right child is a leaf, the left one splits again,
    // on features 0..50 twice over, so one path holds 50 distinct features.
    let depth = 100;
    let n_features = 50;
    let mut rng = crate::rng::Rng::new(11);
    // Node 2k splits; its right child 2k + 1 is a leaf, its left child 2k + 2 splits again.
    let mut nodes: Vec<LocalNode> = Vec::new();
    let mut cover = 1000.0;
    for level in 0..depth {
        let node = Node {
            feature: (level % n_features) as u32,
            threshold: (level / n_features) as f32 + 0.5,
            default_left: level % 3 == 0,
            ..Node::leaf(0.0, cover)
        };
        let share = 0.6 + 0.39 * rng.next_f64();
        nodes.push((node, Some((nodes.len() + 2, nodes.len() + 1)), None));
        nodes.push((Node::leaf(rng.normal(), cover * (1.0 - share)), None, None));
        cover *= share;
    }
    nodes.push((Node::leaf(rng.normal(), cover), None, None));
    let mut builder = EnsembleBuilder::new(n_features, 1, vec![0.0], Link::Identity);
    let source = TreeSource {
        n_nodes: nodes.len(),
        children: &|i| nodes[i].1,
        node: &|i| nodes[i].0,
        left_categories: &|_| None,
    };
    builder.push_tree(0, &source).unwrap();
    let ensemble = builder.finish().unwrap();
    assert_eq!(ensemble.max_depth, depth);
    let mut scratch = ShapScratch::default();
    for row_seed in 0..20 {
        let mut rng = crate::rng::Rng::new(row_seed);
        let row: Vec<f32> = (0..n_features)
            .map(|_| if rng.below(10) == 0 { f32::NAN } else { rng.below(3) as f32 })
            .collect();
        let mut contributions = vec![0.0; n_features + 1];
        ensemble.contributions_into(&row, &mut contributions, &mut scratch).unwrap();
        let expected = reference::contributions(&ensemble, &row);
        for (got, want) in contributions.iter().zip(&expected) {
            assert!((got - want).abs() <= 1e-9 * (1.0 + want.abs()), "{got} vs {want}");
        }
        let mut raw = [0.0];
        ensemble.predict_raw_into(&row, &mut raw);
        let sum: f64 = contributions.iter().sum();
        assert!((sum - raw[0]).abs() <= 1e-9 * raw[0].abs().max(1.0), "{sum} vs {}", raw[0]);
    }
}

/// The leaf `row` reaches in the tree at `root`, by the definition of a split.
fn reference_leaf(ensemble: &TreeEnsemble, root: u32, row: &[f32]) -> usize {
    let mut idx = root as usize;
    while !ensemble.nodes[idx].is_leaf() {
        let node = &ensemble.nodes[idx];
        let x = row.get(node.feature as usize).copied().unwrap_or(f32::NAN);
        idx = if ensemble.sends_left(Route::of(node), x) { node.left } else { node.right } as usize;
    }
    idx
}

/// Row values that probe the walk's integer keys: thresholds themselves,
/// signed zeros, infinities, missing values, category codes and non-codes.
fn probing_value() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(f32::NAN),
        Just(0.0f32),
        Just(-0.0f32),
        Just(f32::INFINITY),
        Just(f32::NEG_INFINITY),
        (0u32..4).prop_map(|code| code as f32),
        Just(2.5f32),
        -3.0f32..3.0,
    ]
}

proptest! {
    #[test]
    fn the_walk_reaches_the_leaf_the_splits_define(
        seed in 0u64..100_000,
        n_features in 1usize..10,
        values in proptest::collection::vec(probing_value(), 10),
    ) {
        let mut ensemble = random_trees(seed, n_features, 11, 40, true, false);
        // Thresholds at values the rows take, negative ones and a signed zero.
        for (i, node) in ensemble.nodes.iter_mut().enumerate() {
            node.threshold = [0.0, -0.0, 1.0, -1.5, 2.0, f32::INFINITY][i % 6];
        }
        ensemble.validate().unwrap();
        let row = &values[..n_features];
        for (tree, &root) in ensemble.roots.iter().enumerate() {
            prop_assert_eq!(ensemble.leaf_of(tree, row), Some(reference_leaf(&ensemble, root, row)));
        }
        let mut raw = [0.0];
        ensemble.predict_raw_into(row, &mut raw);
        let expected = ensemble.base_score[0]
            + ensemble.roots.iter().map(|&r| ensemble.nodes[reference_leaf(&ensemble, r, row)].value).sum::<f64>();
        prop_assert!((raw[0] - expected).abs() <= 1e-12 * (1.0 + expected.abs()));
        // A batch gives the same bits as one row at a time.
        let matrix = crate::Matrix { values: row.to_vec(), n_rows: 1, n_cols: n_features };
        let mut batch = [0.0];
        ensemble.predict_block_into(&matrix, 0, &mut batch);
        prop_assert_eq!(batch[0].to_bits(), raw[0].to_bits());
    }
}

#[test]
fn a_model_of_many_features_walks_with_keys_on_the_heap() {
    let n_features = 300;
    let ensemble = random_trees(8, n_features, 20, 30, true, false);
    for seed in 0..20 {
        let mut rng = crate::rng::Rng::new(seed);
        let row: Vec<f32> = (0..n_features)
            .map(|_| if rng.below(10) == 0 { f32::NAN } else { rng.next_f64() as f32 * 3.0 })
            .collect();
        for (tree, &root) in ensemble.roots.iter().enumerate() {
            assert_eq!(ensemble.leaf_of(tree, &row), Some(reference_leaf(&ensemble, root, &row)));
        }
    }
}

#[test]
fn corrupted_child_links_are_refused() {
    let mut ensemble = random_ensemble(3, 2, 1, false);
    if let Some(node) = ensemble.nodes.iter_mut().find(|n| !n.is_leaf()) {
        node.left = 0;
    }
    assert!(matches!(ensemble.validate(), Err(MlError::Corrupted(_))));
}

#[test]
fn a_node_with_two_parents_is_refused() {
    let mut ensemble = random_trees(3, 2, 1, 8, false, false);
    let internal: Vec<usize> =
        (0..ensemble.nodes.len()).filter(|&i| !ensemble.nodes[i].is_leaf()).collect();
    assert!(internal.len() >= 2, "the random tree has two splits");
    // The deeper split's left child becomes the shallower split's too.
    let (shallow, deep) = (internal[0], internal[internal.len() - 1]);
    ensemble.nodes[shallow].left = ensemble.nodes[deep].left;
    assert!(matches!(ensemble.validate(), Err(MlError::Corrupted(_))));
}

#[test]
fn categorical_split_routes_by_set_membership_and_missing_by_default() {
    let nodes = [
        Node { feature: 0, default_left: false, ..Node::leaf(0.0, 2.0) },
        Node::leaf(1.0, 1.0),
        Node::leaf(2.0, 1.0),
    ];
    let source = TreeSource {
        n_nodes: 3,
        children: &|i| (i == 0).then_some((1, 2)),
        node: &|i| nodes[i],
        left_categories: &|i| (i == 0).then(|| vec![1, 70]),
    };
    let mut builder = EnsembleBuilder::new(1, 1, vec![0.0], Link::Identity);
    builder.push_tree(0, &source).unwrap();
    let ensemble = builder.finish().unwrap();
    let predict = |x: f32| {
        let mut out = [0.0];
        ensemble.predict_raw_into(&[x], &mut out);
        out[0]
    };
    assert_eq!(predict(1.0), 1.0);
    assert_eq!(predict(70.0), 1.0);
    assert_eq!(predict(0.0), 2.0);
    assert_eq!(predict(500.0), 2.0, "an unseen category goes right");
    assert_eq!(predict(f32::NAN), 2.0);
}
