//! Growing one tree of the forest: bootstrap sample, then depth-first splits.
//!
//! A tree's in-bag rows live in one array; each node owns a contiguous range
//! of it, which a split partitions stably in place, so no node allocates and
//! rows stay in ascending order (kinder to the cache when reading columns).
//! The tree is kept in a compact training form, [`GrownTree`], that the forest
//! turns into Vigie's node format; it also routes the out-of-bag rows. This
//! module knows nothing of threads: the forest runs one tree per task.

use super::binning::BinnedMatrix;
use super::oob::OobAccumulator;
use super::split::{BestSplit, InBagRow, SplitFinder, SplitRule, Spread};
use crate::rng::Rng;

/// What every tree of a forest is grown with, checked beforehand.
#[derive(Debug, Clone, Copy)]
pub(super) struct TreeSettings {
    /// Nodes at this depth become leaves (`usize::MAX`: no limit).
    pub max_depth: usize,
    /// Fewest in-bag rows in a leaf.
    pub min_samples_leaf: usize,
    /// Features drawn per split (constant ones included, as scikit-learn counts them).
    pub max_features: usize,
    /// Whether each tree sees a bootstrap sample rather than every row.
    pub bootstrap: bool,
    /// Nodes with more rows than this split numeric features on bins (`usize::MAX`: never).
    pub exact_max_rows: usize,
    /// Target channels: 1, or the number of classes.
    pub n_channels: usize,
}

/// The training data every tree reads.
#[derive(Debug, Clone, Copy)]
pub(super) struct TreeData<'a> {
    /// The binned features.
    pub binned: &'a BinnedMatrix,
    /// Per row: the value, the 0/1 label, or the class index.
    pub targets: &'a [f32],
    /// Per-row sample weights, or `None` for ones.
    pub weights: Option<&'a [f32]>,
    /// `[weight, S_0 ..]` of the whole training set: the value of a tree whose
    /// bootstrap drew only zero-weight rows.
    pub prior: &'a [f64],
}

/// A split node of a [`GrownTree`].
#[derive(Debug, Clone, Copy)]
pub(super) struct GrownSplit {
    /// The split.
    pub rule: SplitRule,
    /// Index of the left child.
    pub left: u32,
    /// Index of the right child.
    pub right: u32,
}

/// A tree in training form: node 0 is the root, children come after parents.
#[derive(Debug, Clone)]
pub(super) struct GrownTree {
    /// Per node, its split, or `None` for a leaf.
    pub splits: Vec<Option<GrownSplit>>,
    /// Per node, `[weight, S_0 .. S_k]`: in-bag weight and weighted channel sums.
    pub sums: Vec<f64>,
    /// Channels per node in `sums`, after the weight.
    pub n_channels: usize,
}

impl GrownTree {
    fn push_node(&mut self, sums: &[f64]) -> u32 {
        self.splits.push(None);
        self.sums.extend_from_slice(sums);
        (self.splits.len() - 1) as u32
    }

    /// Number of nodes.
    pub fn n_nodes(&self) -> usize {
        self.splits.len()
    }

    /// In-bag weight that reached `node`.
    pub fn weight(&self, node: usize) -> f64 {
        self.sums[node * (self.n_channels + 1)]
    }

    /// The weighted mean of channel `channel` at `node`: a probability or a mean value.
    pub fn mean(&self, node: usize, channel: usize) -> f64 {
        let sums = &self.sums[node * (self.n_channels + 1)..(node + 1) * (self.n_channels + 1)];
        if sums[0] > 0.0 { sums[1 + channel] / sums[0] } else { 0.0 }
    }

    /// The leaf training row `row` reaches, read from the binned matrix.
    pub fn leaf_of_training_row(&self, binned: &BinnedMatrix, row: usize) -> usize {
        let mut node = 0;
        while let Some(split) = &self.splits[node] {
            let feature = split.rule.feature as usize;
            let goes_left =
                split.rule.goes_left(binned.codes(feature)[row], binned.values(feature)[row]);
            node = if goes_left { split.left } else { split.right } as usize;
        }
        node
    }
}

/// A node waiting to be split: its range of in-bag rows and what is known of it.
#[derive(Debug, Clone, Copy)]
struct PendingNode {
    node: u32,
    start: usize,
    end: usize,
    depth: usize,
    /// All its rows have the same target: nothing to gain by splitting.
    pure: bool,
}

/// Buffers one worker thread reuses from tree to tree.
#[derive(Debug)]
pub(super) struct TreeWorkspace {
    /// Times the bootstrap drew each row.
    pub draws: Vec<u32>,
    /// The in-bag rows; after growing, each leaf's rows are a contiguous range.
    rows: Vec<InBagRow>,
    scratch: Vec<InBagRow>,
    finder: SplitFinder,
    feature_order: Vec<usize>,
    /// `[count, weight, S_0 ..]` of the node being split.
    totals: Vec<f64>,
    left_sums: Vec<f64>,
    right_sums: Vec<f64>,
    stack: Vec<PendingNode>,
}

impl TreeWorkspace {
    /// Buffers for trees with these settings.
    pub fn new(settings: &TreeSettings) -> Self {
        let n_channels = settings.n_channels;
        TreeWorkspace {
            draws: Vec::new(),
            rows: Vec::new(),
            scratch: Vec::new(),
            finder: SplitFinder::new(
                n_channels,
                settings.min_samples_leaf,
                settings.exact_max_rows,
            ),
            feature_order: Vec::new(),
            totals: vec![0.0; n_channels + 2],
            left_sums: vec![0.0; n_channels + 1],
            right_sums: vec![0.0; n_channels + 1],
            stack: Vec::new(),
        }
    }
}

/// Grows one tree with its own generator and, when `oob` is given, adds its
/// predictions for the rows it did not draw.
pub(super) fn grow_tree(
    data: &TreeData<'_>,
    settings: &TreeSettings,
    rng: &mut Rng,
    workspace: &mut TreeWorkspace,
    oob: Option<&OobAccumulator>,
) -> GrownTree {
    let n_rows = data.binned.n_rows;
    let n_channels = settings.n_channels;
    draw_rows(data, settings, rng, workspace);

    let mut tree = GrownTree { splits: Vec::new(), sums: Vec::new(), n_channels };
    let root_sums = &mut workspace.left_sums;
    root_sums.fill(0.0);
    let mut root_pure = true;
    for row in &workspace.rows {
        add_to_sums(root_sums, row, n_channels);
        root_pure &= row.target == workspace.rows[0].target;
    }
    if workspace.rows.is_empty() {
        root_sums.copy_from_slice(data.prior);
    }
    tree.push_node(root_sums);

    workspace.feature_order.clear();
    workspace.feature_order.extend(0..data.binned.features.len());
    workspace.stack.clear();
    workspace.stack.push(PendingNode {
        node: 0,
        start: 0,
        end: workspace.rows.len(),
        depth: 0,
        pure: root_pure,
    });
    while let Some(pending) = workspace.stack.pop() {
        let count = pending.end - pending.start;
        if pending.pure
            || pending.depth >= settings.max_depth
            || count < 2 * settings.min_samples_leaf
        {
            continue;
        }
        let Some(best) = find_split(data, settings, rng, workspace, &tree, &pending) else {
            continue;
        };
        let rule = best.rule;
        let node_rows = &mut workspace.rows[pending.start..pending.end];
        let sides = (&mut workspace.left_sums[..], &mut workspace.right_sums[..]);
        let outcome =
            partition(node_rows, &mut workspace.scratch, data.binned, &rule, sides, n_channels);
        let left = tree.push_node(&workspace.left_sums);
        let right = tree.push_node(&workspace.right_sums);
        tree.splits[pending.node as usize] = Some(GrownSplit { rule, left, right });
        let middle = pending.start + outcome.n_left;
        let depth = pending.depth + 1;
        workspace.stack.push(PendingNode {
            node: right,
            start: middle,
            end: pending.end,
            depth,
            pure: outcome.right_pure,
        });
        workspace.stack.push(PendingNode {
            node: left,
            start: pending.start,
            end: middle,
            depth,
            pure: outcome.left_pure,
        });
    }

    if let Some(oob) = oob {
        for (row, &draws) in workspace.draws.iter().enumerate().take(n_rows) {
            if draws == 0 {
                let leaf = tree.leaf_of_training_row(data.binned, row);
                oob.add(row, &tree.sums[leaf * (n_channels + 1)..(leaf + 1) * (n_channels + 1)]);
            }
        }
    }
    tree
}

/// Fills `workspace.draws` and the in-bag rows (drawn, with positive weight), in row order.
fn draw_rows(
    data: &TreeData<'_>,
    settings: &TreeSettings,
    rng: &mut Rng,
    workspace: &mut TreeWorkspace,
) {
    let n_rows = data.binned.n_rows;
    workspace.draws.clear();
    if settings.bootstrap {
        workspace.draws.resize(n_rows, 0);
        for _ in 0..n_rows {
            workspace.draws[rng.below(n_rows)] += 1;
        }
    } else {
        workspace.draws.resize(n_rows, 1);
    }
    workspace.rows.clear();
    for (row, (&draws, &target)) in workspace.draws.iter().zip(data.targets).enumerate() {
        let weight = data.weights.map_or(1.0, |weights| weights[row]) * draws as f32;
        if weight > 0.0 {
            workspace.rows.push(InBagRow { row: row as u32, weight, target });
        }
    }
}

/// The best split of a node over a random subset of features, drawn without
/// replacement until `max_features` are tried and at least one was not constant.
fn find_split(
    data: &TreeData<'_>,
    settings: &TreeSettings,
    rng: &mut Rng,
    workspace: &mut TreeWorkspace,
    tree: &GrownTree,
    pending: &PendingNode,
) -> Option<BestSplit> {
    let node = pending.node as usize;
    let count = pending.end - pending.start;
    let stride = workspace.finder.stride();
    workspace.totals[0] = count as f64;
    workspace.totals[1..stride]
        .copy_from_slice(&tree.sums[node * (stride - 1)..(node + 1) * (stride - 1)]);
    let node_rows = &workspace.rows[pending.start..pending.end];
    let n_features = workspace.feature_order.len();
    let mut best = None;
    let mut drawn = 0;
    let mut found_varied = false;
    while drawn < n_features && (drawn < settings.max_features || !found_varied) {
        let pick = drawn + rng.below(n_features - drawn);
        workspace.feature_order.swap(drawn, pick);
        let feature = workspace.feature_order[drawn];
        drawn += 1;
        let bins = &data.binned.features[feature];
        if bins.n_bins <= 1 && !bins.has_missing {
            continue;
        }
        let (codes, values) = (data.binned.codes(feature), data.binned.values(feature));
        let totals = &workspace.totals;
        let spread =
            workspace.finder.search(feature, bins, codes, values, node_rows, totals, &mut best);
        found_varied |= spread == Spread::Varied;
    }
    best
}

/// What [`partition`] found out about the two children.
struct PartitionOutcome {
    n_left: usize,
    left_pure: bool,
    right_pure: bool,
}

/// Moves the rows going left to the front of `rows`, keeping both sides in
/// order, and sums each side into `[weight, S_0 ..]`.
fn partition(
    rows: &mut [InBagRow],
    scratch: &mut Vec<InBagRow>,
    binned: &BinnedMatrix,
    rule: &SplitRule,
    (left_sums, right_sums): (&mut [f64], &mut [f64]),
    n_channels: usize,
) -> PartitionOutcome {
    left_sums.fill(0.0);
    right_sums.fill(0.0);
    scratch.clear();
    let mut n_left = 0;
    let (mut left_pure, mut right_pure) = (true, true);
    let (mut left_target, mut right_target) = (f32::NAN, f32::NAN);
    let feature = rule.feature as usize;
    let (codes, values) = (binned.codes(feature), binned.values(feature));
    for idx in 0..rows.len() {
        let row = rows[idx];
        let at = row.row as usize;
        if rule.goes_left(codes[at], values[at]) {
            if n_left == 0 {
                left_target = row.target;
            }
            left_pure &= row.target == left_target;
            add_to_sums(left_sums, &row, n_channels);
            rows[n_left] = row;
            n_left += 1;
        } else {
            if scratch.is_empty() {
                right_target = row.target;
            }
            right_pure &= row.target == right_target;
            add_to_sums(right_sums, &row, n_channels);
            scratch.push(row);
        }
    }
    rows[n_left..].copy_from_slice(scratch);
    PartitionOutcome { n_left, left_pure, right_pure }
}

/// Adds a row to `[weight, S_0 ..]` sums (a statistics record without the count).
#[inline]
fn add_to_sums(sums: &mut [f64], row: &InBagRow, n_channels: usize) {
    let weight = f64::from(row.weight);
    sums[0] += weight;
    if n_channels == 1 {
        sums[1] += weight * f64::from(row.target);
    } else if let Some(class_sum) = sums.get_mut(1 + row.target as usize) {
        *class_sum += weight;
    }
}
