//! The policy set a server holds, its change log, and the views it serves.
//!
//! The master and every local server keep the same structure: the latest
//! verified revision of each policy, and a log of which policy changed at
//! which revision. A child that asks with revision `have` gets a delta of
//! the policies changed after `have`, or a full snapshot when the log has
//! been compacted past `have`, or asks with `have` zero (it holds nothing,
//! or it is resynchronising and will replace what it holds).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

#[allow(clippy::disallowed_types)] // Lookup-only: `views` is never iterated.
use rustc_hash::FxHashMap;

use crate::blob::Blob;
use crate::ids::{Platform, PolicyId, Revision, SiteName};
use crate::message::Changes;
use crate::policy::{EffectivePolicy, HeldPolicy};

/// Default number of change-log entries kept before compacting: enough for
/// months of daily changes, so a child offline for a while still gets a
/// delta rather than a snapshot.
pub const DEFAULT_LOG_KEEP: usize = 1000;

/// The policy set of one server.
#[derive(Debug)]
pub struct PolicyStore {
    policies: BTreeMap<PolicyId, HeldPolicy>,
    log: VecDeque<(Revision, PolicyId)>,
    log_keep: usize,
    /// Log entries at or below this revision were dropped.
    compacted_to: Revision,
    current: Revision,
    /// Per policy and platform, the revision from which the policy has
    /// applied to that platform without a break: a client holding an
    /// older revision cannot hold the policy's content.
    applies_since: BTreeMap<PolicyId, BTreeMap<Platform, Revision>>,
    /// Derived views per site, then per platform. Only ever looked up and
    /// cleared, never iterated, so the hash order reaches no result; a
    /// lookup takes the caller's names by reference, so serving a poll
    /// clones no name.
    #[allow(clippy::disallowed_types)] // Only looked up and cleared, never iterated.
    views: FxHashMap<SiteName, Vec<(Platform, Arc<View>)>>,
    /// The views last served, by the addresses of the names they were
    /// asked with: a poll from a client whose names are clones of those of
    /// an earlier poll finds its view with two pointer comparisons. Each
    /// slot keeps its names alive, so their addresses cannot be reused by
    /// other names while the slot holds them.
    view_memo: Box<[Option<MemoEntry>]>,
}

/// A slot of [`PolicyStore`]'s view memo: the names a view was asked with
/// (kept alive, so that their addresses stay theirs) and the view.
type MemoEntry = (SiteName, Platform, Arc<View>);

/// log2 of the slots of [`PolicyStore`]'s view memo.
const VIEW_MEMO_BITS: u32 = 8;

/// Slots of [`PolicyStore`]'s view memo: 256, about twice the (site,
/// platform) pairs a master serves when every client polls it (40 sites
/// of three platforms each in `scale-1m`), so that few pairs share a slot.
/// A miss costs a string hash, string comparisons and reference-count
/// updates; with 16 slots, most of such a master's pairs shared one. The
/// change to 256 took about 3% off flat-conditional runs of a 3-day cut of
/// `scale-100k` and a 1-day cut of `scale-1m`, a gain within the noise of
/// single runs. The memo costs 10 KiB per server (40 bytes a slot).
const VIEW_MEMO_SLOTS: usize = 1 << VIEW_MEMO_BITS;

/// The memo slot of a pair of names, from their addresses. The addresses
/// of names allocated one after the other differ in a few middle bits
/// only; multiplying by an odd constant (Fibonacci hashing) spreads them
/// over the top bits, which pick the slot.
fn view_memo_slot(site: &SiteName, platform: &Platform) -> usize {
    const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;
    let s = (site.address() as u64).wrapping_mul(SPREAD);
    let p = (platform.address() as u64).wrapping_mul(SPREAD).rotate_left(29);
    ((s ^ p).wrapping_mul(SPREAD) >> (64 - VIEW_MEMO_BITS)) as usize
}

/// The effective policies of one (site, platform), derived once per
/// revision and shared by every poll.
#[derive(Debug)]
pub struct View {
    /// The revision the view was derived at.
    pub revision: Revision,
    /// The newest revision among the entries ([`Revision::ZERO`] when
    /// there are none). Usually at most `revision`, but not always: a
    /// server whose parent's reply was refused in part holds the revisions
    /// it verified without having advanced to them. A poll from a client
    /// at or after this revision changes nothing.
    pub newest: Revision,
    /// One entry per policy, in id order.
    pub entries: Vec<ViewEntry>,
}

/// One policy in a [`View`].
#[derive(Debug)]
pub enum ViewEntry {
    /// The policy applies: with and without content bytes.
    Applies {
        /// The variant with content.
        full: Arc<EffectivePolicy>,
        /// The same without content.
        bare: Arc<EffectivePolicy>,
        /// The revision from which the policy has applied to this platform
        /// without a break (as far as this server has seen): a client
        /// holding an older revision does not hold the policy, so it must
        /// be sent the content even when the content itself is older.
        since: Revision,
    },
    /// The policy does not apply to this platform (any more).
    NotApplies {
        /// The policy.
        id: PolicyId,
        /// Its revision.
        revision: Revision,
    },
}

impl ViewEntry {
    /// The revision of the entry.
    pub fn revision(&self) -> Revision {
        match self {
            ViewEntry::Applies { full, .. } => full.revision,
            ViewEntry::NotApplies { revision, .. } => *revision,
        }
    }
}

impl PolicyStore {
    /// An empty store keeping at most `log_keep` log entries.
    #[allow(clippy::disallowed_types)] // Builds the lookup-only `views`.
    pub fn new(log_keep: usize) -> PolicyStore {
        PolicyStore {
            policies: BTreeMap::new(),
            log: VecDeque::new(),
            log_keep: log_keep.max(1),
            compacted_to: Revision::ZERO,
            current: Revision::ZERO,
            applies_since: BTreeMap::new(),
            views: FxHashMap::default(),
            view_memo: vec![None; VIEW_MEMO_SLOTS].into_boxed_slice(),
        }
    }

    /// The revision this store is up to.
    pub fn current(&self) -> Revision {
        self.current
    }

    /// The held revision of one policy.
    pub fn get(&self, id: &PolicyId) -> Option<&HeldPolicy> {
        self.policies.get(id)
    }

    /// Every held policy, in id order.
    pub fn iter(&self) -> impl Iterator<Item = &HeldPolicy> {
        self.policies.values()
    }

    /// Number of policies held.
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether no policy is held.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// Stores a verified revision. Older or equal revisions of a policy
    /// already held are ignored (a duplicate or reordered reply), so
    /// applying the same delta twice changes nothing. Returns whether the
    /// store changed.
    ///
    /// The store's current revision does not move: the caller advances it
    /// with [`PolicyStore::advance_to`] once everything up to that revision
    /// is held, so a revision that failed verification is asked for again.
    pub fn insert(&mut self, held: HeldPolicy) -> bool {
        let rev = held.revision();
        if let Some(existing) = self.policies.get(held.id())
            && existing.revision() >= rev
        {
            return false;
        }
        self.track_platforms(&held);
        self.log.push_back((rev, held.id().clone()));
        self.policies.insert(held.id().clone(), held);
        while self.log.len() > self.log_keep {
            if let Some((r, _)) = self.log.pop_front() {
                self.compacted_to = self.compacted_to.max(r);
            }
        }
        self.clear_views();
        true
    }

    /// Records, for each platform `held` applies to, since which revision
    /// it has applied: kept from the revision held before when that one
    /// applied to the platform too, otherwise `held`'s own revision. A
    /// policy first seen here (a fresh server, a restore) counts as newly
    /// applying everywhere, which at worst resends content a client holds.
    fn track_platforms(&mut self, held: &HeldPolicy) {
        let rev = held.revision();
        let before = self.applies_since.remove(held.id()).unwrap_or_default();
        let since = held
            .full
            .record
            .spec
            .platforms
            .iter()
            .map(|p| (p.clone(), before.get(p).copied().unwrap_or(rev).min(rev)))
            .collect();
        self.applies_since.insert(held.id().clone(), since);
    }

    /// Raises the current revision to `upto` (a parent's reply says the
    /// child is now up to date to `upto`, even when the last revisions
    /// changed nothing it holds).
    pub fn advance_to(&mut self, upto: Revision) {
        if upto > self.current {
            self.current = upto;
            self.clear_views();
        }
    }

    /// Replaces the whole set with a snapshot from the parent, even one
    /// older than what is held: the caller decides whether a snapshot is
    /// stale (a late duplicate) or a resynchronisation (the parent was
    /// restored from an older backup), and only the latter moves back.
    pub fn replace_all(&mut self, policies: Vec<HeldPolicy>, upto: Revision) {
        let ids: BTreeSet<PolicyId> = policies.iter().map(|p| p.id().clone()).collect();
        self.applies_since.retain(|id, _| ids.contains(id));
        for p in &policies {
            // A policy whose held revision is newer than the snapshot's
            // (a rollback) is tracked afresh.
            if self.policies.get(p.id()).is_some_and(|old| old.revision() > p.revision()) {
                self.applies_since.remove(p.id());
            }
            self.track_platforms(p);
        }
        self.policies.clear();
        self.log.clear();
        let mut revs: Vec<_> = policies.iter().map(|p| (p.revision(), p.id().clone())).collect();
        revs.sort();
        for p in policies {
            self.policies.insert(p.id().clone(), p);
        }
        self.log.extend(revs);
        // The snapshot carries no history before it: a grandchild asking
        // from before the snapshot gets a snapshot in turn.
        self.compacted_to = self.log.front().map_or(upto, |(r, _)| Revision(r.0.saturating_sub(1)));
        self.current = upto;
        self.clear_views();
    }

    /// The changes a child holding `have` needs, or `None` when `have` is
    /// ahead of this store (a revision from the future).
    pub fn changes_since(&self, have: Revision) -> Option<Changes> {
        if have > self.current {
            return None;
        }
        // Zero asks for everything: a fresh child, or one resynchronising,
        // which replaces its whole set with what it receives.
        if have == Revision::ZERO || have < self.compacted_to {
            let all = self.policies.values().map(|p| p.for_peer(Revision::ZERO)).collect();
            return Some(Changes::Snapshot(all));
        }
        let changed: BTreeSet<&PolicyId> =
            self.log.iter().rev().take_while(|(r, _)| *r > have).map(|(_, id)| id).collect();
        let delta = changed
            .into_iter()
            .filter_map(|id| self.policies.get(id))
            .map(|p| p.for_peer(have))
            .collect();
        Some(Changes::Delta(delta))
    }

    /// The current revision and applicable platforms of every policy: what
    /// compliance is measured against.
    pub fn compliance_targets(&self) -> BTreeMap<PolicyId, (Revision, Vec<Platform>)> {
        self.policies
            .values()
            .map(|p| {
                let r = &p.full.record;
                (r.id.clone(), (r.revision, r.spec.platforms.clone()))
            })
            .collect()
    }

    /// The effective policies for clients of `platform` at `site`, derived
    /// once per revision and cached.
    pub fn view(&mut self, site: &SiteName, platform: &Platform) -> &Arc<View> {
        let slot = view_memo_slot(site, platform);
        let hit = matches!(&self.view_memo[slot],
            Some((s, p, _)) if s.same_allocation(site) && p.same_allocation(platform));
        if !hit {
            let view = self.derived_view(site, platform).clone();
            self.view_memo[slot] = Some((site.clone(), platform.clone(), view));
        }
        match &self.view_memo[slot] {
            Some((_, _, view)) => view,
            None => unreachable!("the slot was just filled"),
        }
    }

    /// Drops every derived view: the set they were derived from changed.
    fn clear_views(&mut self) {
        self.views.clear();
        self.view_memo.fill(None);
    }

    /// The view of (`site`, `platform`), derived now if it was not.
    fn derived_view(&mut self, site: &SiteName, platform: &Platform) -> &Arc<View> {
        // Found, or derived and kept (two lookups: the borrow checker does
        // not let a returned borrow of the first cover the insertion).
        let known = self
            .views
            .get(site)
            .and_then(|per_platform| per_platform.iter().position(|(p, _)| p == platform));
        if let Some(i) = known {
            return &self.views[site][i].1;
        }
        let entries: Vec<ViewEntry> = self
            .policies
            .values()
            .map(|p| {
                let since = self
                    .applies_since
                    .get(p.id())
                    .and_then(|m| m.get(platform))
                    .copied()
                    .unwrap_or(p.revision());
                derive_entry(p, site, platform, since)
            })
            .collect();
        let newest = entries.iter().map(ViewEntry::revision).max().unwrap_or(Revision::ZERO);
        let view = Arc::new(View { revision: self.current, newest, entries });
        let per_platform = self.views.entry(site.clone()).or_default();
        per_platform.push((platform.clone(), view));
        &per_platform[per_platform.len() - 1].1
    }

    /// Content of a held policy, when its content revision is `content_rev`.
    pub fn content_at(&self, id: &PolicyId, content_rev: Revision) -> Option<&Blob> {
        self.policies
            .get(id)
            .filter(|p| p.full.record.content_revision == content_rev)
            .map(|p| &p.content)
    }
}

fn derive_entry(
    p: &HeldPolicy,
    site: &SiteName,
    platform: &Platform,
    since: Revision,
) -> ViewEntry {
    match p.full.derive(site, platform, &p.content, true) {
        Some(full) => {
            let bare = Arc::new(full.with_content(None));
            ViewEntry::Applies { full: Arc::new(full), bare, since }
        }
        None => ViewEntry::NotApplies { id: p.id().clone(), revision: p.revision() },
    }
}
