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
    let mut rng = crate::rng::Rng::new(seed);
    let mut builder = EnsembleBuilder::new(n_features, 1, vec![0.25], Link::Identity);
    for _ in 0..n_trees {
        // Local nodes: grow by splitting random leaves.
        let mut nodes: Vec<LocalNode> = vec![(Node::leaf(rng.normal(), 100.0), None, None)];
        for _ in 0..rng.below(6) + 1 {
            let leaves: Vec<usize> = (0..nodes.len()).filter(|&i| nodes[i].1.is_none()).collect();
            let leaf = leaves.get(rng.below(leaves.len())).copied().unwrap_or(0);
            let cover = nodes[leaf].0.cover;
            let share = 0.1 + 0.8 * rng.next_f64();
            let (l, r) = (nodes.len(), nodes.len() + 1);
            nodes.push((Node::leaf(rng.normal(), cover * share), None, None));
            nodes.push((Node::leaf(rng.normal(), cover * (1.0 - share)), None, None));
            let categorical = with_categories && rng.below(2) == 0;
            let node = &mut nodes[leaf];
            node.0.feature = rng.below(n_features) as u32;
            node.0.threshold = rng.next_f64() as f32;
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
            let next =
                if e.goes_left(node, row[node.feature as usize]) { node.left } else { node.right };
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

proptest! {
    #[test]
    fn treeshap_equals_brute_force_shapley_and_sums_to_the_output(
        seed in 0u64..10_000,
        values in proptest::collection::vec(prop_oneof![Just(f32::NAN), 0.0f32..3.0], 4),
    ) {
        let ensemble = random_ensemble(seed, 4, 3, true);
        let row: Vec<f32> = values.iter().map(|v| if v.is_nan() { *v } else { v.floor() }).collect();
        let mut contributions = vec![0.0; 5];
        ensemble.contributions_into(&row, &mut contributions);
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

#[test]
fn corrupted_child_links_are_refused() {
    let mut ensemble = random_ensemble(3, 2, 1, false);
    if let Some(node) = ensemble.nodes.iter_mut().find(|n| !n.is_leaf()) {
        node.left = 0;
    }
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
