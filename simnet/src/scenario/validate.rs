//! Checks that a deserialised scenario describes one runnable deployment,
//! and builds the validated [`Scenario`].
//!
//! Each check reports against a key path, which the document turns into the
//! file, line and column of that key, or of its table when it is absent.

use std::collections::{BTreeMap, BTreeSet};

use tiersync_engine::Time;

use super::document::{Document, Seg, key_path, nearest};
use super::error::{Problem, ScenarioError};
use super::model::{
    Change, ChangeDoc, CrashTarget, Fault, Site, SiteDoc, SkewTarget, local_server_sites,
};
use super::{Policy, Scenario, ScenarioDoc, StatusQuery};
use crate::units::Span;

/// Most distinct policies, and most distinct client platforms, a scenario
/// may have: the simulator's metering tracks each in one bit of a `u64`.
pub(crate) const MAX_TRACKED: usize = 64;

/// Validates `raw` and `faults` read from `doc`.
pub(crate) fn build(
    doc: &Document<'_>,
    raw: ScenarioDoc,
    faults: Vec<Fault>,
) -> Result<Scenario, ScenarioError> {
    let check = Checker { doc, start: raw.start, end: raw.start + raw.duration.as_duration() };

    // Durations that divide or repeat must not be zero.
    check.settings(&raw)?;

    // Sites first: every other section refers to them by name.
    let (sites, root) = check.sites(raw.site, &raw.master.site)?;
    let site_names: BTreeMap<&str, usize> =
        sites.iter().enumerate().map(|(i, s)| (s.name.as_str(), i)).collect();
    let local_server = local_server_sites(&sites, root);
    check.policies(&raw.policy, &site_names)?;
    let changes =
        check.changes(raw.change, &raw.policy, &sites, &local_server, &raw.master.site)?;
    check.status_queries(&raw.status_query, &sites)?;
    check.faults(&faults, &sites, &local_server, root)?;
    check.tracked_counts(&sites, &raw.policy, &changes)?;

    Ok(Scenario {
        name: raw.name,
        seed: raw.seed,
        start: raw.start,
        duration: raw.duration,
        strategy: raw.strategy,
        bucket: raw.bucket,
        business_hours: raw.business_hours,
        master: raw.master,
        client: raw.client,
        local: raw.local,
        sites,
        policies: raw.policy,
        changes,
        status_queries: raw.status_query,
        faults,
        root,
        local_server,
    })
}

/// The document and run bounds that every check needs.
struct Checker<'d, 'a> {
    doc: &'d Document<'a>,
    start: Time,
    end: Time,
}

impl Checker<'_, '_> {
    /// An error for the key at `path`.
    fn invalid(&self, path: &[Seg], problem: Problem) -> ScenarioError {
        let at = self.doc.locate(self.doc.span_of(path));
        let (key, table) = self.doc.describe(path);
        ScenarioError::Invalid { at, key, table, problem }
    }

    /// Errors unless `span` is positive.
    fn positive(&self, span: Span, path: &[Seg]) -> Result<(), ScenarioError> {
        if span.is_zero() {
            return Err(self.invalid(path, Problem::Zero));
        }
        Ok(())
    }

    /// Errors unless `at` lies in `[start, end)`.
    fn within_run(&self, at: Time, path: &[Seg]) -> Result<(), ScenarioError> {
        if at < self.start || at >= self.end {
            let (start, end) = (self.start, self.end);
            return Err(self.invalid(path, Problem::OutsideRun { at, start, end }));
        }
        Ok(())
    }

    /// Errors unless `name` is a site.
    fn site_ref(&self, name: &str, sites: &[Site], path: &[Seg]) -> Result<usize, ScenarioError> {
        match sites.iter().position(|s| s.name == name) {
            Some(i) => Ok(i),
            None => Err(self.unknown_site(name, sites.iter().map(|s| s.name.as_str()), path)),
        }
    }

    fn unknown_site<'n>(
        &self,
        name: &str,
        names: impl Iterator<Item = &'n str>,
        path: &[Seg],
    ) -> ScenarioError {
        let suggestion = nearest(name, names);
        let name = name.to_owned();
        self.invalid(path, Problem::UnknownSite { name, suggestion })
    }

    fn settings(&self, raw: &ScenarioDoc) -> Result<(), ScenarioError> {
        self.positive(raw.duration, &key_path!["duration"])?;
        self.positive(raw.bucket, &key_path!["bucket"])?;
        self.positive(raw.client.poll, &key_path!["client", "poll"])?;
        self.positive(raw.client.status_every, &key_path!["client", "status_every"])?;
        if let Some(check) = raw.local.policy_check {
            self.positive(check, &key_path!["local", "policy_check"])?;
        }
        if let Some(offline) = &raw.client.offline {
            self.positive(offline.every, &key_path!["client", "offline", "every"])?;
            if offline.off >= offline.every {
                let off = offline.off.to_string();
                let every = offline.every.to_string();
                let path = key_path!["client", "offline", "off"];
                return Err(self.invalid(&path, Problem::AbsenceTooLong { off, every }));
            }
        }
        Ok(())
    }

    /// Checks names, time zones and the parent tree; returns the sites and
    /// the index of the root.
    fn sites(
        &self,
        raw: Vec<SiteDoc>,
        master_site: &str,
    ) -> Result<(Vec<Site>, usize), ScenarioError> {
        if raw.is_empty() {
            return Err(self.invalid(&key_path!["site"], Problem::NoSites));
        }

        // Names are unique.
        let mut first: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, site) in raw.iter().enumerate() {
            if let Some(&earlier) = first.get(site.name.as_str()) {
                let at = self.doc.span_of(&key_path!["site", earlier, "name"]);
                let problem = Problem::DuplicateSite {
                    name: site.name.clone(),
                    first_line: self.doc.line_of(at),
                };
                return Err(self.invalid(&key_path!["site", i, "name"], problem));
            }
            first.insert(&site.name, i);
        }

        // Parents exist.
        let mut parents = Vec::with_capacity(raw.len());
        for (i, site) in raw.iter().enumerate() {
            let parent = match &site.parent {
                None => None,
                Some(p) => match first.get(p.as_str()) {
                    Some(&index) => Some(index),
                    None => {
                        let names = raw.iter().map(|s| s.name.as_str());
                        return Err(self.unknown_site(p, names, &key_path!["site", i, "parent"]));
                    }
                },
            };
            parents.push(parent);
        }

        // The parent links form a tree with the master's site at the root.
        self.no_cycles(&raw, &parents)?;
        let root = self.root(&raw, &parents, master_site)?;

        // Every site but the root has a WAN link; time zones are known.
        let mut sites = Vec::with_capacity(raw.len());
        for (i, (site, parent_index)) in raw.into_iter().zip(parents).enumerate() {
            match (&site.parent, &site.wan) {
                (Some(parent), None) => {
                    let problem =
                        Problem::MissingWan { site: site.name.clone(), parent: parent.clone() };
                    return Err(self.invalid(&key_path!["site", i, "wan"], problem));
                }
                (None, Some(_)) => {
                    let problem = Problem::WanOnRoot { site: site.name.clone() };
                    return Err(self.invalid(&key_path!["site", i, "wan"], problem));
                }
                _ => {}
            }
            if site.local_servers > 1 {
                let problem = Problem::SeveralLocalServers {
                    site: site.name.clone(),
                    count: site.local_servers,
                };
                return Err(self.invalid(&key_path!["site", i, "local_servers"], problem));
            }
            let timezone = self.time_zone(&site.timezone, &key_path!["site", i, "timezone"])?;
            sites.push(Site {
                name: site.name,
                parent: site.parent,
                parent_index,
                timezone_name: site.timezone,
                timezone,
                clients: site.clients,
                wan: site.wan,
                lan: site.lan,
                local_servers: site.local_servers,
            });
        }
        Ok((sites, root))
    }

    /// Reports the first parent loop found, scanning sites in file order.
    fn no_cycles(&self, raw: &[SiteDoc], parents: &[Option<usize>]) -> Result<(), ScenarioError> {
        for start in 0..raw.len() {
            // A walk longer than the number of sites must have looped.
            let mut seen = vec![start];
            let mut at = start;
            while let Some(next) = parents[at] {
                if let Some(pos) = seen.iter().position(|&s| s == next) {
                    let mut chain: Vec<String> =
                        seen[pos..].iter().map(|&s| raw[s].name.clone()).collect();
                    chain.push(raw[next].name.clone());
                    let path = key_path!["site", next, "parent"];
                    return Err(self.invalid(&path, Problem::ParentCycle { chain }));
                }
                seen.push(next);
                at = next;
            }
        }
        Ok(())
    }

    /// Finds the single site without a parent and checks that the master is
    /// there.
    fn root(
        &self,
        raw: &[SiteDoc],
        parents: &[Option<usize>],
        master_site: &str,
    ) -> Result<usize, ScenarioError> {
        let roots: Vec<usize> = (0..raw.len()).filter(|&i| parents[i].is_none()).collect();

        // Without cycles, following parents from any site ends at a root,
        // so `roots` is not empty; report it as a cycle should that change.
        let Some(&root) = roots.first() else {
            let chain = vec![raw[0].name.clone()];
            return Err(
                self.invalid(&key_path!["site", 0, "parent"], Problem::ParentCycle { chain })
            );
        };
        if let Some(&second) = roots.get(1) {
            let problem = Problem::SecondRoot {
                name: raw[second].name.clone(),
                root: raw[root].name.clone(),
            };
            return Err(self.invalid(&key_path!["site", second, "name"], problem));
        }
        let master_path = key_path!["master", "site"];
        if !raw.iter().any(|s| s.name == master_site) {
            let names = raw.iter().map(|s| s.name.as_str());
            return Err(self.unknown_site(master_site, names, &master_path));
        }
        if raw[root].name != master_site {
            let problem = Problem::MasterNotAtRoot {
                master: master_site.to_owned(),
                root: raw[root].name.clone(),
            };
            return Err(self.invalid(&master_path, problem));
        }
        Ok(root)
    }

    /// Looks a zone up in jiff's bundled database.
    fn time_zone(&self, name: &str, path: &[Seg]) -> Result<jiff::tz::TimeZone, ScenarioError> {
        let db = jiff::tz::db();
        db.get(name).map_err(|_| {
            let names: Vec<_> = db.available().collect();
            let suggestion = nearest(name, names.iter().map(|n| n.as_str()));
            let name = name.to_owned();
            self.invalid(path, Problem::UnknownTimeZone { name, suggestion })
        })
    }

    fn policies(
        &self,
        policies: &[Policy],
        sites: &BTreeMap<&str, usize>,
    ) -> Result<(), ScenarioError> {
        let mut first: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, policy) in policies.iter().enumerate() {
            if let Some(&earlier) = first.get(policy.id.as_str()) {
                let at = self.doc.span_of(&key_path!["policy", earlier, "id"]);
                let problem = Problem::DuplicatePolicy {
                    id: policy.id.clone(),
                    first_line: self.doc.line_of(at),
                };
                return Err(self.invalid(&key_path!["policy", i, "id"], problem));
            }
            first.insert(&policy.id, i);
            if policy.platforms.is_empty() {
                return Err(self.invalid(&key_path!["policy", i, "platforms"], Problem::EmptyList));
            }
            for platform in policy.platform_params.keys() {
                if !policy.platforms.contains(platform) {
                    let problem = Problem::UnknownPlatform {
                        policy: policy.id.clone(),
                        platform: platform.clone(),
                    };
                    let path = key_path!["policy", i, "platform_params", platform.as_str()];
                    return Err(self.invalid(&path, problem));
                }
            }
            for site in policy.site_params.keys() {
                if !sites.contains_key(site.as_str()) {
                    let path = key_path!["policy", i, "site_params", site.as_str()];
                    return Err(self.unknown_site(site, sites.keys().copied(), &path));
                }
            }
        }
        Ok(())
    }

    /// Checks changes in time order, so that a change may modify a policy
    /// that an earlier change created.
    fn changes(
        &self,
        raw: Vec<ChangeDoc>,
        policies: &[Policy],
        sites: &[Site],
        local_server: &[bool],
        master_site: &str,
    ) -> Result<Vec<Change>, ScenarioError> {
        let mut order: Vec<usize> = (0..raw.len()).collect();
        order.sort_by_key(|&i| (raw[i].at, i));
        let mut known: BTreeSet<&str> = policies.iter().map(|p| p.id.as_str()).collect();
        let mut creates = vec![false; raw.len()];
        for &i in &order {
            let change = &raw[i];
            self.within_run(change.at, &key_path!["change", i, "at"])?;
            if let Some(platforms) = &change.platforms
                && platforms.is_empty()
            {
                return Err(self.invalid(&key_path!["change", i, "platforms"], Problem::EmptyList));
            }
            if !known.contains(change.policy.as_str()) {
                if change.platforms.is_none() {
                    let problem = Problem::UnknownPolicy {
                        id: change.policy.clone(),
                        suggestion: nearest(&change.policy, known.iter().copied()),
                    };
                    return Err(self.invalid(&key_path!["change", i, "policy"], problem));
                }
                creates[i] = true;
                known.insert(&change.policy);
            }
            if let Some(origin) = &change.origin {
                let path = key_path!["change", i, "origin"];
                let index = self.site_ref(origin, sites, &path)?;
                if origin != master_site && !local_server[index] {
                    let site = origin.clone();
                    return Err(self.invalid(&path, Problem::NoLocalServer { site }));
                }
            }
        }

        // Keep file order in the result; the simulator queues by time.
        let changes = raw
            .into_iter()
            .zip(creates)
            .map(|(c, creates_policy)| Change {
                at: c.at,
                policy: c.policy,
                creates_policy,
                content: c.content,
                params: c.params,
                platforms: c.platforms,
                origin: c.origin.unwrap_or_else(|| master_site.to_owned()),
                urgent: c.urgent,
            })
            .collect();
        Ok(changes)
    }

    fn status_queries(&self, queries: &[StatusQuery], sites: &[Site]) -> Result<(), ScenarioError> {
        let total: u64 = sites.iter().map(Site::client_count).sum();
        for (i, query) in queries.iter().enumerate() {
            self.within_run(query.at, &key_path!["status_query", i, "at"])?;
            if let Some(site) = &query.site {
                self.site_ref(site, sites, &key_path!["status_query", i, "site"])?;
            }
            if let Some(client) = query.client {
                let path = key_path!["status_query", i, "client"];
                if query.site.is_some() {
                    return Err(self.invalid(&path, Problem::SiteAndClient));
                }
                if total == 0 {
                    return Err(self.invalid(&path, Problem::NoClients));
                }
                if client >= total {
                    let last = total - 1;
                    return Err(self.invalid(&path, Problem::NoSuchClient { client, last }));
                }
            }
        }
        Ok(())
    }

    fn faults(
        &self,
        faults: &[Fault],
        sites: &[Site],
        local_server: &[bool],
        root: usize,
    ) -> Result<(), ScenarioError> {
        for (i, fault) in faults.iter().enumerate() {
            let site = self.site_ref(fault.site(), sites, &key_path!["fault", i, "site"])?;
            let on_link =
                matches!(fault, Fault::Partition(_) | Fault::Loss(_) | Fault::Duplicate(_));
            if on_link && site == root {
                let problem =
                    Problem::NoUplink { site: sites[site].name.clone(), kind: fault.kind() };
                return Err(self.invalid(&key_path!["fault", i, "site"], problem));
            }
            let node = key_path!["fault", i, "node"];
            let needs_local = |on: bool| -> Result<(), ScenarioError> {
                if on && !local_server[site] {
                    let site = sites[site].name.clone();
                    return Err(self.invalid(&node, Problem::NoLocalServer { site }));
                }
                Ok(())
            };
            match fault {
                Fault::Partition(f) => self.interval(i, Some(f.from), Some(f.to))?,
                Fault::Loss(f) => self.interval(i, f.from, f.to)?,
                Fault::Duplicate(_) => {}
                Fault::Crash(f) => {
                    self.within_run(f.at, &key_path!["fault", i, "at"])?;
                    needs_local(f.node == CrashTarget::Local)?;
                }
                Fault::Skew(f) => match f.node {
                    SkewTarget::Local => needs_local(true)?,
                    SkewTarget::Clients => {}
                    SkewTarget::Master if site != root => {
                        let problem = Problem::MasterElsewhere {
                            site: sites[site].name.clone(),
                            master: sites[root].name.clone(),
                        };
                        return Err(self.invalid(&node, problem));
                    }
                    SkewTarget::Master => {}
                    SkewTarget::Client(client) => {
                        let count = sites[site].client_count();
                        if u64::from(client) >= count {
                            let site = sites[site].name.clone();
                            let problem = Problem::NoSuchSiteClient { site, client, count };
                            return Err(self.invalid(&key_path!["fault", i, "client"], problem));
                        }
                    }
                },
            }
        }
        Ok(())
    }

    /// The simulator's metering keeps one bit per policy and per client
    /// platform in 64-bit masks (`MAX_TRACKED`); a 65th
    /// would share a bit with the first and silently corrupt propagation
    /// and staleness, so it is refused here. Policies are counted as the
    /// metering counts them: the `[[policy]]` ids, then the new ids of
    /// `[[change]]`s in file order. The error points at the first one too
    /// many.
    fn tracked_counts(
        &self,
        sites: &[Site],
        policies: &[Policy],
        changes: &[Change],
    ) -> Result<(), ScenarioError> {
        let mut ids: BTreeSet<&str> = BTreeSet::new();
        let mut first_over = None;
        let named = policies.iter().enumerate();
        let named = named.map(|(i, p)| (key_path!["policy", i, "id"], &p.id));
        let created = changes.iter().enumerate();
        let created = created.map(|(i, c)| (key_path!["change", i, "policy"], &c.policy));
        for (path, id) in named.chain(created) {
            if ids.insert(id) && ids.len() == MAX_TRACKED + 1 {
                first_over = Some(path);
            }
        }
        if let Some(path) = first_over {
            let problem = Problem::TooManyPolicies { count: ids.len(), max: MAX_TRACKED };
            return Err(self.invalid(&path, problem));
        }

        let mut platforms: BTreeSet<&str> = BTreeSet::new();
        let mut first_over = None;
        for (i, site) in sites.iter().enumerate() {
            for platform in site.clients.keys() {
                if platforms.insert(platform) && platforms.len() == MAX_TRACKED + 1 {
                    first_over = Some(key_path!["site", i, "clients", platform.as_str()]);
                }
            }
        }
        if let Some(path) = first_over {
            let problem = Problem::TooManyPlatforms { count: platforms.len(), max: MAX_TRACKED };
            return Err(self.invalid(&path, problem));
        }
        Ok(())
    }

    /// Checks a fault's optional `from` and `to` against the run and each
    /// other; an absent bound is the run's own.
    fn interval(
        &self,
        fault: usize,
        from: Option<Time>,
        to: Option<Time>,
    ) -> Result<(), ScenarioError> {
        if let Some(from) = from {
            self.within_run(from, &key_path!["fault", fault, "from"])?;
        }
        if let Some(to) = to
            && (to <= self.start || to > self.end)
        {
            let (start, end) = (self.start, self.end);
            let problem = Problem::OutsideRun { at: to, start, end };
            return Err(self.invalid(&key_path!["fault", fault, "to"], problem));
        }
        let (from, to) = (from.unwrap_or(self.start), to.unwrap_or(self.end));
        if to <= from {
            let path = key_path!["fault", fault, "to"];
            return Err(self.invalid(&path, Problem::EmptyInterval { from, to }));
        }
        Ok(())
    }
}
