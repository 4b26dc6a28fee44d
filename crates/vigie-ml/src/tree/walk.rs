//! The prediction walk: each tree's nodes packed breadth-first into 12-byte
//! records, siblings side by side, and walked with one integer comparison a
//! step and no branch on the way the row goes.
//!
//! Before walking, a row's values become order-preserving integer keys, twice:
//! once with missing values above every number, once below. A numeric split
//! reads the copy that sends missing values its default way, so "goes left"
//! is `key < threshold key` whatever the value. A record holds the threshold's
//! key, the key's slot and the left child's index; the right child is the next
//! record, so a step is `left + (row goes right)`. A leaf's threshold is the
//! smallest key, which nothing is below, and its "left child" the record
//! before it: a step from a leaf stays on it. Categorical splits (few) take a
//! branch to their set test.
//!
//! Trees are walked [`GROUP`] at a time, in lockstep, as many steps as the
//! deepest of them: the loops run the same number of times for every row, so
//! their branches are predicted, and the group's walks are independent chains
//! of loads the processor overlaps. A branchy walk to the leaf instead spends
//! most of its time on mispredicted directions, one step at a time. Groups
//! gather trees of similar depth (sorted at validation), so few steps are
//! wasted on trees already at their leaf.
//!
//! Leaf values are summed in group order by every path, so one row, a batch
//! and a reloaded model give bit-identical raw outputs.

use super::{CATEGORICAL, FEATURE, LEAF, NO_CATEGORIES, Node, Route, TreeEnsemble};

/// Trees walked together.
const GROUP: usize = 8;

/// Keys kept on the stack when a row is walked (models of up to 127 features).
const STACK_KEYS: usize = 256;

/// The key of a missing value in the copy where missing values come last.
const MISSING_LAST: i32 = i32::MAX;
/// The key of a missing value in the copy where they come first, and of a leaf's threshold.
const MISSING_FIRST: i32 = i32::MIN;

/// An integer that orders as `x` does among numbers (`-0` and `0` alike);
/// not for NaN.
#[inline(always)]
fn key(x: f32) -> i32 {
    let bits = (x + 0.0).to_bits() as i32;
    // Negative numbers order backwards by their bits: flip all but the sign.
    bits ^ (((bits >> 31) as u32) >> 1) as i32
}

/// A node as the walk reads it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct WalkNode {
    /// A numeric split's threshold key; a categorical split's set index.
    threshold: i32,
    /// A numeric split's key slot: the feature, plus the feature count when
    /// missing values go left. A categorical split's [`Route::feature`] with
    /// [`CATEGORICAL`] set.
    slot: u32,
    /// The left child's index (the right child's is one more); a leaf's own index minus one.
    left: u32,
}

impl WalkNode {
    fn of(node: &Node, n_features: usize, left: u32) -> Self {
        let route = Route::of(node);
        if node.categories != NO_CATEGORIES {
            return WalkNode { threshold: node.categories as i32, slot: route.feature, left };
        }
        let default_left = node.default_left;
        let slot = node.feature + if default_left { n_features as u32 } else { 0 };
        let threshold = if node.threshold.is_nan() {
            // `x < NaN` is false: only missing values pass, if they go left.
            if default_left { MISSING_FIRST + 1 } else { MISSING_FIRST }
        } else {
            key(node.threshold)
        };
        WalkNode { threshold, slot, left }
    }
}

/// Where a tree starts in the walk, how deep it is and which output it adds to.
#[derive(Debug, Clone, Copy, PartialEq)]
struct WalkTree {
    root: u32,
    depth: u32,
    output: u32,
}

/// Up to [`GROUP`] trees walked together.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Group {
    /// The trees' roots (the last one repeated past `len`) and outputs.
    roots: [u32; GROUP],
    outputs: [u32; GROUP],
    len: usize,
    /// The deepest tree's depth.
    depth: u32,
}

/// The ensemble packed for prediction, built by [`TreeEnsemble::validate`].
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Walk {
    nodes: Vec<WalkNode>,
    /// Each leaf's value (0 for internal nodes).
    values: Vec<f64>,
    /// Each record's index in [`TreeEnsemble::nodes`].
    source: Vec<u32>,
    trees: Vec<WalkTree>,
    groups: Vec<Group>,
}

impl Walk {
    /// Packs the (validated) trees of `ensemble`.
    pub(super) fn new(ensemble: &TreeEnsemble) -> Self {
        let n_nodes = ensemble.nodes.len();
        let n_features = ensemble.n_features;
        let mut walk = Walk {
            nodes: Vec::with_capacity(n_nodes),
            values: Vec::with_capacity(n_nodes),
            source: Vec::with_capacity(n_nodes),
            trees: Vec::with_capacity(ensemble.roots.len()),
            groups: Vec::new(),
        };
        // A leaf compares the spare last key slot with the smallest key: never below.
        let leaf_slot = 2 * n_features as u32;
        for (&root, &output) in ensemble.roots.iter().zip(&ensemble.outputs) {
            let start = walk.nodes.len() as u32;
            walk.source.push(root);
            let mut depths = vec![0u32];
            let (mut head, mut depth) = (0, 0);
            // Records are created as their parent is visited, so `source` is the queue.
            while let Some(&idx) = walk.source.get(start as usize + head) {
                let here = start + head as u32;
                let node = &ensemble.nodes[idx as usize];
                depth = depth.max(depths[head]);
                if node.left == LEAF {
                    let left = here.wrapping_sub(1);
                    walk.nodes.push(WalkNode { threshold: MISSING_FIRST, slot: leaf_slot, left });
                    walk.values.push(node.value);
                } else {
                    let left = walk.source.len() as u32;
                    walk.nodes.push(WalkNode::of(node, n_features, left));
                    walk.values.push(0.0);
                    walk.source.extend([node.left, node.right]);
                    depths.extend([depths[head] + 1; 2]);
                }
                head += 1;
            }
            walk.trees.push(WalkTree { root: start, depth, output });
        }
        let mut by_depth: Vec<&WalkTree> = walk.trees.iter().collect();
        by_depth.sort_by_key(|tree| tree.depth);
        walk.groups = by_depth
            .chunks(GROUP)
            .map(|trees| {
                let last = trees[trees.len() - 1];
                let tree = |k: usize| trees.get(k).copied().unwrap_or(last);
                Group {
                    roots: std::array::from_fn(|k| tree(k).root),
                    outputs: std::array::from_fn(|k| tree(k).output),
                    len: trees.len(),
                    depth: last.depth,
                }
            })
            .collect();
        walk
    }
}

impl TreeEnsemble {
    /// Writes `row`'s keys into `keys` (`2 × n_features + 1` long): missing
    /// values last, then missing values first, then a spare slot for leaves.
    #[inline]
    fn fill_keys(&self, row: &[f32], keys: &mut [i32]) {
        let n = self.n_features;
        let (last, rest) = keys.split_at_mut(n);
        let first = &mut rest[..n];
        for (f, (last, first)) in last.iter_mut().zip(first.iter_mut()).enumerate() {
            let x = row.get(f).copied().unwrap_or(f32::NAN);
            let k = key(x);
            (*last, *first) = if x.is_nan() { (MISSING_LAST, MISSING_FIRST) } else { (k, k) };
        }
    }

    /// One step of the walk from record `idx`: to the child the row goes to,
    /// or nowhere from a leaf.
    #[inline(always)]
    fn step(&self, nodes: &[WalkNode], idx: u32, keys: &impl Keys, row: &[f32]) -> u32 {
        let node = nodes[idx as usize];
        let left = if node.slot & CATEGORICAL == 0 {
            keys.get(node.slot) < node.threshold
        } else {
            self.categorical_left(node, row)
        };
        node.left.wrapping_add(u32::from(!left))
    }

    /// The set test of a categorical split, out of the walk's way.
    #[cold]
    #[inline(never)]
    fn categorical_left(&self, node: WalkNode, row: &[f32]) -> bool {
        let route = Route { feature: node.slot, value: node.threshold as u32 };
        let x = row.get((node.slot & FEATURE) as usize).copied().unwrap_or(f32::NAN);
        self.in_category_set(route, x)
    }

    /// The records of the leaves the row reaches in the trees of `group`.
    #[inline(always)]
    fn group_leaves(&self, group: &Group, keys: &impl Keys, row: &[f32]) -> [u32; GROUP] {
        let nodes = &self.walk.nodes[..];
        let mut idx = group.roots;
        for _ in 0..group.depth {
            for record in &mut idx {
                *record = self.step(nodes, *record, keys, row);
            }
        }
        idx
    }

    /// Adds the leaf values the row reaches (with these keys) to `out`.
    #[inline(always)]
    fn add_leaves(&self, keys: &impl Keys, row: &[f32], out: &mut [f64]) {
        for group in &self.walk.groups {
            let leaves = self.group_leaves(group, keys, row);
            for k in 0..group.len {
                out[group.outputs[k] as usize] += self.walk.values[leaves[k] as usize];
            }
        }
    }

    /// Index in [`TreeEnsemble::nodes`] of the leaf `row` reaches in tree number `tree`.
    pub fn leaf_of(&self, tree: usize, row: &[f32]) -> Option<usize> {
        let tree = self.walk.trees.get(tree)?;
        let mut keys = vec![MISSING_LAST; 2 * self.n_features + 1];
        self.fill_keys(row, &mut keys);
        let mut idx = tree.root;
        for _ in 0..tree.depth {
            idx = self.step(&self.walk.nodes, idx, &keys.as_slice(), row);
        }
        Some(self.walk.source[idx as usize] as usize)
    }

    /// Raw outputs of one row into `out` (`n_outputs` long). Allocates nothing
    /// for models of up to 127 features.
    #[inline]
    pub fn predict_raw_into(&self, row: &[f32], out: &mut [f64]) {
        out.copy_from_slice(&self.base_score);
        let len = 2 * self.n_features + 1;
        if len <= STACK_KEYS {
            let mut keys = StackKeys([MISSING_LAST; STACK_KEYS]);
            self.fill_keys(row, &mut keys.0[..len]);
            self.add_leaves(&keys, row, out);
        } else {
            let mut keys = vec![MISSING_LAST; len];
            self.fill_keys(row, &mut keys);
            self.add_leaves(&keys.as_slice(), row, out);
        }
    }

    /// Raw outputs of the rows `first..` of `matrix` into `out` (`n_outputs` per
    /// row, as many rows as `out` holds), walking group after group over the block.
    pub fn predict_block_into(&self, matrix: &crate::Matrix, first: usize, out: &mut [f64]) {
        let n_outputs = self.n_outputs;
        let width = 2 * self.n_features + 1;
        let n_rows = out.len() / n_outputs.max(1);
        let mut keys = vec![MISSING_LAST; n_rows * width];
        for (j, (row_out, row_keys)) in
            out.chunks_mut(n_outputs).zip(keys.chunks_mut(width)).enumerate()
        {
            row_out.copy_from_slice(&self.base_score);
            self.fill_keys(matrix.row(first + j), row_keys);
        }
        for group in &self.walk.groups {
            for (j, (row_out, row_keys)) in
                out.chunks_mut(n_outputs).zip(keys.chunks(width)).enumerate()
            {
                let leaves = self.group_leaves(group, &row_keys, matrix.row(first + j));
                for k in 0..group.len {
                    row_out[group.outputs[k] as usize] += self.walk.values[leaves[k] as usize];
                }
            }
        }
    }
}

/// A row's keys, as the walk reads them.
trait Keys {
    fn get(&self, slot: u32) -> i32;
}

/// Keys of a small model on the stack: a slot is masked into range, so the
/// read needs no bounds check (slots are below `2 × n_features + 1 ≤ STACK_KEYS`).
struct StackKeys([i32; STACK_KEYS]);

impl Keys for StackKeys {
    #[inline(always)]
    fn get(&self, slot: u32) -> i32 {
        self.0[slot as usize % STACK_KEYS]
    }
}

impl Keys for &[i32] {
    #[inline(always)]
    fn get(&self, slot: u32) -> i32 {
        self[slot as usize]
    }
}
