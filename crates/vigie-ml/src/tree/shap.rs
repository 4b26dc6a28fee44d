//! Exact TreeSHAP in time linear in a tree's depth.
//!
//! Path-dependent TreeSHAP (Lundberg et al. 2020) gives feature `i` of the path
//! to leaf `l` (value `v`, unique features `U`, zero fractions `z_j`, and
//! `o_j = 1` when the row follows the path's tests on feature `j`) the share
//! `v (o_i - z_i) Σ_{S ⊆ U∖{i}} |S|! (|U|-|S|-1)! / |U|! Π_{j∈S} o_j Π_{j∉S} z_j`.
//! Since `∫₀¹ u^s (1-u)^(d-1-s) du = s! (d-1-s)! / d!`, that sum is the integral
//! over `u ∈ [0, 1]` of the polynomial `Π_{j∈U∖{i}} (z_j (1-u) + o_j u)`, whose
//! degree is below the number of unique features on the path. Gauss–Legendre
//! quadrature with `n` points integrates polynomials of degree below `2n`
//! exactly, so carrying each path's product at `n ≥ |U| / 2` points gives
//! every contribution exactly (to rounding), as Linear TreeSHAP (Yu et al.
//! 2022) does with interpolation points. One depth-first pass multiplies the
//! products down the tree, sums them up per subtree, and turns each edge's
//! subtree sum into its feature's contribution: `O(nodes × depth)` per tree,
//! where the recursive algorithm (kept in the tests as a reference) is
//! `O(leaves × depth²)`.
//!
//! A feature tested twice on a path counts once, with the product of its
//! zero fractions and of its `o`s: the edge that tests it again replaces the
//! factor of the feature's edge above, and takes back what that edge credited
//! for the leaves below.
//!
//! A tree whose every path tests at most [`TABLE_FEATURES`] distinct features
//! (and that has at most 64 splits) is explained from a leaf table instead
//! ([`LeafTable`]): a leaf's shares depend on the row only through the `o`s
//! of its path's features, at most `2^TABLE_FEATURES` cases, each computed
//! once from the formula above. A pass then finds, per leaf, which case the
//! row is (one mask test per feature on the row's split directions, kept as
//! bits) and adds that case's shares: about 3× faster than the edge pass on
//! trees over few features, whose paths repeat the same features deep down.
//!
//! Everything but the row's `o`s depends on the tree alone, so each tree is
//! compiled once ([`ShapPlan::new`], at validation) into its edges in
//! depth-first order and, per edge, the factor ratio and credit coefficient at
//! every point for `o = 0` and `o = 1`: a pass then only multiplies and adds.
//! Those tables cost `64 × points` bytes an edge; an ensemble whose tables
//! would pass [`TABLE_BUDGET`] (deep forests) compiles each tree's edges at
//! each call instead and computes the lanes as it goes. Nothing allocates
//! once the [`ShapScratch`] has grown to the ensemble's size.

use super::{CATEGORICAL, Node, Route, TreeEnsemble, zero_fractions};
use crate::error::{MlError, Result};

/// Quadrature points handled together: one SSE2 register of `f64`.
const LANES: usize = 2;

/// Values at [`LANES`] quadrature points.
type Lanes = [f64; LANES];

/// Bytes of compiled edges and lane tables an ensemble keeps at most (a
/// 500-round boosted model of 31-leaf trees needs about 4 MiB).
const TABLE_BUDGET: usize = 32 << 20;

/// Most distinct features on every path of a tree explained from a [`LeafTable`].
const TABLE_FEATURES: usize = 4;

/// A tree explained from its leaves' precomputed shares (see the module's documentation):
/// at most 64 splits, each a bit of the row's split directions, and at most
/// [`TABLE_FEATURES`] distinct features on any path.
#[derive(Debug, Clone, Default, PartialEq)]
struct LeafTable {
    /// How each split sends the row: split `b` is bit `b` of the directions.
    routes: Vec<Route>,
    /// The positions in `routes` of categorical splits.
    categorical: Vec<u32>,
    leaves: Vec<TableLeaf>,
    /// Per leaf from its `offset`: per case (bit `j` set when the row follows every test of
    /// the path's feature `j`), the share of each of the path's features.
    shares: Vec<f64>,
}

/// One leaf of a [`LeafTable`]: the distinct features of its path and, per feature, the
/// splits of the path that test it and the directions the path takes there.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TableLeaf {
    features: [u32; TABLE_FEATURES],
    /// Bits of the splits on the path that test each feature.
    tested: [u64; TABLE_FEATURES],
    /// Of those, the splits the path leaves by the left.
    left: [u64; TABLE_FEATURES],
    /// The distinct features on the path.
    count: u32,
    /// Where its shares start in [`LeafTable::shares`].
    offset: u32,
}

/// What the walk that builds a [`LeafTable`] knows of the path to a node.
#[derive(Debug, Clone, Copy)]
struct TablePath {
    leaf: TableLeaf,
    /// Per feature, the product of its edges' zero fractions.
    zero: [f64; TABLE_FEATURES],
}

/// The leaf table of the tree at `root`, or `None` when it has more than 64 splits or a
/// path with more than [`TABLE_FEATURES`] distinct features.
fn leaf_table(nodes: &[Node], root: u32) -> Option<LeafTable> {
    let mut table = LeafTable::default();
    let empty = TableLeaf {
        features: [0; TABLE_FEATURES],
        tested: [0; TABLE_FEATURES],
        left: [0; TABLE_FEATURES],
        count: 0,
        offset: 0,
    };
    let mut stack = vec![(root, TablePath { leaf: empty, zero: [1.0; TABLE_FEATURES] })];
    while let Some((idx, path)) = stack.pop() {
        let node = &nodes[idx as usize];
        if node.is_leaf() {
            let count = path.leaf.count as usize;
            let offset = u32::try_from(table.shares.len()).ok()?;
            for case in 0..1usize << count {
                for feature in 0..count {
                    table.shares.push(leaf_share(node.value, &path.zero[..count], case, feature));
                }
            }
            table.leaves.push(TableLeaf { offset, ..path.leaf });
            continue;
        }
        let bit = table.routes.len();
        if bit == 64 {
            return None;
        }
        let route = Route::of(node);
        if route.feature & CATEGORICAL != 0 {
            table.categorical.push(bit as u32);
        }
        table.routes.push(route);
        let (zero_left, zero_right) =
            zero_fractions(node, &nodes[node.left as usize], &nodes[node.right as usize]);
        for (child, goes_left, zero) in
            [(node.right, false, zero_right), (node.left, true, zero_left)]
        {
            let mut below = path;
            let leaf = &mut below.leaf;
            let slot = match leaf.features[..leaf.count as usize]
                .iter()
                .position(|&f| f == node.feature)
            {
                Some(slot) => slot,
                None if (leaf.count as usize) < TABLE_FEATURES => {
                    leaf.features[leaf.count as usize] = node.feature;
                    leaf.count += 1;
                    leaf.count as usize - 1
                }
                None => return None,
            };
            leaf.tested[slot] |= 1 << bit;
            if goes_left {
                leaf.left[slot] |= 1 << bit;
            }
            below.zero[slot] *= zero;
            stack.push((child, below));
        }
    }
    Some(table)
}

/// The share of the path's feature `feature` in a leaf of value `value`, when the row
/// follows the tests of the path's features in `case` (bit `j`: `o_j = 1`), the features'
/// zero fractions being `zero`: the module's formula, summed over the subsets.
fn leaf_share(value: f64, zero: &[f64], case: usize, feature: usize) -> f64 {
    let count = zero.len();
    let one = |j: usize| if case >> j & 1 == 1 { 1.0 } else { 0.0 };
    let others: Vec<usize> = (0..count).filter(|&j| j != feature).collect();
    let factorial = |k: usize| (1..=k).map(|i| i as f64).product::<f64>();
    let mut total = 0.0;
    for subset in 0..1usize << others.len() {
        let size = subset.count_ones() as usize;
        let weight = factorial(size) * factorial(count - size - 1) / factorial(count);
        let product: f64 = others
            .iter()
            .enumerate()
            .map(|(k, &j)| if subset >> k & 1 == 1 { one(j) } else { zero[j] })
            .product();
        total += weight * product;
    }
    value * (one(feature) - zero[feature]) * total
}

/// A Gauss–Legendre rule on `[0, 1]` with `LANES × chunks` points.
#[derive(Debug, Clone, PartialEq)]
struct Quadrature {
    /// The weights (they sum to 1).
    weights: Vec<Lanes>,
    /// The points `u`.
    points: Vec<Lanes>,
    /// `1 - u`.
    complement: Vec<Lanes>,
    /// `1 / (1 - u)`.
    inverse_complement: Vec<Lanes>,
}

impl Quadrature {
    /// The rule with `LANES × chunks` points.
    fn new(chunks: usize) -> Self {
        let (points, weights) = gauss_legendre(chunks * LANES);
        let lanes = |values: &[f64]| -> Vec<Lanes> {
            values
                .chunks_exact(LANES)
                .map(|c| {
                    let mut lane = [0.0; LANES];
                    lane.copy_from_slice(c);
                    lane
                })
                .collect()
        };
        let complement: Vec<f64> = points.iter().map(|u| 1.0 - u).collect();
        let inverse_complement: Vec<f64> = complement.iter().map(|c| 1.0 / c).collect();
        Quadrature {
            weights: lanes(&weights),
            points: lanes(&points),
            complement: lanes(&complement),
            inverse_complement: lanes(&inverse_complement),
        }
    }
}

/// Gauss–Legendre points and weights mapped onto `[0, 1]`: `n` points, exact
/// for polynomials of degree below `2n`. Newton's method on the Legendre
/// recurrence, as in Numerical Recipes' `gauleg`.
pub(super) fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut points = vec![0.5; n];
    let mut weights = vec![0.0; n];
    let order = n as f64;
    // P_n(x) and P_n'(x).
    let legendre = |x: f64| {
        let (mut previous, mut current) = (1.0, x);
        for k in 2..=n {
            let k = k as f64;
            let next = ((2.0 * k - 1.0) * x * current - (k - 1.0) * previous) / k;
            previous = current;
            current = next;
        }
        let derivative = order * (x * current - previous) / (x * x - 1.0);
        (current, derivative)
    };
    for i in 0..n.div_ceil(2) {
        let mut x = (std::f64::consts::PI * (i as f64 + 0.75) / (order + 0.5)).cos();
        for _ in 0..100 {
            let (value, derivative) = legendre(x);
            let step = value / derivative;
            x -= step;
            if step.abs() <= 1e-16 {
                break;
            }
        }
        let (_, derivative) = legendre(x);
        // Weight on [-1, 1], halved for [0, 1].
        let weight = 1.0 / ((1.0 - x * x) * derivative * derivative);
        points[i] = (1.0 - x) / 2.0;
        points[n - 1 - i] = (1.0 + x) / 2.0;
        weights[i] = weight;
        weights[n - 1 - i] = weight;
    }
    (points, weights)
}

/// One edge of a compiled tree, as the pass reads it (24 bytes). Edges come
/// in depth-first order, the left child first whatever the row, so a pass's
/// branches repeat from row to row.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Edge {
    /// The factor when the feature's `o` above the edge is 0: the edge's zero
    /// fraction, times the child's value when it is a leaf.
    cold_factor: f64,
    /// The parent's position in [`Program::routes`].
    parent: u32,
    /// The parent's feature.
    feature: u32,
    /// 1 + the position of the nearest edge above that tests the same feature; 0 when none.
    above: u32,
    /// The parent's depth (the root's is 0), with the [`RIGHT`] and [`INTO_LEAF`] flags.
    depth: u32,
}

/// Bit of [`Edge::depth`]: the edge leads to its parent's right child.
const RIGHT: u32 = 1 << 31;
/// Bit of [`Edge::depth`]: the edge leads to a leaf.
const INTO_LEAF: u32 = 1 << 30;

impl Edge {
    #[inline(always)]
    fn depth(&self) -> usize {
        (self.depth & (INTO_LEAF - 1)) as usize
    }

    #[inline(always)]
    fn leads_to_leaf(&self) -> bool {
        self.depth & INTO_LEAF != 0
    }
}

/// What an edge's lanes are made of.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Shape {
    /// The feature's combined zero fraction below the edge and above it (1 when not above).
    zero: f64,
    zero_above: f64,
    /// Whether the feature is tested above.
    tested_above: bool,
    /// The child's value when it is a leaf, else `None`.
    leaf: Option<f64>,
}

/// A tree compiled for the pass.
#[derive(Debug, Clone, Default, PartialEq)]
struct Program {
    /// How each internal node sends the row, in the order edges name them.
    routes: Vec<Route>,
    /// The positions in `routes` of categorical splits.
    categorical: Vec<u32>,
    edges: Vec<Edge>,
    /// Per edge, four blocks of lanes: [`edge_lanes`] for `o = 0`, then for `o = 1`.
    /// Empty when the lanes are computed during the pass.
    tables: Vec<Lanes>,
    /// Per edge, what its lanes are made of.
    shapes: Vec<Shape>,
    /// While compiling: node index and depth of each internal node.
    internal: Vec<(u32, u32)>,
}

/// What TreeSHAP needs of one tree beyond its nodes.
#[derive(Debug, Clone, PartialEq)]
struct ShapTree {
    /// The cover-weighted mean leaf value: the tree's share of the bias.
    baseline: f64,
    /// Chunks of quadrature points: `LANES × chunks ≥ unique features / 2` on its deepest path.
    chunks: usize,
    /// The compiled tree, when the ensemble's tables fit [`TABLE_BUDGET`].
    program: Option<Program>,
    /// The tree's leaf table, when it has one (it is then explained from it).
    table: Option<LeafTable>,
}

/// Everything TreeSHAP reads of an ensemble besides its nodes, built by
/// [`TreeEnsemble::validate`] (the nodes are then known to be valid).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct ShapPlan {
    trees: Vec<ShapTree>,
    /// Quadrature rules by number of chunks (index 0: one chunk).
    quadratures: Vec<Quadrature>,
}

/// Chunks of points that integrate exactly the products of a path with
/// `unique_features` distinct features.
fn chunks_for(unique_features: usize) -> usize {
    unique_features.div_ceil(2 * LANES).max(1)
}

impl ShapPlan {
    /// Baselines, quadrature sizes and, within [`TABLE_BUDGET`], compiled trees.
    pub(super) fn new(ensemble: &TreeEnsemble) -> Self {
        Self::within(ensemble, TABLE_BUDGET)
    }

    /// How many trees are explained from a leaf table.
    #[cfg(test)]
    pub(super) fn leaf_tables(&self) -> usize {
        self.trees.iter().filter(|tree| tree.table.is_some()).count()
    }

    /// [`ShapPlan::new`] with tables kept only if they take at most `budget` bytes.
    pub(super) fn within(ensemble: &TreeEnsemble, budget: usize) -> Self {
        let nodes = &ensemble.nodes;
        // Cover-weighted mean leaf value below each node, children (later indices) first.
        let mut expected = vec![0.0; nodes.len()];
        for (idx, node) in nodes.iter().enumerate().rev() {
            expected[idx] = if node.is_leaf() {
                node.value
            } else {
                let (left, right) = (node.left as usize, node.right as usize);
                let (zero_left, zero_right) = zero_fractions(node, &nodes[left], &nodes[right]);
                zero_left * expected[left] + zero_right * expected[right]
            };
        }
        let features_used = nodes.iter().filter(|n| !n.is_leaf()).map(|n| n.feature as usize + 1);
        let mut per_feature = vec![0u32; features_used.max().unwrap_or(0)];
        let mut trees: Vec<ShapTree> = ensemble
            .roots
            .iter()
            .map(|&root| ShapTree {
                baseline: expected[root as usize],
                chunks: chunks_for(most_unique_features(nodes, root, &mut per_feature)),
                program: None,
                table: None,
            })
            .collect();
        // Leaf tables first, as long as they fit the budget; the other trees are compiled.
        let mut table_bytes = 0;
        for (tree, &root) in trees.iter_mut().zip(&ensemble.roots) {
            let Some(table) = leaf_table(nodes, root) else { continue };
            table_bytes += table.shares.len() * size_of::<f64>()
                + table.leaves.len() * size_of::<TableLeaf>()
                + table.routes.len() * size_of::<Route>();
            if table_bytes > budget {
                break;
            }
            tree.table = Some(table);
        }
        let budget = budget.saturating_sub(table_bytes);
        let most_chunks = trees.iter().map(|t| t.chunks).max().unwrap_or(1);
        let quadratures: Vec<Quadrature> = (1..=most_chunks).map(Quadrature::new).collect();
        // Every node but a root is the child end of one edge.
        let bytes: usize = trees
            .iter()
            .zip(&ensemble.roots)
            .filter(|(tree, _)| tree.table.is_none())
            .map(|(tree, &root)| {
                let edges = tree_size(nodes, root).saturating_sub(1);
                edges
                    * (size_of::<Edge>()
                        + size_of::<Shape>()
                        + 4 * tree.chunks * size_of::<Lanes>())
            })
            .sum();
        if bytes <= budget {
            let mut stack = Vec::new();
            for (tree, &root) in trees.iter_mut().zip(&ensemble.roots) {
                if tree.table.is_some() {
                    continue;
                }
                let mut program = Program::default();
                let rule = &quadratures[tree.chunks - 1];
                compile(nodes, root, Some(rule), &mut program, &mut stack, &mut per_feature);
                tree.program = Some(program);
            }
        }
        ShapPlan { trees, quadratures }
    }
}

/// Number of nodes in the tree at `root`.
fn tree_size(nodes: &[Node], root: u32) -> usize {
    let mut stack = vec![root];
    let mut count = 0;
    while let Some(idx) = stack.pop() {
        count += 1;
        let node = &nodes[idx as usize];
        if !node.is_leaf() {
            stack.push(node.left);
            stack.push(node.right);
        }
    }
    count
}

/// The most distinct features tested on one root-to-leaf path of the tree at
/// `root`, by an explicit depth-first walk (trees may be deep). `times_on_path`
/// holds a zero per feature, and is left so.
fn most_unique_features(nodes: &[Node], root: u32, times_on_path: &mut [u32]) -> usize {
    // (node, whether its subtree is done): a node's feature counts for its subtree.
    let mut stack = vec![(root, false)];
    let (mut unique, mut most) = (0, 0);
    while let Some((idx, done)) = stack.pop() {
        let node = &nodes[idx as usize];
        if node.is_leaf() {
            most = most.max(unique);
            continue;
        }
        let count = &mut times_on_path[node.feature as usize];
        if done {
            *count -= 1;
            unique -= usize::from(*count == 0);
            continue;
        }
        unique += usize::from(*count == 0);
        *count += 1;
        stack.push((idx, true));
        stack.push((node.right, false));
        stack.push((node.left, false));
    }
    most
}

/// A step of the compiling walk.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Visit the `right` (or left) child of internal node number `parent`.
    Child { parent: u32, right: bool },
    /// The subtree below an edge is done: the feature's nearest edge is `above` again.
    Restore { feature: u32, above: u32 },
}

/// Compiles the tree at `root` into `program` (cleared first), with the lane
/// tables of `rule` when given. `last_edge` holds a zero per feature, and is
/// left so.
fn compile(
    nodes: &[Node],
    root: u32,
    rule: Option<&Quadrature>,
    program: &mut Program,
    stack: &mut Vec<Step>,
    last_edge: &mut [u32],
) {
    program.routes.clear();
    program.categorical.clear();
    program.edges.clear();
    program.tables.clear();
    program.shapes.clear();
    program.internal.clear();
    stack.clear();
    if nodes[root as usize].is_leaf() {
        return;
    }
    push_children(nodes, program, stack, root, 0);
    while let Some(step) = stack.pop() {
        let (parent, right) = match step {
            Step::Restore { feature, above } => {
                last_edge[feature as usize] = above;
                continue;
            }
            Step::Child { parent, right } => (parent, right),
        };
        let (parent_idx, depth) = program.internal[parent as usize];
        let node = &nodes[parent_idx as usize];
        let child = if right { node.right } else { node.left };
        let (zero_left, zero_right) =
            zero_fractions(node, &nodes[node.left as usize], &nodes[node.right as usize]);
        let zero_edge = if right { zero_right } else { zero_left };
        let above = last_edge[node.feature as usize];
        let zero_above = match above.checked_sub(1) {
            Some(edge) => program.shapes[edge as usize].zero,
            None => 1.0,
        };
        let child_node = &nodes[child as usize];
        let leaf = child_node.is_leaf().then_some(child_node.value);
        let edge = Edge {
            cold_factor: zero_edge * leaf.unwrap_or(1.0),
            parent,
            feature: node.feature,
            above,
            depth: depth
                | if right { RIGHT } else { 0 }
                | if leaf.is_some() { INTO_LEAF } else { 0 },
        };
        let shape =
            Shape { zero: zero_above * zero_edge, zero_above, tested_above: above != 0, leaf };
        if let Some(rule) = rule {
            for one in [0.0, 1.0] {
                let start = program.tables.len();
                program.tables.resize(start + 2 * rule.weights.len(), [0.0; LANES]);
                let (factor, credit) = program.tables[start..].split_at_mut(rule.weights.len());
                edge_lanes(&shape, one, rule, factor, credit);
            }
        }
        program.edges.push(edge);
        program.shapes.push(shape);
        if leaf.is_none() {
            stack.push(Step::Restore { feature: node.feature, above });
            last_edge[node.feature as usize] = program.edges.len() as u32;
            push_children(nodes, program, stack, child, depth + 1);
        }
    }
}

/// Lists internal node `idx` (at `depth`) and schedules its children, left first.
fn push_children(
    nodes: &[Node],
    program: &mut Program,
    stack: &mut Vec<Step>,
    idx: u32,
    depth: u32,
) {
    let parent = program.routes.len() as u32;
    let route = Route::of(&nodes[idx as usize]);
    if route.feature & CATEGORICAL != 0 {
        program.categorical.push(parent);
    }
    program.routes.push(route);
    program.internal.push((idx, depth));
    stack.push(Step::Child { parent, right: true });
    stack.push(Step::Child { parent, right: false });
}

/// The lanes of an edge whose feature's `o` above it is 1, for its own `o`
/// (0 or 1). With `f(z, o) = z (1-u) + o u`, the edge's factor `f(z, o)`
/// replaces the feature's factor above, `f(z', 1)` (1 when the feature is not
/// above), so the path product below is the one above times `ratio = f(z, o) /
/// f(z', 1)`; and the edge credits its subtree sum times `coefficient = (o - z)
/// / f(z, o) - (1 - z') / f(z', 1)`, taking back what the edge above credited
/// for the same leaves. Into an internal node, `factor` is the ratio and
/// `credit` the coefficient; into a leaf, whose subtree sum is the product
/// times its value, `factor` is `value × ratio` and `credit` is `value × ratio
/// × coefficient`, so the pass credits the leaf straight from the product above.
fn edge_lanes(
    shape: &Shape,
    one: f64,
    rule: &Quadrature,
    factor: &mut [Lanes],
    credit: &mut [Lanes],
) {
    let (z, z_above, fresh) = (shape.zero, shape.zero_above, !shape.tested_above);
    let lanes = factor
        .iter_mut()
        .zip(credit.iter_mut())
        .zip(&rule.points)
        .zip(&rule.complement)
        .zip(&rule.inverse_complement);
    for ((((factor, credit), u), complement), inverse_complement) in lanes {
        for j in 0..LANES {
            let (factor_above, coefficient_above) = if fresh {
                (1.0, 0.0)
            } else {
                let factor_above = z_above * complement[j] + u[j];
                (factor_above, (1.0 - z_above) / factor_above)
            };
            let (own_factor, own_coefficient) = if one == 0.0 {
                // (0 - z) / (z (1-u)), without dividing by a zero `z`.
                (z * complement[j], -inverse_complement[j])
            } else {
                let own_factor = z * complement[j] + u[j];
                (own_factor, (1.0 - z) / own_factor)
            };
            let ratio = own_factor / factor_above;
            let coefficient = own_coefficient - coefficient_above;
            (factor[j], credit[j]) = match shape.leaf {
                Some(value) => (value * ratio, value * ratio * coefficient),
                None => (ratio, coefficient),
            };
        }
    }
}

/// Reusable buffers for [`TreeEnsemble::contributions_into`]; they grow to the
/// largest tree met and are then reused without allocating.
#[derive(Debug, Clone, Default)]
pub struct ShapScratch {
    /// Per depth: the product of the path's factors (times the quadrature weights).
    path: Vec<Lanes>,
    /// Per depth: the sum of the products of the subtree's leaves, times their values.
    subtree: Vec<Lanes>,
    /// Per depth: how the edge into that depth turns a subtree sum into its contribution.
    coefficient: Vec<Lanes>,
    /// Per depth: the feature of the edge into that depth.
    feature: Vec<u32>,
    /// Per internal node of the tree: whether the row goes left.
    left: Vec<bool>,
    /// 1 and then, per edge, its `o` combined with the feature's `o` above.
    one: Vec<f64>,
    /// The lanes of one edge, when the tree has no tables.
    lanes: Vec<Lanes>,
    /// The tree compiled at this call, when the ensemble keeps no programs.
    program: Program,
    stack: Vec<Step>,
    last_edge: Vec<u32>,
}

impl ShapScratch {
    fn fit(&mut self, ensemble: &TreeEnsemble, chunks: usize) {
        let levels = ensemble.max_depth + 2;
        if self.path.len() < levels * chunks {
            self.path.resize(levels * chunks, [0.0; LANES]);
            self.subtree.resize(levels * chunks, [0.0; LANES]);
            self.coefficient.resize(levels * chunks, [0.0; LANES]);
        }
        if self.lanes.len() < 2 * chunks {
            self.lanes.resize(2 * chunks, [0.0; LANES]);
        }
        if self.feature.len() < levels {
            self.feature.resize(levels, 0);
        }
        if self.last_edge.len() < ensemble.n_features {
            self.last_edge.resize(ensemble.n_features, 0);
        }
    }
}

impl TreeEnsemble {
    /// Exact TreeSHAP contributions of one row: `out` is `n_outputs * (n_features + 1)`
    /// long, laid out per output with the bias last, and each output's slice sums
    /// to its raw output. Allocates nothing once `scratch` has grown.
    pub fn contributions_into(
        &self,
        row: &[f32],
        out: &mut [f64],
        scratch: &mut ShapScratch,
    ) -> Result<()> {
        let width = self.n_features + 1;
        if out.len() != self.n_outputs * width {
            return Err(MlError::InvalidData(format!(
                "contributions need {} values, got {}",
                self.n_outputs * width,
                out.len()
            )));
        }
        if self.shap.trees.len() != self.roots.len() {
            return Err(MlError::Corrupted("tree ensemble explained before validation".into()));
        }
        out.fill(0.0);
        for (k, base) in self.base_score.iter().enumerate() {
            out[k * width + self.n_features] += base;
        }
        for ((&root, &output), tree) in self.roots.iter().zip(&self.outputs).zip(&self.shap.trees) {
            let phi = &mut out[output as usize * width..(output as usize + 1) * width];
            phi[self.n_features] += tree.baseline;
            if let Some(table) = &tree.table {
                self.run_table(table, row, phi);
                continue;
            }
            let rule = &self.shap.quadratures[tree.chunks - 1];
            scratch.fit(self, tree.chunks);
            match &tree.program {
                Some(program) => self.run(program, row, phi, rule, scratch),
                None => {
                    let mut program = std::mem::take(&mut scratch.program);
                    compile(
                        &self.nodes,
                        root,
                        None,
                        &mut program,
                        &mut scratch.stack,
                        &mut scratch.last_edge,
                    );
                    self.run(&program, row, phi, rule, scratch);
                    // Keep the buffers for the next tree.
                    scratch.program = program;
                }
            }
        }
        Ok(())
    }

    /// Adds the contributions of one tree explained from its leaf table to `phi` (the bias
    /// aside).
    fn run_table(&self, table: &LeafTable, row: &[f32], phi: &mut [f64]) {
        let mut left = 0u64;
        for (bit, &route) in table.routes.iter().enumerate() {
            let x = row.get(route.feature()).copied().unwrap_or(f32::NAN);
            left |= u64::from(route.numeric_left(x)) << bit;
        }
        for &position in &table.categorical {
            let route = table.routes[position as usize];
            let x = row.get(route.feature()).copied().unwrap_or(f32::NAN);
            let bit = 1u64 << position;
            left = if self.in_category_set(route, x) { left | bit } else { left & !bit };
        }
        for leaf in &table.leaves {
            let count = leaf.count as usize;
            let mut case = 0;
            for j in 0..count {
                case |= usize::from(left & leaf.tested[j] == leaf.left[j]) << j;
            }
            let start = leaf.offset as usize + case * count;
            for (&feature, &share) in leaf.features[..count].iter().zip(&table.shares[start..]) {
                phi[feature as usize] += share;
            }
        }
    }

    /// Adds the contributions of one compiled tree to `phi` (the bias aside),
    /// with the number of chunks of points as a constant when the tree has 1
    /// to 8 (so the lane loops unroll into vector code), else read at run time.
    fn run(
        &self,
        program: &Program,
        row: &[f32],
        phi: &mut [f64],
        rule: &Quadrature,
        scratch: &mut ShapScratch,
    ) {
        match rule.weights.len() {
            1 => self.run_chunks::<1>(program, row, phi, rule, scratch),
            2 => self.run_chunks::<2>(program, row, phi, rule, scratch),
            3 => self.run_chunks::<3>(program, row, phi, rule, scratch),
            4 => self.run_chunks::<4>(program, row, phi, rule, scratch),
            5 => self.run_chunks::<5>(program, row, phi, rule, scratch),
            6 => self.run_chunks::<6>(program, row, phi, rule, scratch),
            7 => self.run_chunks::<7>(program, row, phi, rule, scratch),
            8 => self.run_chunks::<8>(program, row, phi, rule, scratch),
            _ => self.run_chunks::<0>(program, row, phi, rule, scratch),
        }
    }

    /// [`TreeEnsemble::run`] with `C` chunks of points (0: as many as `rule` has).
    fn run_chunks<const C: usize>(
        &self,
        program: &Program,
        row: &[f32],
        phi: &mut [f64],
        rule: &Quadrature,
        scratch: &mut ShapScratch,
    ) {
        let n = if C == 0 { rule.weights.len() } else { C };
        let ShapScratch { path, subtree, coefficient, feature, left, one, lanes, .. } = scratch;
        left.clear();
        // Numeric tests first, without branches (the numeric test of a categorical
        // split is meaningless), then the categorical splits: branching on the kind
        // of each node would mispredict as often as categorical splits come.
        left.extend(program.routes.iter().map(|&route| {
            let x = row.get(route.feature()).copied().unwrap_or(f32::NAN);
            route.numeric_left(x)
        }));
        for &position in &program.categorical {
            let route = program.routes[position as usize];
            let x = row.get(route.feature()).copied().unwrap_or(f32::NAN);
            left[position as usize] = self.in_category_set(route, x);
        }
        one.clear();
        one.push(1.0);
        path[..n].copy_from_slice(&rule.weights[..n]);
        // Edges whose subtree sum is still open: those into depths 1..=open.
        let mut open = 0;
        for (position, edge) in program.edges.iter().enumerate() {
            let depth = edge.depth();
            while open > depth {
                close(subtree, coefficient, feature, phi, open, n);
                open -= 1;
            }
            let one_above = one[edge.above as usize];
            let this_way = left[edge.parent as usize] == (edge.depth & RIGHT == 0);
            // A product, not a select: LLVM turns the select into a branch that
            // mispredicts every other edge.
            let edge_one = one_above * f64::from(u8::from(this_way));
            one.push(edge_one);
            let (above, below) = path.split_at_mut((depth + 1) * n);
            let (above, below) = (&above[depth * n..depth * n + n], &mut below[..n]);
            let (upper, lower) = subtree.split_at_mut((depth + 1) * n);
            let (parent_sum, sum) = (&mut upper[depth * n..depth * n + n], &mut lower[..n]);
            let (factor, credit): (&[Lanes], &[Lanes]) = if program.tables.is_empty() {
                let (factor, credit) = lanes[..2 * n].split_at_mut(n);
                edge_lanes(&program.shapes[position], edge_one, rule, factor, credit);
                (factor, credit)
            } else {
                let start = (4 * position + 2 * usize::from(edge_one != 0.0)) * n;
                program.tables[start..start + 2 * n].split_at(n)
            };
            // The lanes assume the feature's `o` above is 1. When it is 0 (the row
            // failed a test of this feature higher up), the factor only shrinks by
            // the edge's zero fraction and the credits of this edge and the one
            // above, both `-1 / (1 - u)`, cancel. Blended rather than branched on,
            // since which way that goes changes from row to row; the feature is
            // above on about one edge in three, and the others need no blend.
            let blend = Blend { one_above, cold_factor: (1.0 - one_above) * edge.cold_factor };
            let into_leaf = edge.leads_to_leaf();
            let share = if edge.above == 0 {
                descend::<false>(
                    above,
                    below,
                    sum,
                    parent_sum,
                    coefficient,
                    factor,
                    credit,
                    blend,
                    into_leaf,
                    depth,
                    n,
                )
            } else {
                descend::<true>(
                    above,
                    below,
                    sum,
                    parent_sum,
                    coefficient,
                    factor,
                    credit,
                    blend,
                    into_leaf,
                    depth,
                    n,
                )
            };
            if into_leaf {
                phi[edge.feature as usize] += share;
            } else {
                feature[depth + 1] = edge.feature;
                open = depth + 1;
            }
        }
        while open > 0 {
            close(subtree, coefficient, feature, phi, open, n);
            open -= 1;
        }
    }
}

/// How lanes computed for a feature whose `o` above is 1 are corrected when it is 0.
#[derive(Clone, Copy)]
struct Blend {
    one_above: f64,
    cold_factor: f64,
}

/// Applies one edge: into a leaf, adds the leaf's product to its parent's sum
/// and returns its credit; into an internal node, opens its subtree (path
/// product, zero sum, coefficient) one level below `depth` and returns 0.
/// With `BLEND`, corrects `factor` and `credit` by `blend`.
#[expect(
    clippy::too_many_arguments,
    reason = "the pass's buffers, split so they can be borrowed together"
)]
#[inline(always)]
fn descend<const BLEND: bool>(
    above: &[Lanes],
    below: &mut [Lanes],
    sum: &mut [Lanes],
    parent_sum: &mut [Lanes],
    coefficient: &mut [Lanes],
    factor: &[Lanes],
    credit: &[Lanes],
    blend: Blend,
    into_leaf: bool,
    depth: usize,
    n: usize,
) -> f64 {
    let lane = |k: usize| -> (Lanes, Lanes) {
        if BLEND {
            let f = add(scale(factor[k], blend.one_above), [blend.cold_factor; LANES]);
            (f, scale(credit[k], blend.one_above))
        } else {
            (factor[k], credit[k])
        }
    };
    if into_leaf {
        // Opened and closed at once: the subtree is the leaf.
        let mut total = [0.0; LANES];
        for k in 0..n {
            let (f, c) = lane(k);
            total = add(total, mul(above[k], c));
            parent_sum[k] = add(parent_sum[k], mul(above[k], f));
        }
        total.iter().sum()
    } else {
        let coefficient = &mut coefficient[(depth + 1) * n..(depth + 2) * n];
        for k in 0..n {
            let (f, c) = lane(k);
            below[k] = mul(above[k], f);
            sum[k] = [0.0; LANES];
            coefficient[k] = c;
        }
        0.0
    }
}

/// Closes the edge into `depth`: credits its feature with the subtree sum
/// there and adds that sum into its parent's.
#[inline(always)]
fn close(
    subtree: &mut [Lanes],
    coefficient: &[Lanes],
    feature: &[u32],
    phi: &mut [f64],
    depth: usize,
    n: usize,
) {
    let (upper, lower) = subtree.split_at_mut(depth * n);
    let (parent, below) = (&mut upper[(depth - 1) * n..], &lower[..n]);
    let coefficient = &coefficient[depth * n..(depth + 1) * n];
    let mut total = [0.0; LANES];
    for k in 0..n {
        let sum = below[k];
        total = add(total, mul(sum, coefficient[k]));
        parent[k] = add(parent[k], sum);
    }
    phi[feature[depth] as usize] += total.iter().sum::<f64>();
}

/// Lane-wise product, written so that it compiles to one vector instruction.
#[inline(always)]
fn mul(a: Lanes, b: Lanes) -> Lanes {
    [a[0] * b[0], a[1] * b[1]]
}

/// Lane-wise sum.
#[inline(always)]
fn add(a: Lanes, b: Lanes) -> Lanes {
    [a[0] + b[0], a[1] + b[1]]
}

/// Every lane times `factor`.
#[inline(always)]
fn scale(a: Lanes, factor: f64) -> Lanes {
    [a[0] * factor, a[1] * factor]
}
