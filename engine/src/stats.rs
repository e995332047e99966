//! Client security information and its consolidation.
//!
//! A client reports a [`SecurityReport`]; its server keeps the latest one
//! per client (also for clients now switched off) and consolidates them per
//! platform into [`PlatformStats`], whose size depends on the number of
//! distinct versions seen, not on the number of clients. Consolidation is a
//! sum, so consolidating consolidations (a middle tier) equals
//! consolidating every client at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::blob::Blob;
use crate::ids::{NodeId, Platform, PolicyId, Revision, SiteName};
use crate::time::Time;

/// What a client reports about itself.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityReport {
    /// The client's platform.
    pub platform: Platform,
    /// The client's site.
    pub site: SiteName,
    /// Revision applied of each policy the client holds, sorted by id.
    pub applied: Vec<(PolicyId, Revision)>,
    /// Version of the security engine installed.
    pub engine_version: u32,
    /// Signature (content) version: the newest content revision applied.
    pub signature_version: u64,
    /// Whether the host firewall is on.
    pub firewall_on: bool,
    /// Threats found since the client was installed.
    pub threats_found: u32,
    /// When the last full scan finished.
    pub last_scan: Time,
    /// Policy revisions this client refused because they failed
    /// verification, since it was installed: how a tampering local server
    /// shows up at the master.
    pub rejected_policies: u32,
    /// Opaque inventory (installed software and the like), of configured
    /// size.
    pub inventory: Blob,
}

/// A client's latest report as its server keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientRecord {
    /// The latest report, shared with the message that carried it.
    pub report: Arc<SecurityReport>,
    /// When the server received it.
    pub seen: Time,
}

/// Consolidated statistics of one platform at one site.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlatformStats {
    /// Clients that have reported at least once.
    pub clients: u64,
    /// Clients on the current revision of every policy applying to them.
    pub compliant: u64,
    /// Clients with the firewall on.
    pub firewall_on: u64,
    /// Clients not heard from for longer than the configured stale time.
    pub stale: u64,
    /// Sum of threats found.
    pub threats: u64,
    /// Clients per engine version. Its size is the number of distinct
    /// versions in the field, not of clients; nothing caps it, so a fleet
    /// reporting thousands of versions would make uploads grow accordingly.
    pub engine_versions: BTreeMap<u32, u64>,
    /// Clients per signature version.
    pub signature_versions: BTreeMap<u64, u64>,
    /// Policy revisions refused by clients for failed verification.
    pub rejected_policies: u64,
}

impl PlatformStats {
    /// Adds `other` into `self`: the consolidation step.
    ///
    /// Every count saturates at `u64::MAX` rather than overflowing: the
    /// values come from peers, and a child reporting absurd counts must not
    /// crash its parent (a saturated count is visibly wrong, not silently
    /// wrapped).
    pub fn absorb(&mut self, other: &PlatformStats) {
        self.clients = self.clients.saturating_add(other.clients);
        self.compliant = self.compliant.saturating_add(other.compliant);
        self.firewall_on = self.firewall_on.saturating_add(other.firewall_on);
        self.stale = self.stale.saturating_add(other.stale);
        self.threats = self.threats.saturating_add(other.threats);
        self.rejected_policies = self.rejected_policies.saturating_add(other.rejected_policies);
        for (v, n) in &other.engine_versions {
            let slot = self.engine_versions.entry(*v).or_default();
            *slot = slot.saturating_add(*n);
        }
        for (v, n) in &other.signature_versions {
            let slot = self.signature_versions.entry(*v).or_default();
            *slot = slot.saturating_add(*n);
        }
    }

    /// Counts one client (saturating, as [`PlatformStats::absorb`]).
    pub fn add_client(&mut self, report: &SecurityReport, compliant: bool, stale: bool) {
        self.clients = self.clients.saturating_add(1);
        self.compliant = self.compliant.saturating_add(u64::from(compliant));
        self.firewall_on = self.firewall_on.saturating_add(u64::from(report.firewall_on));
        self.stale = self.stale.saturating_add(u64::from(stale));
        self.threats = self.threats.saturating_add(u64::from(report.threats_found));
        self.rejected_policies =
            self.rejected_policies.saturating_add(u64::from(report.rejected_policies));
        let slot = self.engine_versions.entry(report.engine_version).or_default();
        *slot = slot.saturating_add(1);
        let slot = self.signature_versions.entry(report.signature_version).or_default();
        *slot = slot.saturating_add(1);
    }
}

/// Consolidated statistics of one site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteStats {
    /// The site.
    pub site: SiteName,
    /// When its local server consolidated them.
    pub as_of: Time,
    /// Per platform.
    pub platforms: BTreeMap<Platform, PlatformStats>,
    /// Policy revisions the site's local server refused because they failed
    /// verification, since it started: how a tampered reply to a local
    /// server (as opposed to one of its clients) shows up at the master.
    pub rejected_by_server: u64,
}

impl SiteStats {
    /// Statistics of a site with no client report yet.
    pub fn empty(site: SiteName, as_of: Time) -> SiteStats {
        SiteStats { site, as_of, platforms: BTreeMap::new(), rejected_by_server: 0 }
    }

    /// Total clients over all platforms, saturating at `u64::MAX`.
    pub fn clients(&self) -> u64 {
        self.platforms.values().fold(0u64, |n, p| n.saturating_add(p.clients))
    }
}

/// Merges per-platform statistics of several sites into one table: the
/// consolidation a middle tier or a report performs.
pub fn consolidate<'a>(
    sites: impl IntoIterator<Item = &'a SiteStats>,
) -> BTreeMap<Platform, PlatformStats> {
    let mut out: BTreeMap<Platform, PlatformStats> = BTreeMap::new();
    for s in sites {
        for (platform, stats) in &s.platforms {
            out.entry(platform.clone()).or_default().absorb(stats);
        }
    }
    out
}

/// The latest report of every client a server holds.
///
/// Records live in a vector in order of first report, which is also the
/// order every iteration sees: deterministic, because reports arrive in a
/// deterministic order. An index finds a client's slot; it is only ever
/// looked up, never iterated, so its order cannot reach a result.
#[derive(Clone, Debug, Default)]
pub struct ClientTable {
    ids: Vec<NodeId>,
    records: Vec<ClientRecord>,
    index: SlotIndex,
}

/// Where a client's record is, by node id.
///
/// Node ids handed out in blocks (a simulator's, or any deployment that
/// numbers its clients) are looked up in a plain array, one read; ids
/// spread over the whole range (hashes of names) go to a hash map. The
/// array is used while it spans at most four slots per client plus a
/// fixed 4 MiB, so it never costs more than a few bytes per client
/// beyond that. The hasher
/// is FxHash: a node id is not attacker-chosen here (peers are
/// authenticated before they have one), and a fast hash matters when a
/// million simulated clients report every hour.
#[derive(Clone, Debug)]
enum SlotIndex {
    /// `slots[id - base]` is the record's index, or `u32::MAX`.
    Dense { base: u32, slots: Vec<u32> },
    /// Ids too spread for an array.
    #[allow(clippy::disallowed_types)] // Lookup-only (`get`, `insert`, `len`): never iterated.
    Hashed(rustc_hash::FxHashMap<NodeId, u32>),
}

impl Default for SlotIndex {
    fn default() -> Self {
        SlotIndex::Dense { base: 0, slots: Vec::new() }
    }
}

/// An array slot for no record.
const NO_SLOT: u32 = u32::MAX;

/// Slots the dense index may hold beyond four per client.
const DENSE_SLACK: usize = 1 << 20;

impl SlotIndex {
    fn get(&self, id: NodeId) -> Option<u32> {
        match self {
            SlotIndex::Dense { base, slots } => {
                id.0.checked_sub(*base)
                    .and_then(|i| slots.get(i as usize))
                    .copied()
                    .filter(|&s| s != NO_SLOT)
            }
            SlotIndex::Hashed(map) => map.get(&id).copied(),
        }
    }

    /// Records `id` at `slot`; `ids` are every id held so far (for moving
    /// to a hash map when the array would grow too sparse).
    ///
    /// Clients of a block report in any order, so the first id seen is
    /// rarely the lowest: an id below the array's base moves the base down
    /// (a new lowest id turns up about ln(n) times for n clients in random
    /// order, each a copy of the array).
    fn insert(&mut self, id: NodeId, slot: u32, ids: &[NodeId]) {
        if let SlotIndex::Dense { base, slots } = self {
            if slots.is_empty() {
                *base = id.0;
            }
            // The array may span four slots a client plus 2^20 (4 MiB):
            // clients of a block reporting in random order spread over the
            // whole block after a few reports, long before most reported.
            let bound = ids.len().saturating_mul(4).saturating_add(DENSE_SLACK);
            let below = base.saturating_sub(id.0) as usize;
            if below > 0 && slots.len().saturating_add(below) <= bound {
                slots.splice(0..0, std::iter::repeat_n(NO_SLOT, below));
                *base = id.0;
            }
            match id.0.checked_sub(*base).map(|i| i as usize) {
                Some(i) if i < bound => {
                    if i >= slots.len() {
                        slots.resize(i + 1, NO_SLOT);
                    }
                    slots[i] = slot;
                    return;
                }
                _ => {
                    let map = ids.iter().enumerate().map(|(s, &id)| (id, s as u32)).collect();
                    *self = SlotIndex::Hashed(map);
                }
            }
        }
        if let SlotIndex::Hashed(map) = self {
            map.insert(id, slot);
        }
    }
}

impl ClientTable {
    /// Stores a client's report, replacing the previous one.
    pub fn store(&mut self, client: NodeId, report: Arc<SecurityReport>, now: Time) {
        let rec = ClientRecord { report, seen: now };
        match self.index.get(client) {
            Some(i) => self.records[i as usize] = rec,
            None => {
                let slot = self.records.len() as u32;
                self.index.insert(client, slot, &self.ids);
                self.ids.push(client);
                self.records.push(rec);
            }
        }
    }

    /// A client's latest record.
    pub fn get(&self, client: NodeId) -> Option<&ClientRecord> {
        self.index.get(client).map(|i| &self.records[i as usize])
    }

    /// Where the index keeps `client`'s position, when it is an array, for
    /// a driver that warms memory before a report arrives: a reference the
    /// caller may prefetch without reading (taking it reads nothing).
    /// `None` for a client outside the array, or a hashed index.
    pub fn index_hint(&self, client: NodeId) -> Option<&u32> {
        match &self.index {
            SlotIndex::Dense { base, slots } => {
                client.0.checked_sub(*base).and_then(|i| slots.get(i as usize))
            }
            SlotIndex::Hashed(_) => None,
        }
    }

    /// Number of clients known.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no client has reported.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every client id with its record, in order of first report.
    pub fn iter(&self) -> impl Iterator<Item = (NodeId, &ClientRecord)> {
        self.ids.iter().copied().zip(self.records.iter())
    }

    /// Consolidates every client per site and platform. `current` gives the current revision
    /// of each policy and the platforms it applies to, for compliance;
    /// clients not seen for `stale_after` are counted stale.
    pub fn consolidate(
        &self,
        now: Time,
        stale_after: Duration,
        current: &BTreeMap<PolicyId, (Revision, Vec<Platform>)>,
    ) -> Vec<SiteStats> {
        let mut by_site: BTreeMap<SiteName, SiteStats> = BTreeMap::new();
        for rec in &self.records {
            let r = &rec.report;
            let compliant = current.iter().all(|(id, (rev, platforms))| {
                !platforms.contains(&r.platform)
                    || r.applied.iter().any(|(pid, applied)| pid == id && applied >= rev)
            });
            let stale = now.saturating_since(rec.seen) > stale_after;
            by_site
                .entry(r.site.clone())
                .or_insert_with(|| SiteStats::empty(r.site.clone(), now))
                .platforms
                .entry(r.platform.clone())
                .or_default()
                .add_client(r, compliant, stale);
        }
        by_site.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::Blob;
    use crate::ids::Name;
    use proptest::prelude::*;

    fn report(n: u32) -> Arc<SecurityReport> {
        Arc::new(SecurityReport {
            platform: Name::new("windows"),
            site: Name::new("tokyo"),
            applied: Vec::new(),
            engine_version: 1,
            signature_version: 0,
            firewall_on: false,
            threats_found: n,
            last_scan: Time::EPOCH,
            rejected_policies: 0,
            inventory: Blob::filler(0, 0),
        })
    }

    /// One client's report, for the consolidation test below.
    #[allow(clippy::too_many_arguments)]
    fn client(
        site: &str,
        platform: &str,
        applied: &[(&str, u64)],
        engine: u32,
        signature: u64,
        firewall: bool,
        threats: u32,
        rejected: u32,
    ) -> Arc<SecurityReport> {
        Arc::new(SecurityReport {
            platform: Name::new(platform),
            site: Name::new(site),
            applied: applied.iter().map(|(p, r)| (Name::new(p), Revision(*r))).collect(),
            engine_version: engine,
            signature_version: signature,
            firewall_on: firewall,
            threats_found: threats,
            last_scan: Time::EPOCH,
            rejected_policies: rejected,
            inventory: Blob::empty(),
        })
    }

    /// Every field of the consolidation, worked by hand: a client counts
    /// once (its latest report), compliance needs the current revision of
    /// every policy applying to its platform and only those, a client is
    /// stale only when silent for longer than `stale_after` (exactly that
    /// long is not stale), and the histograms count clients per version.
    #[test]
    fn consolidation_counts_each_field() {
        let now = Time::from_secs(1_800_000_000);
        let hour = Duration::from_secs(3600);
        let stale_after = hour * 72;
        let targets: BTreeMap<PolicyId, (Revision, Vec<Platform>)> = [
            (Name::new("av"), (Revision(3), vec![Name::new("linux"), Name::new("windows")])),
            (Name::new("fw"), (Revision(2), vec![Name::new("windows")])),
        ]
        .into();
        let mut table = ClientTable::default();
        let first = client("tokyo", "windows", &[], 1, 0, false, 50, 0);
        table.store(NodeId(1), first, now - hour * 100);
        // Client 1 again: only this latest report counts.
        let c1 = client("tokyo", "windows", &[("av", 3), ("fw", 2)], 5, 3, true, 2, 0);
        table.store(NodeId(1), c1, now - hour);
        // Behind on av, silent for four days.
        let c2 = client("tokyo", "windows", &[("av", 2), ("fw", 2)], 6, 2, false, 1, 0);
        table.store(NodeId(2), c2, now - hour * 96);
        // fw does not apply to linux: compliant with av alone; silent for
        // exactly the stale time, so not stale.
        let c3 = client("tokyo", "linux", &[("av", 3)], 5, 3, false, 0, 0);
        table.store(NodeId(3), c3, now - stale_after);
        let c4 = client("london", "windows", &[("av", 4), ("fw", 2)], 5, 4, true, 0, 1);
        table.store(NodeId(4), c4, now);

        let sites = table.consolidate(now, stale_after, &targets);
        let names: Vec<&str> = sites.iter().map(|s| s.site.as_str()).collect();
        assert_eq!(names, ["london", "tokyo"]);
        assert!(sites.iter().all(|s| s.as_of == now && s.rejected_by_server == 0));

        let tokyo_windows = PlatformStats {
            clients: 2,
            compliant: 1,
            firewall_on: 1,
            stale: 1,
            threats: 3,
            engine_versions: [(5, 1), (6, 1)].into(),
            signature_versions: [(2, 1), (3, 1)].into(),
            rejected_policies: 0,
        };
        let tokyo_linux = PlatformStats {
            clients: 1,
            compliant: 1,
            engine_versions: [(5, 1)].into(),
            signature_versions: [(3, 1)].into(),
            ..PlatformStats::default()
        };
        let london_windows = PlatformStats {
            clients: 1,
            compliant: 1,
            firewall_on: 1,
            engine_versions: [(5, 1)].into(),
            signature_versions: [(4, 1)].into(),
            rejected_policies: 1,
            ..PlatformStats::default()
        };
        let tokyo: BTreeMap<Platform, PlatformStats> =
            [(Name::new("linux"), tokyo_linux), (Name::new("windows"), tokyo_windows)].into();
        assert_eq!(sites[1].platforms, tokyo);
        assert_eq!(sites[0].platforms, [(Name::new("windows"), london_windows)].into());
        assert_eq!(sites.iter().map(SiteStats::clients).sum::<u64>(), 4);
    }

    /// A block of ids reporting in any order (clients polling at random
    /// points of their interval) stays in the array, one read a lookup.
    #[test]
    fn a_block_in_random_order_stays_dense() {
        let mut table = ClientTable::default();
        // 5,000 ids from 10,000 on, in a scrambled order.
        let ids: Vec<u32> = (0..5000u32).map(|i| 10_000 + (i * 761) % 5000).collect();
        for &id in &ids {
            table.store(NodeId(id), report(id), Time::EPOCH);
        }
        assert!(matches!(table.index, SlotIndex::Dense { base: 10_000, .. }), "{:?}", {
            match &table.index {
                SlotIndex::Dense { base, slots } => format!("dense from {base}, {}", slots.len()),
                SlotIndex::Hashed(m) => format!("hashed, {}", m.len()),
            }
        });
        for &id in &ids {
            assert_eq!(table.get(NodeId(id)).map(|r| r.report.threats_found), Some(id));
        }
        assert!(table.get(NodeId(9_999)).is_none());
        assert!(table.get(NodeId(15_000)).is_none());
    }

    proptest! {
        /// Whatever the ids (blocks, spread hashes, both), every stored
        /// client is found with its latest report, unknown ids are not, and
        /// iteration keeps the order of first report.
        #[test]
        fn finds_every_client_by_id(
            ids in prop::collection::vec(
                prop_oneof![0u32..3000, 1_000_000u32..1_002_000, any::<u32>()],
                1..400,
            )
        ) {
            let mut table = ClientTable::default();
            let mut model: Vec<(NodeId, u32)> = Vec::new();
            for (n, &id) in ids.iter().enumerate() {
                let id = NodeId(id);
                table.store(id, report(n as u32), Time::EPOCH);
                match model.iter_mut().find(|(m, _)| *m == id) {
                    Some(entry) => entry.1 = n as u32,
                    None => model.push((id, n as u32)),
                }
            }
            prop_assert_eq!(table.len(), model.len());
            for (id, n) in &model {
                let got = table.get(*id).map(|r| r.report.threats_found);
                prop_assert_eq!(got, Some(*n));
            }
            let order: Vec<NodeId> = table.iter().map(|(id, _)| id).collect();
            let want: Vec<NodeId> = model.iter().map(|(id, _)| *id).collect();
            prop_assert_eq!(order, want);
            for probe in [0u32, 2999, 3000, 1_001_999, u32::MAX] {
                let known = model.iter().any(|(id, _)| id.0 == probe);
                prop_assert_eq!(table.get(NodeId(probe)).is_some(), known);
            }
        }
    }
}
