//! Durable state in an embedded SQLite database, one file per node.
//!
//! - Master: every revision it assigned (the change log, with the origin
//!   and proposal of each, so a resent proposal is not applied twice), the
//!   content of each, and every statistics upload with its time (the
//!   global data store that historical status reads).
//! - Local server: the latest revision of each policy it holds, every
//!   client's latest report, statistics of servers below, its proposals
//!   not yet accepted, and its upload sequence numbers.
//! - Client: the effective policies it enforces, content included, so it
//!   enforces the last good policy after a reboot with no network.
//!
//! Engine values are stored as postcard bytes, the encoding of the wire
//! format, so a store holds exactly what was signed and verified.
//!
//! Every commit is one transaction in WAL mode with `synchronous = FULL`:
//! once [`Store`] returns, the change survives a kill of the process and a
//! power cut, and only then does the driver send the messages that
//! acknowledge it.
//!
//! The schema has a version (`PRAGMA user_version`). A store of an older
//! version is migrated in place by the steps in `MIGRATIONS`; a newer one,
//! or a database that is not a tiersync store, is refused with a message
//! saying so, never read.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use thiserror::Error;
use tiersync_engine::master::StoredUpload;
use tiersync_engine::policy::{EffectivePolicy, HeldPolicy, SignedPolicy};
use tiersync_engine::stats::{ClientRecord, SecurityReport, SiteStats};
use tiersync_engine::{
    Blob, ClientState, LocalState, MasterState, NodeId, PolicyChange, PolicyId, Revision, Time,
};

use crate::ids::Role;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 1;

/// Steps from each older version to the next: `(from, sql)`. Version 1 is
/// the first, so there is none yet; a version 2 adds `(1, "ALTER …")`.
const MIGRATIONS: &[(i64, &str)] = &[];

const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value ANY NOT NULL) STRICT;
CREATE TABLE content (digest BLOB PRIMARY KEY, bytes BLOB NOT NULL) STRICT;
CREATE TABLE revision (
    revision INTEGER PRIMARY KEY,
    policy TEXT NOT NULL,
    origin INTEGER NOT NULL,
    proposal INTEGER NOT NULL,
    assigned_at INTEGER NOT NULL,
    signed BLOB NOT NULL,
    content_digest BLOB NOT NULL
) STRICT;
CREATE INDEX revision_by_policy ON revision (policy, revision);
CREATE TABLE upload (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    received INTEGER NOT NULL,
    child INTEGER NOT NULL,
    sites BLOB NOT NULL
) STRICT;
CREATE TABLE held_policy (
    policy TEXT PRIMARY KEY,
    revision INTEGER NOT NULL,
    signed BLOB NOT NULL,
    content_digest BLOB NOT NULL
) STRICT;
CREATE TABLE client (
    id INTEGER PRIMARY KEY,
    name TEXT,
    seen INTEGER NOT NULL,
    report BLOB NOT NULL
) STRICT;
CREATE TABLE child_stats (
    site TEXT PRIMARY KEY,
    child INTEGER NOT NULL,
    stats BLOB NOT NULL
) STRICT;
CREATE TABLE proposal (id INTEGER PRIMARY KEY, change BLOB NOT NULL) STRICT;
CREATE TABLE applied (policy TEXT PRIMARY KEY, revision INTEGER NOT NULL, effective BLOB NOT NULL)
    STRICT;
";

/// Why a store could not be opened, read or written.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed (disk full, I/O error, locked by another process).
    #[error("store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    Dir {
        /// The directory.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The store was written by a newer tiersync.
    #[error(
        "store schema version {found} is newer than this tiersync supports ({SCHEMA_VERSION}); \
         run the newer tiersync, or move the data directory aside to start empty"
    )]
    Newer {
        /// The version found.
        found: i64,
    },
    /// An older schema with no migration path.
    #[error(
        "store schema version {found} is too old to migrate (this tiersync writes {SCHEMA_VERSION})"
    )]
    TooOld {
        /// The version found.
        found: i64,
    },
    /// The file holds tables but is not a tiersync store.
    #[error("{0} is not a tiersync store (it has tables but no tiersync schema version)")]
    Foreign(String),
    /// The store belongs to another role or node.
    #[error("this store belongs to {found}, not to {expected}; check data_dir")]
    WrongOwner {
        /// Owner recorded in the store.
        found: String,
        /// Owner that opened it.
        expected: String,
    },
    /// A stored value does not decode: the file was damaged.
    #[error("damaged store: {0}")]
    Damaged(String),
}

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    postcard::to_allocvec(v).map_err(|e| StoreError::Damaged(format!("encode: {e}")))
}

fn dec<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Damaged(format!("{what}: {e}")))
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// One node's store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

/// A revision the master assigned, to be committed.
#[derive(Debug)]
pub struct AssignedRevision<'a> {
    /// The signed revision with its content.
    pub held: &'a HeldPolicy,
    /// Where it was made.
    pub origin: NodeId,
    /// The origin's proposal id.
    pub proposal: u64,
    /// When the master assigned it.
    pub at: Time,
}

/// What changed at a local server since its last commit.
#[derive(Debug, Default)]
pub struct LocalDelta {
    /// Policies stored or replaced.
    pub policies: Vec<HeldPolicy>,
    /// Policies no longer held (after a snapshot).
    pub removed: Vec<PolicyId>,
    /// The revision now held.
    pub upto: Option<Revision>,
    /// Client reports stored: id, certificate name, record.
    pub clients: Vec<(NodeId, Option<String>, ClientRecord)>,
    /// Statistics stored from child servers.
    pub child_stats: Vec<(NodeId, SiteStats)>,
    /// The complete set of unanswered proposals, when it changed.
    pub proposals: Option<Vec<(u64, PolicyChange)>>,
    /// Upload sequence numbers (sent, acknowledged), when they changed.
    pub stats_seq: Option<(u64, u64)>,
}

impl LocalDelta {
    /// Whether there is nothing to commit.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
            && self.removed.is_empty()
            && self.upto.is_none()
            && self.clients.is_empty()
            && self.child_stats.is_empty()
            && self.proposals.is_none()
            && self.stats_seq.is_none()
    }
}

impl Store {
    /// Opens (or creates) the store of `node`, a `role`, in `dir`.
    pub fn open(dir: &Path, role: Role, node: &str) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::Dir { path: dir.to_owned(), source })?;
        let path = dir.join(format!("{}.sqlite", role.as_str()));
        let conn = Connection::open(&path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // WAL keeps readers off the writer's path; FULL makes each commit
        // durable before it returns, which is what an acknowledgement
        // promises.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        Store::prepare(conn, &path.display().to_string(), role, node)
    }

    /// An in-memory store (for `tiersync replay`, which needs no
    /// durability).
    pub fn in_memory(role: Role, node: &str) -> Result<Store, StoreError> {
        Store::prepare(Connection::open_in_memory()?, ":memory:", role, node)
    }

    fn prepare(conn: Connection, label: &str, role: Role, node: &str) -> Result<Store, StoreError> {
        let mut store = Store { conn };
        let version: i64 = store.conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version == 0 {
            let tables: i64 =
                store.conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
            if tables > 0 {
                return Err(StoreError::Foreign(label.to_string()));
            }
            let tx = store.conn.transaction()?;
            tx.execute_batch(SCHEMA)?;
            tx.execute("INSERT INTO meta VALUES ('owner', ?1)", [owner(role, node)])?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
        } else if version > SCHEMA_VERSION {
            return Err(StoreError::Newer { found: version });
        } else if version < SCHEMA_VERSION {
            store.migrate(version)?;
        }
        let found: String =
            store.conn.query_row("SELECT value FROM meta WHERE key = 'owner'", [], |r| r.get(0))?;
        let expected = owner(role, node);
        if found != expected {
            return Err(StoreError::WrongOwner { found, expected });
        }
        Ok(store)
    }

    fn migrate(&mut self, mut version: i64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        while version < SCHEMA_VERSION {
            let Some((_, sql)) = MIGRATIONS.iter().find(|(from, _)| *from == version) else {
                return Err(StoreError::TooOld { found: version });
            };
            tx.execute_batch(sql)?;
            version += 1;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        Ok(())
    }

    fn meta_u64(&self, key: &str) -> Result<u64, StoreError> {
        let v: Option<i64> = self
            .conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()?;
        Ok(v.map_or(0, u))
    }

    fn content(
        &self,
        digest: &[u8],
        cache: &mut BTreeMap<Vec<u8>, Blob>,
    ) -> Result<Blob, StoreError> {
        if let Some(b) = cache.get(digest) {
            return Ok(b.clone());
        }
        let bytes: Vec<u8> =
            self.conn
                .query_row("SELECT bytes FROM content WHERE digest = ?1", [digest], |r| r.get(0))?;
        let blob = Blob::from_bytes(bytes);
        cache.insert(digest.to_vec(), blob.clone());
        Ok(blob)
    }

    // ---- local server: its own refusals ----

    /// Policy revisions this local server itself refused because they
    /// failed verification, as last committed.
    pub fn local_own_rejected(&self) -> Result<u64, StoreError> {
        self.meta_u64("own_rejected")
    }

    /// Commits the count of this local server's own refusals.
    pub fn set_local_own_rejected(&mut self, n: u64) -> Result<(), StoreError> {
        self.conn.execute("INSERT OR REPLACE INTO meta VALUES ('own_rejected', ?1)", [i(n)])?;
        Ok(())
    }

    // ---- master ----

    /// Everything a master persisted.
    pub fn master_load(&self) -> Result<MasterState, StoreError> {
        let mut state = MasterState::default();
        let mut cache = BTreeMap::new();
        let mut stmt = self.conn.prepare(
            "SELECT origin, proposal, revision, signed, content_digest FROM revision \
             ORDER BY revision",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                r.get(3)?,
                r.get(4)?,
            ))
        })?;
        for row in rows {
            let (origin, proposal, revision, signed, digest): (_, _, _, Vec<u8>, Vec<u8>) = row?;
            let signed: SignedPolicy = dec("revision", &signed)?;
            let content = self.content(&digest, &mut cache)?;
            state.revisions.push(HeldPolicy::new(signed, content));
            let origin = NodeId(u32::try_from(origin).unwrap_or(0));
            state.accepted.push((origin, u(proposal), Revision(u(revision))));
        }
        let mut stmt =
            self.conn.prepare("SELECT received, child, sites FROM upload ORDER BY seq")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, Vec<u8>>(2)?))
        })?;
        for row in rows {
            let (received, child, sites) = row?;
            state.history.push(StoredUpload {
                received: Time(received),
                from: NodeId(u32::try_from(child).unwrap_or(0)),
                sites: dec("upload", &sites)?,
            });
        }
        Ok(state)
    }

    /// Commits revisions and uploads a master has just accepted, in one
    /// transaction.
    pub fn master_commit(
        &mut self,
        revisions: &[AssignedRevision<'_>],
        uploads: &[StoredUpload],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for r in revisions {
            let rec = &r.held.full.record;
            tx.execute(
                "INSERT OR IGNORE INTO content VALUES (?1, ?2)",
                params![&rec.content_digest[..], r.held.content.as_bytes()],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO revision VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    i(rec.revision.0),
                    rec.id.as_str(),
                    i64::from(r.origin.0),
                    i(r.proposal),
                    r.at.0,
                    enc(&*r.held.bare)?,
                    &rec.content_digest[..],
                ],
            )?;
        }
        for up in uploads {
            tx.execute(
                "INSERT INTO upload (received, child, sites) VALUES (?1, ?2, ?3)",
                params![up.received.0, i64::from(up.from.0), enc(&up.sites)?],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every stored revision of one policy, oldest first: revision, when it
    /// was assigned, where it was made, and the signed record.
    pub fn master_revisions(
        &self,
        policy: &str,
    ) -> Result<Vec<(Revision, Time, NodeId, SignedPolicy)>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT revision, assigned_at, origin, signed FROM revision WHERE policy = ?1 \
             ORDER BY revision",
        )?;
        let rows = stmt.query_map([policy], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get(3)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (rev, at, origin, signed): (_, _, _, Vec<u8>) = row?;
            let origin = NodeId(u32::try_from(origin).unwrap_or(0));
            out.push((Revision(u(rev)), Time(at), origin, dec("revision", &signed)?));
        }
        Ok(out)
    }

    // ---- local server ----

    /// Everything a local server persisted, and the names of its clients.
    pub fn local_load(&self) -> Result<(LocalState, BTreeMap<NodeId, String>), StoreError> {
        let mut state = LocalState::default();
        let mut cache = BTreeMap::new();
        let mut stmt = self.conn.prepare("SELECT signed, content_digest FROM held_policy")?;
        let rows =
            stmt.query_map([], |r| Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        for row in rows {
            let (signed, digest) = row?;
            let signed: SignedPolicy = dec("policy", &signed)?;
            state.policies.push(HeldPolicy::new(signed, self.content(&digest, &mut cache)?));
        }
        state.upto = Revision(self.meta_u64("upto")?);
        state.stats_seq = self.meta_u64("stats_seq")?;
        state.stats_acked = self.meta_u64("stats_acked")?;
        state.rejected_by_server = self.local_own_rejected()?;

        let mut names = BTreeMap::new();
        let mut stmt =
            self.conn.prepare("SELECT id, name, seen, report FROM client ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?;
        for row in rows {
            let (id, name, seen, report) = row?;
            let id = NodeId(u32::try_from(id).unwrap_or(0));
            let report: SecurityReport = dec("client report", &report)?;
            state.clients.push((id, ClientRecord { report: report.into(), seen: Time(seen) }));
            if let Some(name) = name {
                names.insert(id, name);
            }
        }
        let mut stmt = self.conn.prepare("SELECT child, stats FROM child_stats ORDER BY site")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        for row in rows {
            let (child, stats) = row?;
            let child = NodeId(u32::try_from(child).unwrap_or(0));
            state.child_stats.push((child, dec("child stats", &stats)?));
        }
        let mut stmt = self.conn.prepare("SELECT id, change FROM proposal ORDER BY id")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
        for row in rows {
            let (id, change) = row?;
            state.proposals.push((u(id), dec("proposal", &change)?));
        }
        Ok((state, names))
    }

    /// The next proposal id for a policy created at this local server.
    pub fn next_proposal(&mut self) -> Result<u64, StoreError> {
        let next = self.meta_u64("next_proposal")?.max(1);
        self.conn
            .execute("INSERT OR REPLACE INTO meta VALUES ('next_proposal', ?1)", [i(next + 1)])?;
        Ok(next)
    }

    /// Commits a local server's changes in one transaction.
    pub fn local_commit(&mut self, d: &LocalDelta) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for h in &d.policies {
            let rec = &h.full.record;
            tx.execute(
                "INSERT OR IGNORE INTO content VALUES (?1, ?2)",
                params![&rec.content_digest[..], h.content.as_bytes()],
            )?;
            tx.execute(
                "INSERT OR REPLACE INTO held_policy VALUES (?1, ?2, ?3, ?4)",
                params![
                    rec.id.as_str(),
                    i(rec.revision.0),
                    enc(&*h.bare)?,
                    &rec.content_digest[..]
                ],
            )?;
        }
        for id in &d.removed {
            tx.execute("DELETE FROM held_policy WHERE policy = ?1", [id.as_str()])?;
        }
        if !d.policies.is_empty() || !d.removed.is_empty() {
            // Content no held policy names any more is dropped.
            tx.execute(
                "DELETE FROM content WHERE digest NOT IN (SELECT content_digest FROM held_policy)",
                [],
            )?;
        }
        if let Some(upto) = d.upto {
            tx.execute("INSERT OR REPLACE INTO meta VALUES ('upto', ?1)", [i(upto.0)])?;
        }
        for (id, name, rec) in &d.clients {
            tx.execute(
                "INSERT INTO client VALUES (?1, ?2, ?3, ?4) ON CONFLICT (id) DO UPDATE SET \
                 name = coalesce(excluded.name, name), seen = excluded.seen, \
                 report = excluded.report",
                params![i64::from(id.0), name, rec.seen.0, enc(&*rec.report)?],
            )?;
        }
        for (child, stats) in &d.child_stats {
            tx.execute(
                "INSERT OR REPLACE INTO child_stats VALUES (?1, ?2, ?3)",
                params![stats.site.as_str(), i64::from(child.0), enc(stats)?],
            )?;
        }
        if let Some(props) = &d.proposals {
            tx.execute("DELETE FROM proposal", [])?;
            for (id, change) in props {
                tx.execute("INSERT INTO proposal VALUES (?1, ?2)", params![i(*id), enc(change)?])?;
            }
        }
        if let Some((seq, acked)) = d.stats_seq {
            tx.execute("INSERT OR REPLACE INTO meta VALUES ('stats_seq', ?1)", [i(seq)])?;
            tx.execute("INSERT OR REPLACE INTO meta VALUES ('stats_acked', ?1)", [i(acked)])?;
        }
        tx.commit()?;
        Ok(())
    }

    // ---- client ----

    /// The client's persisted state (empty for a new client).
    pub fn client_load(&self) -> Result<ClientState, StoreError> {
        let mut state = ClientState {
            have: Revision(self.meta_u64("have")?),
            threats: u32::try_from(self.meta_u64("threats")?).unwrap_or(u32::MAX),
            rejected: u32::try_from(self.meta_u64("rejected")?).unwrap_or(u32::MAX),
            last_scan: Time(i(self.meta_u64("last_scan")?)),
            ..ClientState::default()
        };
        let mut stmt = self.conn.prepare("SELECT effective FROM applied ORDER BY policy")?;
        let rows = stmt.query_map([], |r| r.get::<_, Vec<u8>>(0))?;
        for row in rows {
            let e: EffectivePolicy = dec("applied policy", &row?)?;
            state.applied.push(e.into());
        }
        Ok(state)
    }

    /// Commits a client's state: `changed` are the policies applied since
    /// the last commit, `removed` those it stopped enforcing.
    pub fn client_commit(
        &mut self,
        state: &ClientState,
        changed: &[&EffectivePolicy],
        removed: &[PolicyId],
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for e in changed {
            tx.execute(
                "INSERT OR REPLACE INTO applied VALUES (?1, ?2, ?3)",
                params![e.id.as_str(), i(e.revision.0), enc(*e)?],
            )?;
        }
        for id in removed {
            tx.execute("DELETE FROM applied WHERE policy = ?1", [id.as_str()])?;
        }
        let meta = [
            ("have", i(state.have.0)),
            ("threats", i64::from(state.threats)),
            ("rejected", i64::from(state.rejected)),
            ("last_scan", state.last_scan.0.max(0)),
        ];
        for (k, v) in meta {
            tx.execute("INSERT OR REPLACE INTO meta VALUES (?1, ?2)", params![k, v])?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn owner(role: Role, node: &str) -> String {
    format!("{role} {node}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_or_foreign_store_is_refused_not_read() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), Role::Local, "tokyo").unwrap());
        let path = dir.path().join("local.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 7).unwrap();
        drop(conn);
        let err = Store::open(dir.path(), Role::Local, "tokyo").unwrap_err();
        assert!(matches!(err, StoreError::Newer { found: 7 }), "{err}");
        assert!(err.to_string().contains("newer than this tiersync"));

        let other = tempfile::tempdir().unwrap();
        let conn = Connection::open(other.path().join("local.sqlite")).unwrap();
        conn.execute_batch("CREATE TABLE something (x)").unwrap();
        drop(conn);
        let err = Store::open(other.path(), Role::Local, "tokyo").unwrap_err();
        assert!(matches!(err, StoreError::Foreign(_)), "{err}");
    }

    #[test]
    fn a_store_opened_by_another_node_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path(), Role::Local, "tokyo").unwrap());
        let err = Store::open(dir.path(), Role::Local, "london").unwrap_err();
        assert!(matches!(err, StoreError::WrongOwner { .. }), "{err}");
    }

    #[test]
    fn local_state_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), Role::Local, "tokyo").unwrap();
        let change = PolicyChange { id: "fw".into(), ..Default::default() };
        let delta = LocalDelta {
            upto: Some(Revision(4)),
            proposals: Some(vec![(3, change.clone())]),
            stats_seq: Some((5, 4)),
            ..Default::default()
        };
        s.local_commit(&delta).unwrap();
        assert_eq!(s.next_proposal().unwrap(), 1);
        assert_eq!(s.next_proposal().unwrap(), 2);
        drop(s);
        let s = Store::open(dir.path(), Role::Local, "tokyo").unwrap();
        let (state, _) = s.local_load().unwrap();
        assert_eq!(state.upto, Revision(4));
        assert_eq!(state.proposals, vec![(3, change)]);
        assert_eq!((state.stats_seq, state.stats_acked), (5, 4));
    }
}
