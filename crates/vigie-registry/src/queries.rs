//! Read-only queries over the whole registry, for exports: every run in full, and where a
//! stored artifact is on disk. Nothing here writes.

use std::path::{Path, PathBuf};

use crate::{Registry, Result, RunDetail};

impl Registry {
    /// Every run in full, oldest first (so a search's run comes before its trials).
    pub fn all_runs(&self) -> Result<Vec<RunDetail>> {
        let mut statement = self.conn.prepare("SELECT id FROM runs ORDER BY started_at, rowid")?;
        let ids = statement
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        ids.iter().map(|id| self.run(id)).collect()
    }

    /// The file of a run artifact, from its path relative to the state folder (as in
    /// [`RunDetail::artifacts`]).
    pub fn artifact_file(&self, relative: &str) -> PathBuf {
        // The database lives at the top of the state folder.
        let database = Path::new(self.conn.path().unwrap_or_default());
        database.parent().unwrap_or(Path::new("")).join(relative)
    }
}
