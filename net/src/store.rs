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
//! The schema has a version (`PRAGMA user_version`, see [`SCHEMA_VERSION`]).
//! A store of an older version is migrated in place by the steps in
//! `MIGRATIONS`, in one transaction; one older than the oldest step, a
//! newer one, or a database that is not a tiersync store, is refused with a
//! message saying so, never read.
//!
//! Each node also remembers which name every node id it has admitted
//! belongs to (table `node_name`), so that a second name hashing to the
//! same id ([`crate::ids`]) is refused, across restarts.

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

/// The schema version this build writes, and the version of the encoding
/// of every value stored in it.
///
/// The stored values (signed policies, client reports, statistics,
/// proposals, applied policies) are postcard bytes, which carry no field
/// names or version of their own: postcard decodes by position, so bytes
/// written for another layout of an engine type fail to decode at best,
/// and at worst decode into wrong values. They need no marker of their own
/// because this number is theirs: whenever the encoding of a stored engine
/// type changes (a field added, removed or reordered, an enum variant
/// inserted), this version goes up with a step in `MIGRATIONS` that
/// rewrites the old values (or the old store is refused), and a store
/// whose version is not this one is migrated or refused before any value
/// is read. The test `stored_encodings_are_those_of_this_schema_version`
/// pins the encodings, so a change to them fails until this is done.
///
/// Versions: 1, the first; 2 adds `node_name`, the name bound to each node
/// id (filled, when migrating, from the names of a local server's clients).
pub const SCHEMA_VERSION: i64 = 2;

/// Steps from each older version to the next: `(from, sql)`, applied in
/// order in one transaction. A store older than the first `from` cannot be
/// migrated and is refused.
const MIGRATIONS: &[(i64, &str)] = &[(1, V1_TO_V2)];

const V1_TO_V2: &str = "
CREATE TABLE node_name (id INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT;
INSERT INTO node_name (id, name) SELECT id, name FROM client WHERE name IS NOT NULL;
";

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
CREATE TABLE node_name (id INTEGER PRIMARY KEY, name TEXT NOT NULL) STRICT;
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
        "{store}: store schema version {found} is newer than this tiersync supports \
         ({SCHEMA_VERSION}); run the newer tiersync, or move the data directory aside to start \
         empty"
    )]
    Newer {
        /// The store's file.
        store: String,
        /// The version found.
        found: i64,
    },
    /// An older schema with no migration path.
    #[error(
        "{store}: store schema version {found} is too old to migrate: this tiersync writes \
         version {SCHEMA_VERSION} and migrates from version {oldest} on. Open it with a \
         tiersync of its time and copy out what you need, or move the data directory aside to \
         start empty (a local server or client then fetches its policies again; a master's \
         store is the only copy of the revision history and the statistics uploads)"
    )]
    TooOld {
        /// The store's file.
        store: String,
        /// The version found.
        found: i64,
        /// The oldest version this tiersync migrates.
        oldest: i64,
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
    /// A node id is already bound to another name.
    #[error("node id {id} is bound to `{bound}`, not to `{name}`")]
    IdBound {
        /// The id.
        id: NodeId,
        /// The name it is bound to.
        bound: String,
        /// The name that asked for it.
        name: String,
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
        Store::prepare_with(conn, label, role, node, MIGRATIONS)
    }

    /// Opens a store with `steps` as the migrations (tests give fewer, to
    /// see a store refused that this build would migrate).
    fn prepare_with(
        conn: Connection,
        label: &str,
        role: Role,
        node: &str,
        steps: &[(i64, &str)],
    ) -> Result<Store, StoreError> {
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
            return Err(StoreError::Newer { store: label.to_string(), found: version });
        } else if version < SCHEMA_VERSION {
            store.migrate(label, version, steps)?;
        }
        let found: String =
            store.conn.query_row("SELECT value FROM meta WHERE key = 'owner'", [], |r| r.get(0))?;
        let expected = owner(role, node);
        if found != expected {
            return Err(StoreError::WrongOwner { found, expected });
        }
        Ok(store)
    }

    /// Runs `steps` from `version` up to [`SCHEMA_VERSION`] in one
    /// transaction; a version no step starts from leaves the store as it
    /// was and is refused.
    fn migrate(
        &mut self,
        label: &str,
        mut version: i64,
        steps: &[(i64, &str)],
    ) -> Result<(), StoreError> {
        let oldest = steps.iter().map(|(from, _)| *from).min().unwrap_or(SCHEMA_VERSION);
        let tx = self.conn.transaction()?;
        while version < SCHEMA_VERSION {
            let Some((_, sql)) = steps.iter().find(|(from, _)| *from == version) else {
                return Err(StoreError::TooOld {
                    store: label.to_string(),
                    found: version,
                    oldest,
                });
            };
            tx.execute_batch(sql)?;
            version += 1;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(store = label, version, "store migrated");
        Ok(())
    }

    /// The name bound to each node id this node knows.
    pub fn node_names(&self) -> Result<BTreeMap<NodeId, String>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT id, name FROM node_name")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (id, name) = row?;
            out.insert(NodeId(u32::try_from(id).unwrap_or(0)), name);
        }
        Ok(out)
    }

    /// Commits that `id` is `name`'s. The caller has checked that `id` is
    /// not bound to another name; if it is, this fails and changes nothing.
    pub fn bind_node_name(&mut self, id: NodeId, name: &str) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "INSERT INTO node_name (id, name) VALUES (?1, ?2) ON CONFLICT (id) DO NOTHING",
            params![i64::from(id.0), name],
        )?;
        let bound: String =
            tx.query_row("SELECT name FROM node_name WHERE id = ?1", [i64::from(id.0)], |r| {
                r.get(0)
            })?;
        if bound != name {
            return Err(StoreError::IdBound { id, bound, name: name.to_string() });
        }
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
        assert!(matches!(err, StoreError::Newer { found: 7, .. }), "{err}");
        assert!(err.to_string().contains("newer than this tiersync"));

        let other = tempfile::tempdir().unwrap();
        let conn = Connection::open(other.path().join("local.sqlite")).unwrap();
        conn.execute_batch("CREATE TABLE something (x)").unwrap();
        drop(conn);
        let err = Store::open(other.path(), Role::Local, "tokyo").unwrap_err();
        assert!(matches!(err, StoreError::Foreign(_)), "{err}");
    }

    /// A local store as version 1 wrote it: the schema without
    /// `node_name`, one named client with a report.
    fn version_1_store(dir: &Path) -> std::path::PathBuf {
        drop(Store::open(dir, Role::Local, "tokyo").unwrap());
        let path = dir.join("local.sqlite");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("DROP TABLE node_name").unwrap();
        conn.execute(
            "INSERT INTO client VALUES (?1, 'pc1.tokyo', 5, ?2)",
            params![i64::from(crate::ids::node_id("pc1.tokyo").0), enc(&report()).unwrap()],
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        path
    }

    fn report() -> SecurityReport {
        SecurityReport {
            platform: "windows".into(),
            site: "tokyo".into(),
            applied: vec![("antivirus".into(), Revision(3))],
            engine_version: 2,
            signature_version: 3,
            firewall_on: true,
            threats_found: 1,
            last_scan: Time(86_400_000_000_000),
            rejected_policies: 0,
            inventory: Blob::from_bytes(b"os=linux".to_vec()),
        }
    }

    fn version_of(path: &Path) -> i64 {
        let conn = Connection::open(path).unwrap();
        conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap()
    }

    /// A version 1 store opens: it is migrated in place to the current
    /// version, and what it held reads back, its client's name now bound.
    #[test]
    fn a_store_of_the_previous_version_is_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = version_1_store(dir.path());
        let s = Store::open(dir.path(), Role::Local, "tokyo").unwrap();
        assert_eq!(version_of(&path), SCHEMA_VERSION);
        let (state, names) = s.local_load().unwrap();
        assert_eq!(state.clients.len(), 1);
        assert_eq!(*state.clients[0].1.report, report());
        let id = crate::ids::node_id("pc1.tokyo");
        assert_eq!(names.get(&id).map(String::as_str), Some("pc1.tokyo"));
        assert_eq!(s.node_names().unwrap().get(&id).map(String::as_str), Some("pc1.tokyo"));
    }

    /// A store older than every migration step is refused with a message
    /// that says what it is and what to do, and is left as it was: here a
    /// version 1 store opened by a build without the 1-to-2 step, and a
    /// store recording a version below 1.
    #[test]
    fn a_store_too_old_to_migrate_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = version_1_store(dir.path());
        let label = path.display().to_string();
        let conn = Connection::open(&path).unwrap();
        let err = Store::prepare_with(conn, &label, Role::Local, "tokyo", &[(2, "")]).unwrap_err();
        assert!(matches!(err, StoreError::TooOld { found: 1, oldest: 2, .. }), "{err}");
        let text = err.to_string();
        assert!(text.starts_with(&label), "{text}");
        assert!(text.contains("version 1 is too old to migrate"), "{text}");
        assert!(text.contains(&format!("writes version {SCHEMA_VERSION}")), "{text}");
        assert!(text.contains("move the data directory aside"), "{text}");
        assert_eq!(version_of(&path), 1, "a refused store was changed");
        let conn = Connection::open(&path).unwrap();
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'node_name'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(tables, 0, "a refused store was changed");

        conn.pragma_update(None, "user_version", -3).unwrap();
        drop(conn);
        let err = Store::open(dir.path(), Role::Local, "tokyo").unwrap_err();
        assert!(matches!(err, StoreError::TooOld { found: -3, oldest: 1, .. }), "{err}");
    }

    /// The name bound to a node id is committed, survives a reopen, and a
    /// second name for the same id is refused without changing the first.
    #[test]
    fn node_name_bindings_are_durable_and_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), Role::Local, "tokyo").unwrap();
        s.bind_node_name(NodeId(9), "pc1.tokyo").unwrap();
        s.bind_node_name(NodeId(9), "pc1.tokyo").unwrap();
        drop(s);
        let mut s = Store::open(dir.path(), Role::Local, "tokyo").unwrap();
        let err = s.bind_node_name(NodeId(9), "pc2.tokyo").unwrap_err();
        assert!(matches!(err, StoreError::IdBound { .. }), "{err}");
        assert_eq!(s.node_names().unwrap(), BTreeMap::from([(NodeId(9), "pc1.tokyo".into())]));
    }

    /// The postcard encodings of the engine values a store holds are those
    /// of [`SCHEMA_VERSION`]. Postcard writes no field names, so a store
    /// written before a change to one of these types would be misread
    /// after it: if this fails, bump `SCHEMA_VERSION`, add a step to
    /// `MIGRATIONS` that rewrites (or refuses) older stores, and pin the
    /// new digest here.
    #[test]
    fn stored_encodings_are_those_of_this_schema_version() {
        use tiersync_engine::{Master, MasterConfig, Name, Outbox, Value};
        let (hq, tokyo, windows) = (Name::new("hq"), Name::new("tokyo"), Name::new("windows"));
        let cfg = MasterConfig::new(
            NodeId(1),
            hq.clone(),
            vec![hq, tokyo.clone()],
            BTreeMap::new(),
            [7; 32],
        );
        let mut master = Master::new(cfg);
        let change = PolicyChange {
            id: "antivirus".into(),
            params: Some(BTreeMap::from([
                ("scan".to_string(), Value::Str("daily".into())),
                ("level".to_string(), Value::Int(3)),
                ("ratio".to_string(), Value::Float(0.5)),
                ("on".to_string(), Value::Bool(true)),
                ("list".to_string(), Value::List(vec![Value::Int(1)])),
                ("map".to_string(), Value::Map(BTreeMap::new())),
            ])),
            content: Some(Blob::from_bytes(b"signatures".to_vec())),
            platforms: Some(vec![windows.clone()]),
            platform_params: Some(BTreeMap::from([(windows.clone(), BTreeMap::new())])),
            site_params: Some(BTreeMap::from([(tokyo.clone(), BTreeMap::new())])),
            urgent: true,
        };
        let mut out = Outbox::new();
        master.handle_set_policy(Time(0), change.clone(), 1, &mut out).unwrap();
        let held = master.store().get(&change.id).unwrap().clone();
        let effective = held.full.derive(&tokyo, &windows, &held.content, true).unwrap();
        let mut platforms = BTreeMap::new();
        platforms.insert(
            windows,
            tiersync_engine::stats::PlatformStats {
                clients: 2,
                compliant: 1,
                firewall_on: 1,
                stale: 0,
                threats: 4,
                engine_versions: BTreeMap::from([(2, 2)]),
                signature_versions: BTreeMap::from([(3, 2)]),
                rejected_policies: 1,
            },
        );
        let sites =
            vec![SiteStats { site: tokyo, as_of: Time(5), platforms, rejected_by_server: 1 }];
        let encodings: Vec<Vec<u8>> = vec![
            enc(&*held.bare).unwrap(),
            enc(&report()).unwrap(),
            enc(&sites).unwrap(),
            enc(&change).unwrap(),
            enc(&effective).unwrap(),
        ];
        let mut all = Vec::new();
        for e in &encodings {
            all.extend_from_slice(&(e.len() as u64).to_le_bytes());
            all.extend_from_slice(e);
        }
        let digest = crate::pki::hex(ring::digest::digest(&ring::digest::SHA256, &all).as_ref());
        assert_eq!(
            (SCHEMA_VERSION, digest.as_str()),
            (2, "f783ebe813732f8b9fd56739f0d7296fa4f5acd60c2f76b7d9c94a8a6508ba38"),
            "the stored encoding changed: bump SCHEMA_VERSION and migrate (see the test's doc)"
        );
        // And each decodes back to what was stored.
        assert_eq!(dec::<SecurityReport>("report", &encodings[1]).unwrap(), report());
        assert_eq!(dec::<Vec<SiteStats>>("upload", &encodings[2]).unwrap(), sites);
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
