//! Policies, their revisions, and the derivation of effective policies.
//!
//! A policy is kept at the master as a [`PolicySpec`] plus content bytes.
//! Each accepted change produces a [`SignedPolicy`]: the spec at its new
//! revision, signed by the master, together with one signature per
//! *effective variant* (platform, and site when the site has an overlay),
//! so that a client can check the exact parameters a local server derived
//! for it without trusting that server.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::blob::{Blob, Digest};
use crate::ids::{Platform, PolicyId, Revision, SiteName};
use crate::sign::Sig;
use crate::value::{Params, merge_into};

/// A policy's definition at one revision, without its content bytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicySpec {
    /// Global parameters, the base of every derivation.
    pub params: Params,
    /// Platforms the policy applies to, sorted and without duplicates.
    pub platforms: Vec<Platform>,
    /// Per-platform overlays, applied last.
    pub platform_params: BTreeMap<Platform, Params>,
    /// Per-site overlays, applied after the global parameters.
    pub site_params: BTreeMap<SiteName, Params>,
}

impl PolicySpec {
    /// Whether clients of `platform` receive this policy.
    pub fn applies_to(&self, platform: &Platform) -> bool {
        self.platforms.binary_search(platform).is_ok()
    }

    /// The effective parameters for a client of `platform` at `site`:
    /// global parameters, then the site's overlay, then the platform's
    /// overlay, merged by [`crate::value::merge`].
    ///
    /// Example: global `{scan = "daily", heuristics = true}`, site `tokyo`
    /// overlay `{scan = "weekly"}`, platform `linux` overlay
    /// `{heuristics = false}`: a Linux client in Tokyo gets
    /// `{scan = "weekly", heuristics = false}`, a Windows client in Tokyo
    /// `{scan = "weekly", heuristics = true}`.
    ///
    /// When both overlays set one key, the platform's wins (global < site <
    /// platform): with a `linux` overlay `{scan = "hourly"}` instead, the
    /// Linux client in Tokyo gets `scan = "hourly"`.
    ///
    /// `scope` is the site whose overlay applies, `None` for a site without
    /// one (see [`PolicySpec::scope_for`]).
    pub fn derive_params(&self, scope: Option<&SiteName>, platform: &Platform) -> Params {
        let mut out = self.params.clone();
        if let Some(overlay) = scope.and_then(|s| self.site_params.get(s)) {
            merge_into(&mut out, overlay);
        }
        if let Some(overlay) = self.platform_params.get(platform) {
            merge_into(&mut out, overlay);
        }
        out
    }

    /// The site scope of the signed variant a client at `site` receives:
    /// the site itself when it has an overlay, otherwise `None` (the one
    /// variant shared by every site without an overlay).
    pub fn scope_for(&self, site: &SiteName) -> Option<SiteName> {
        self.site_params.contains_key(site).then(|| site.clone())
    }
}

/// A requested change to one policy, as an operator (at the master or at a
/// local server) or a scenario states it. Absent fields keep their value.
///
/// There is no deletion: a policy is retired by changing its platform list
/// to exclude everyone, which removes it from every client on its next
/// poll but keeps it in every server's store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PolicyChange {
    /// The policy changed or created.
    pub id: PolicyId,
    /// New global parameters (replaces the table whole).
    pub params: Option<Params>,
    /// New content bytes.
    pub content: Option<Blob>,
    /// New platform list; required when the change creates the policy.
    pub platforms: Option<Vec<Platform>>,
    /// New per-platform overlays (replaces all of them).
    pub platform_params: Option<BTreeMap<Platform, Params>>,
    /// New per-site overlays (replaces all of them).
    pub site_params: Option<BTreeMap<SiteName, Params>>,
    /// Take the wake-up path instead of waiting for the next window.
    pub urgent: bool,
}

impl PolicyChange {
    /// Applies the change to `spec` (the previous definition, or the
    /// default for a new policy).
    pub fn apply_to(&self, spec: &PolicySpec) -> PolicySpec {
        let mut out = spec.clone();
        if let Some(p) = &self.params {
            out.params = p.clone();
        }
        if let Some(p) = &self.platforms {
            let mut list = p.clone();
            list.sort();
            list.dedup();
            out.platforms = list;
        }
        if let Some(p) = &self.platform_params {
            out.platform_params = p.clone();
        }
        if let Some(p) = &self.site_params {
            out.site_params = p.clone();
        }
        out
    }
}

/// The signed header of one policy revision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyRecord {
    /// Which policy.
    pub id: PolicyId,
    /// The global revision this change was given.
    pub revision: Revision,
    /// The revision at which the content bytes last changed; a receiver
    /// already holding that content is sent the record without the bytes.
    pub content_revision: Revision,
    /// SHA-256 of the content bytes.
    pub content_digest: Digest,
    /// Length of the content in bytes.
    pub content_len: u64,
    /// Whether this revision was pushed by wake-up.
    pub urgent: bool,
    /// The definition.
    pub spec: PolicySpec,
}

impl PolicyRecord {
    /// The digest the master signs for this record.
    pub fn signing_digest(&self) -> Digest {
        let mut h = Sha256::new();
        h.update(b"tiersync/record/v1\0");
        h.update(postcard::to_allocvec(self).unwrap_or_default());
        h.finalize().into()
    }
}

/// The master's signature over one effective variant of a revision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VariantSig {
    /// The client platform.
    pub platform: Platform,
    /// The site, when the site has its own overlay; `None` for the variant
    /// shared by all other sites.
    pub site: Option<SiteName>,
    /// Signature over [`EffectivePolicy::signing_digest`].
    pub signature: Sig,
}

/// One policy revision as the master signed it, as stored and replicated
/// between servers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignedPolicy {
    /// The signed header and definition.
    pub record: PolicyRecord,
    /// The master's signature over [`PolicyRecord::signing_digest`].
    pub signature: Sig,
    /// Signatures of every effective variant.
    pub variants: Vec<VariantSig>,
    /// The content bytes, or `None` when the receiver already holds the
    /// content of `record.content_revision`.
    pub content: Option<Blob>,
}

impl SignedPolicy {
    /// The same revision without its content bytes.
    pub fn without_content(&self) -> SignedPolicy {
        SignedPolicy { content: None, ..self.clone() }
    }

    /// Builds the effective policy for a client of `platform` at `site`,
    /// or `None` when the policy does not apply to that platform or no
    /// variant signature covers it. `content` is the full content the
    /// server holds; it is attached only when `with_content` is set.
    pub fn derive(
        &self,
        site: &SiteName,
        platform: &Platform,
        content: &Blob,
        with_content: bool,
    ) -> Option<EffectivePolicy> {
        let spec = &self.record.spec;
        if !spec.applies_to(platform) {
            return None;
        }
        let scope = spec.scope_for(site);
        let sig = self
            .variants
            .iter()
            .find(|v| &v.platform == platform && v.site == scope)?
            .signature
            .clone();
        Some(EffectivePolicy {
            id: self.record.id.clone(),
            revision: self.record.revision,
            content_revision: self.record.content_revision,
            content_digest: self.record.content_digest,
            platform: platform.clone(),
            params: spec.derive_params(scope.as_ref(), platform),
            site: scope,
            signature: sig,
            content: with_content.then(|| content.clone()),
            digest: OnceLock::new(),
        })
    }
}

/// The policy a client applies: parameters already derived for its site
/// and platform, signed by the master for exactly that variant.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EffectivePolicy {
    /// Which policy.
    pub id: PolicyId,
    /// The global revision.
    pub revision: Revision,
    /// The revision at which the content last changed.
    pub content_revision: Revision,
    /// SHA-256 of the content bytes.
    pub content_digest: Digest,
    /// The platform this variant is for.
    pub platform: Platform,
    /// The site this variant is for, or `None` for sites without overlay.
    pub site: Option<SiteName>,
    /// The derived parameters.
    pub params: Params,
    /// The master's signature over [`EffectivePolicy::signing_digest`].
    pub signature: Sig,
    /// Content bytes, or `None` when the client already holds the content
    /// of `content_revision`.
    pub content: Option<Blob>,
    /// Memo of the signing digest: every client holding this same shared
    /// copy reuses it. Not on the wire.
    #[serde(skip)]
    digest: OnceLock<Digest>,
}

impl PartialEq for EffectivePolicy {
    fn eq(&self, o: &EffectivePolicy) -> bool {
        self.id == o.id
            && self.revision == o.revision
            && self.content_revision == o.content_revision
            && self.content_digest == o.content_digest
            && self.platform == o.platform
            && self.site == o.site
            && self.params == o.params
            && self.signature == o.signature
            && self.content == o.content
    }
}

/// The fields of an effective policy that its signature covers.
#[derive(Serialize)]
struct EffectiveSigned<'a> {
    id: &'a PolicyId,
    revision: Revision,
    content_revision: Revision,
    content_digest: &'a Digest,
    platform: &'a Platform,
    site: &'a Option<SiteName>,
    params: &'a Params,
}

impl EffectivePolicy {
    /// The digest the master signs for this variant, memoised.
    pub fn signing_digest(&self) -> Digest {
        *self.digest.get_or_init(|| {
            effective_digest(
                &self.id,
                self.revision,
                self.content_revision,
                &self.content_digest,
                &self.platform,
                &self.site,
                &self.params,
            )
        })
    }

    /// The same variant with its content bytes replaced.
    pub fn with_content(&self, content: Option<Blob>) -> EffectivePolicy {
        EffectivePolicy { content, ..self.clone() }
    }
}

/// Digest of an effective variant; used by the master to sign and by
/// clients to verify.
pub(crate) fn effective_digest(
    id: &PolicyId,
    revision: Revision,
    content_revision: Revision,
    content_digest: &Digest,
    platform: &Platform,
    site: &Option<SiteName>,
    params: &Params,
) -> Digest {
    let signed =
        EffectiveSigned { id, revision, content_revision, content_digest, platform, site, params };
    let mut h = Sha256::new();
    h.update(b"tiersync/effective/v1\0");
    h.update(postcard::to_allocvec(&signed).unwrap_or_default());
    h.finalize().into()
}

/// A policy revision as held by a server: the signed revision with its
/// content, and a copy without content, both shared by reference.
#[derive(Clone, Debug)]
pub struct HeldPolicy {
    /// The revision with content bytes.
    pub full: Arc<SignedPolicy>,
    /// The same revision without content bytes.
    pub bare: Arc<SignedPolicy>,
    /// The content bytes.
    pub content: Blob,
}

impl HeldPolicy {
    /// Wraps a verified revision whose content is `content`.
    pub fn new(signed: SignedPolicy, content: Blob) -> HeldPolicy {
        let mut full = signed;
        full.content = Some(content.clone());
        let bare = Arc::new(full.without_content());
        HeldPolicy { full: Arc::new(full), bare, content }
    }

    /// The policy's id.
    pub fn id(&self) -> &PolicyId {
        &self.full.record.id
    }

    /// The revision held.
    pub fn revision(&self) -> Revision {
        self.full.record.revision
    }

    /// The copy to send to a peer that holds revision `have`: without the
    /// content when the peer already has it.
    pub fn for_peer(&self, have: Revision) -> Arc<SignedPolicy> {
        if have >= self.full.record.content_revision {
            self.bare.clone()
        } else {
            self.full.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Name;
    use crate::value::Value;

    fn p(pairs: &[(&str, Value)]) -> Params {
        pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
    }

    /// The examples in the documentation of `derive_params`.
    #[test]
    fn documented_derivation_examples() {
        let tokyo = Name::new("tokyo");
        let (linux, windows) = (Name::new("linux"), Name::new("windows"));
        let mut spec = PolicySpec {
            params: p(&[("scan", Value::Str("daily".into())), ("heuristics", Value::Bool(true))]),
            platforms: vec![linux.clone(), windows.clone()],
            platform_params: [(linux.clone(), p(&[("heuristics", Value::Bool(false))]))].into(),
            site_params: [(tokyo.clone(), p(&[("scan", Value::Str("weekly".into()))]))].into(),
        };
        let scope = spec.scope_for(&tokyo);
        let want = p(&[("scan", Value::Str("weekly".into())), ("heuristics", Value::Bool(false))]);
        assert_eq!(spec.derive_params(scope.as_ref(), &linux), want);
        let want = p(&[("scan", Value::Str("weekly".into())), ("heuristics", Value::Bool(true))]);
        assert_eq!(spec.derive_params(scope.as_ref(), &windows), want);

        // Both overlays set `scan`: the platform's wins.
        spec.platform_params =
            [(linux.clone(), p(&[("scan", Value::Str("hourly".into()))]))].into();
        let got = spec.derive_params(scope.as_ref(), &linux);
        assert_eq!(got["scan"], Value::Str("hourly".into()));
        assert_eq!(
            spec.derive_params(scope.as_ref(), &windows)["scan"],
            Value::Str("weekly".into())
        );
    }
}
