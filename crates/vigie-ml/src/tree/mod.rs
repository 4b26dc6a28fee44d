//! Vigie's own tree-ensemble representation: every tree of every model in
//! one flat node array, with the prediction walk; exact TreeSHAP is in [`shap`].
//!
//! Gradient boosting (trained by hessboost) and the random forest (trained
//! here) both compile into a [`TreeEnsemble`], so saved models, prediction
//! and explanations do not depend on the training library. Nodes are stored
//! so that a child always comes after its parent; [`TreeEnsemble::validate`]
//! checks that on load, which makes every walk terminate on any file.

mod shap;
mod walk;

use serde::{Deserialize, Serialize};

use shap::ShapPlan;
pub use shap::ShapScratch;
use walk::Walk;

use crate::error::{MlError, Result};
use crate::matrix::Link;

/// `left` of a leaf.
pub const LEAF: u32 = u32::MAX;
/// `categories` of a numeric split.
pub const NO_CATEGORIES: u32 = u32::MAX;

/// One node. Internal nodes send `x[feature] < threshold` (or, for a
/// categorical split, categories in the node's set) left; missing values go
/// to `default_left`'s side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(from = "NodeRecord", into = "NodeRecord")]
pub struct Node {
    /// The feature tested.
    pub feature: u32,
    /// Numeric split point.
    pub threshold: f32,
    /// Index of the left child in the ensemble's node array, or [`LEAF`].
    pub left: u32,
    /// Index of the right child.
    pub right: u32,
    /// Where missing values go.
    pub default_left: bool,
    /// Index into [`TreeEnsemble::category_sets`] for a categorical split, else [`NO_CATEGORIES`].
    pub categories: u32,
    /// The leaf's contribution to its output (learning rate and tree weight included).
    pub value: f64,
    /// Training weight that reached the node (hessian sum or row count), for TreeSHAP.
    pub cover: f64,
}

/// A node as stored: a positional record, so a forest of millions of nodes
/// does not repeat field names (feature, threshold, left, right, default_left,
/// categories, value, cover).
#[derive(Serialize, Deserialize)]
struct NodeRecord(u32, f32, u32, u32, bool, u32, f64, f64);

impl From<NodeRecord> for Node {
    fn from(r: NodeRecord) -> Self {
        Node {
            feature: r.0,
            threshold: r.1,
            left: r.2,
            right: r.3,
            default_left: r.4,
            categories: r.5,
            value: r.6,
            cover: r.7,
        }
    }
}

impl From<Node> for NodeRecord {
    fn from(n: Node) -> Self {
        NodeRecord(
            n.feature,
            n.threshold,
            n.left,
            n.right,
            n.default_left,
            n.categories,
            n.value,
            n.cover,
        )
    }
}

impl Node {
    /// A leaf.
    pub fn leaf(value: f64, cover: f64) -> Self {
        Node {
            feature: 0,
            threshold: 0.0,
            left: LEAF,
            right: LEAF,
            default_left: true,
            categories: NO_CATEGORIES,
            value,
            cover,
        }
    }

    /// Whether the node is a leaf.
    #[inline]
    pub fn is_leaf(&self) -> bool {
        self.left == LEAF
    }
}

/// A forest of regression trees whose leaf values add up (per output) to the raw prediction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeEnsemble {
    /// Number of input features.
    pub n_features: usize,
    /// Number of raw outputs (classes for multiclass, else 1).
    pub n_outputs: usize,
    /// Starting raw value per output.
    pub base_score: Vec<f64>,
    /// Index of each tree's root in `nodes`.
    pub roots: Vec<u32>,
    /// The output each tree adds to.
    pub outputs: Vec<u32>,
    /// All nodes of all trees.
    pub nodes: Vec<Node>,
    /// Bit sets of the categories sent left by categorical splits.
    pub category_sets: Vec<Vec<u64>>,
    /// How raw outputs become predictions.
    pub link: Link,
    /// Deepest root-to-leaf path (edges), recomputed by [`TreeEnsemble::validate`].
    #[serde(skip)]
    pub max_depth: usize,
    /// The trees packed for the prediction walk, built by [`TreeEnsemble::validate`].
    #[serde(skip)]
    walk: Box<Walk>,
    /// TreeSHAP's baselines, quadrature rules and compiled trees, built by
    /// [`TreeEnsemble::validate`].
    #[serde(skip)]
    shap: Box<ShapPlan>,
}

/// How a split sends a row, packed in 8 bytes for the walks.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
struct Route {
    /// The feature, with the [`DEFAULT_LEFT`] and [`CATEGORICAL`] flags.
    feature: u32,
    /// A numeric split's threshold (as bits), or a categorical split's index
    /// into [`TreeEnsemble::category_sets`].
    value: u32,
}

/// Bit of [`Route::feature`] marking "missing values go left".
const DEFAULT_LEFT: u32 = 1 << 31;
/// Bit of [`Route::feature`] marking a categorical split.
const CATEGORICAL: u32 = 1 << 30;
/// The bits of [`Route::feature`] that hold the feature: a model reads fewer
/// than 2^29 features, so the walk's key slots (twice the feature count) fit too.
const FEATURE: u32 = (1 << 29) - 1;

impl Route {
    fn of(node: &Node) -> Self {
        let default_left = if node.default_left { DEFAULT_LEFT } else { 0 };
        if node.categories == NO_CATEGORIES {
            Route { feature: node.feature | default_left, value: node.threshold.to_bits() }
        } else {
            Route { feature: node.feature | default_left | CATEGORICAL, value: node.categories }
        }
    }

    #[inline(always)]
    fn feature(self) -> usize {
        (self.feature & FEATURE) as usize
    }

    /// Whether a numeric split sends `x` left: below the threshold, or missing
    /// when missing values go left. Without branches.
    #[inline(always)]
    fn numeric_left(self, x: f32) -> bool {
        (x < f32::from_bits(self.value)) | (x.is_nan() & (self.feature & DEFAULT_LEFT != 0))
    }
}

/// Builds a [`TreeEnsemble`] one tree at a time, renumbering nodes so children follow parents.
#[derive(Debug)]
pub struct EnsembleBuilder {
    ensemble: TreeEnsemble,
}

/// A tree as a training library hands it over: local node indices, root at 0.
pub struct TreeSource<'a> {
    /// Number of nodes.
    pub n_nodes: usize,
    /// Children of node `i` (`None` for a leaf).
    pub children: &'a dyn Fn(usize) -> Option<(usize, usize)>,
    /// The node itself; `left`/`right` are ignored and `categories` is replaced.
    pub node: &'a dyn Fn(usize) -> Node,
    /// For a categorical split, the category codes sent left.
    pub left_categories: &'a dyn Fn(usize) -> Option<Vec<u32>>,
}

impl EnsembleBuilder {
    /// An empty ensemble.
    pub fn new(n_features: usize, n_outputs: usize, base_score: Vec<f64>, link: Link) -> Self {
        EnsembleBuilder {
            ensemble: TreeEnsemble {
                n_features,
                n_outputs,
                base_score,
                roots: Vec::new(),
                outputs: Vec::new(),
                nodes: Vec::new(),
                category_sets: Vec::new(),
                link,
                max_depth: 0,
                walk: Box::default(),
                shap: Box::default(),
            },
        }
    }

    /// Appends a tree adding to `output`, visiting it breadth-first from node 0.
    pub fn push_tree(&mut self, output: u32, source: &TreeSource<'_>) -> Result<()> {
        let ensemble = &mut self.ensemble;
        let root = ensemble.nodes.len() as u32;
        ensemble.roots.push(root);
        ensemble.outputs.push(output);
        // (local index) in visit order; the new index of queue[k] is root + k.
        let mut queue = vec![0usize];
        let mut head = 0;
        while head < queue.len() {
            if queue.len() > source.n_nodes {
                return Err(MlError::Boosting("tree has a cycle".into()));
            }
            let local = queue[head];
            let mut node = (source.node)(local);
            node.categories = NO_CATEGORIES;
            match (source.children)(local) {
                None => {
                    node.left = LEAF;
                    node.right = LEAF;
                }
                Some((left, right)) => {
                    node.left = root + queue.len() as u32;
                    queue.push(left);
                    node.right = root + queue.len() as u32;
                    queue.push(right);
                    if let Some(categories) = (source.left_categories)(local) {
                        let max = categories.iter().copied().max().unwrap_or(0) as usize;
                        let mut bits = vec![0u64; max / 64 + 1];
                        for c in categories {
                            bits[c as usize / 64] |= 1 << (c % 64);
                        }
                        node.categories = ensemble.category_sets.len() as u32;
                        ensemble.category_sets.push(bits);
                    }
                }
            }
            ensemble.nodes.push(node);
            head += 1;
        }
        Ok(())
    }

    /// The finished, validated ensemble.
    pub fn finish(self) -> Result<TreeEnsemble> {
        let mut ensemble = self.ensemble;
        ensemble.validate()?;
        Ok(ensemble)
    }
}

impl TreeEnsemble {
    /// Checks every index and value so that prediction cannot go out of
    /// bounds or loop, and recomputes `max_depth`.
    pub fn validate(&mut self) -> Result<()> {
        let bad = |what: String| Err(MlError::Corrupted(format!("tree ensemble: {what}")));
        if self.base_score.len() != self.n_outputs || self.n_outputs == 0 {
            return bad(format!(
                "{} base scores for {} outputs",
                self.base_score.len(),
                self.n_outputs
            ));
        }
        if self.roots.len() != self.outputs.len() {
            return bad("roots and outputs differ in length".into());
        }
        let n_nodes = self.nodes.len();
        for (&root, &output) in self.roots.iter().zip(&self.outputs) {
            if root as usize >= n_nodes || output as usize >= self.n_outputs {
                return bad(format!("tree root {root} or output {output} out of range"));
            }
        }
        let mut depth = vec![0usize; n_nodes];
        // Every node has one parent at most, and a root none, so trees are trees
        // (a node shared by two parents would make some walks exponential).
        let mut has_parent = vec![false; n_nodes];
        let mut max_depth = 0;
        for (idx, node) in self.nodes.iter().enumerate() {
            if !node.value.is_finite() || !node.cover.is_finite() {
                return bad(format!("node {idx} has a non-finite value"));
            }
            if node.is_leaf() {
                continue;
            }
            let (left, right) = (node.left as usize, node.right as usize);
            if left <= idx || right <= idx || left >= n_nodes || right >= n_nodes {
                return bad(format!("node {idx} has children {left} and {right}"));
            }
            if node.feature as usize >= self.n_features {
                return bad(format!(
                    "node {idx} tests feature {} of {}",
                    node.feature, self.n_features
                ));
            }
            if node.categories != NO_CATEGORIES
                && node.categories as usize >= self.category_sets.len()
            {
                return bad(format!("node {idx} names category set {}", node.categories));
            }
            if left == right || has_parent[left] || has_parent[right] {
                return bad(format!("node {idx} shares a child with another node"));
            }
            (has_parent[left], has_parent[right]) = (true, true);
            depth[left] = depth[idx] + 1;
            depth[right] = depth[idx] + 1;
            max_depth = max_depth.max(depth[idx] + 1);
        }
        if let Some(&root) = self.roots.iter().find(|&&root| has_parent[root as usize]) {
            return bad(format!("tree root {root} is another node's child"));
        }
        if self.n_features > FEATURE as usize {
            return bad(format!("{} features is more than a model can have", self.n_features));
        }
        if max_depth >= 1 << 30 {
            return bad(format!("a tree is {max_depth} levels deep"));
        }
        self.max_depth = max_depth;
        *self.walk = Walk::new(self);
        *self.shap = ShapPlan::new(self);
        Ok(())
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Whether a split sends value `x` left: below a numeric threshold, or in
    /// the category set; a missing value goes the split's default way. The
    /// definition the walks (which split the two kinds apart) are tested against.
    #[cfg(test)]
    fn sends_left(&self, route: Route, x: f32) -> bool {
        if route.feature & CATEGORICAL != 0 {
            return self.in_category_set(route, x);
        }
        route.numeric_left(x)
    }

    /// Whether `x` is a category code of a categorical split's set; a value
    /// that is no category code (negative, fractional) is not. Kept out of
    /// line: the walks are tighter without its code.
    #[inline(never)]
    fn in_category_set(&self, route: Route, x: f32) -> bool {
        if x.is_nan() {
            return route.feature & DEFAULT_LEFT != 0;
        }
        if !(0.0..4_294_967_296.0).contains(&x) {
            return false;
        }
        let code = x as u32;
        // A whole number, compared without `f32::fract` (a library call before SSE4.1).
        code as f32 == x
            && self
                .category_sets
                .get(route.value as usize)
                .and_then(|bits| bits.get(code as usize / 64))
                .is_some_and(|word| word >> (code % 64) & 1 == 1)
    }
}

fn zero_fractions(node: &Node, left: &Node, right: &Node) -> (f64, f64) {
    if node.cover > 0.0 { (left.cover / node.cover, right.cover / node.cover) } else { (0.5, 0.5) }
}

#[cfg(test)]
mod tests;
