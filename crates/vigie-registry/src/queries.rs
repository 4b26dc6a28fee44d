//! Read-only queries over the whole registry, for exports: every run in full. Nothing here
//! writes.

use crate::db::Sql;
use crate::{Registry, Result, RunDetail};

impl Registry {
    /// Every run in full, oldest first (so a search's run comes before its trials).
    pub fn all_runs(&self) -> Result<Vec<RunDetail>> {
        let rows = self.db.query("SELECT id FROM runs ORDER BY started_at, id", &[])?;
        let ids = rows.iter().map(|row| self.db.read(row.text(0))).collect::<Result<Vec<_>>>()?;
        ids.iter().map(|id| self.run(id)).collect()
    }
}
