//! Operator commands: requests, answers, policy files and tables.
//!
//! An operator connects to the master (or, for `policy set`, to a local
//! server) over the same mutually-authenticated TLS as the nodes, with a
//! certificate of role `operator`. The server sees the role in the
//! certificate and speaks this request/answer protocol on that connection
//! instead of the engine's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tiersync_engine::{Blob, Name, Params, PolicyChange, Time, Value};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::config::OperatorConfigFile;
use crate::frame::{self, FrameError, Limits};
use crate::pki::{self, PkiError};

/// What an operator asks.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum OpRequest {
    /// Create or change a policy (at the master, or at a local server from
    /// where it travels up). With `platform`, the file's parameters become
    /// that platform's overlay and the other overlays are kept.
    SetPolicy {
        /// The change.
        change: PolicyChange,
        /// The platform whose overlay the parameters are.
        platform: Option<String>,
    },
    /// Every policy held.
    ListPolicies,
    /// One policy, at its latest or a given revision.
    ShowPolicy {
        /// The policy.
        id: String,
        /// The revision (the master keeps them all).
        revision: Option<u64>,
    },
    /// At a local server: synchronise with the parent now (upload
    /// statistics, fetch changes) instead of waiting for the window.
    SyncNow,
    /// Status, historical (from the store) or current (asked now).
    Status {
        /// Ask every local server now.
        current: bool,
        /// All sites, one site or one client.
        scope: OpScope,
    },
}

/// What a status request covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpScope {
    /// Every site.
    All,
    /// One site.
    Site(String),
    /// One client, by certificate name.
    Client(String),
}

/// The answer to an [`OpRequest`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum OpResponse {
    /// A policy change was accepted (at the master) or proposed (at a
    /// local server).
    PolicySet(SetOutcome),
    /// The policies held.
    Policies(Vec<PolicySummary>),
    /// One policy.
    Policy(Box<PolicyDetail>),
    /// Status.
    Status(StatusView),
    /// The request was carried out.
    Done(String),
    /// The request was refused.
    Error(String),
}

/// Outcome of `policy set`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetOutcome {
    /// The policy.
    pub policy: String,
    /// The revision assigned (at the master); `None` at a local server,
    /// where the master assigns it later.
    pub revision: Option<u64>,
    /// The proposal id at the node that took the request.
    pub proposal: u64,
    /// The node that took it.
    pub node: String,
}

/// One line of `policy list`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicySummary {
    /// The policy.
    pub id: String,
    /// Its latest revision.
    pub revision: u64,
    /// Platforms it applies to.
    pub platforms: Vec<String>,
    /// Content size in bytes.
    pub content_bytes: u64,
    /// Sites with their own overlay.
    pub site_overlays: Vec<String>,
    /// Whether the revision took the wake-up path.
    pub urgent: bool,
}

/// `policy show`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PolicyDetail {
    /// Summary of the revision shown.
    pub summary: PolicySummary,
    /// Revision at which the content last changed.
    pub content_revision: u64,
    /// SHA-256 of the content, hexadecimal.
    pub content_sha256: String,
    /// Global parameters, as JSON text.
    pub params: String,
    /// Per-platform overlays, as JSON text.
    pub platform_params: String,
    /// Per-site overlays, as JSON text.
    pub site_params: String,
    /// Every revision of the policy: revision, time assigned, origin node.
    pub history: Vec<(u64, String, String)>,
}

/// A status answer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StatusView {
    /// `current` or `historical`.
    pub kind: String,
    /// Per site.
    pub sites: Vec<SiteRow>,
    /// Sites that did not answer in time, or whose server was not
    /// connected (current status only).
    pub missing: Vec<String>,
    /// A client's detail.
    pub client: Option<ClientRow>,
}

/// One site's consolidated statistics.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SiteRow {
    /// The site.
    pub site: String,
    /// When its local server consolidated them (RFC 3339, UTC).
    pub as_of: String,
    /// Clients that ever reported.
    pub clients: u64,
    /// Clients on the current revision of every policy they need.
    pub compliant: u64,
    /// Clients with the firewall on.
    pub firewall_on: u64,
    /// Clients silent for longer than the stale time.
    pub stale: u64,
    /// Threats found.
    pub threats: u64,
    /// Policy revisions refused by clients for failed verification.
    pub rejected_policies: u64,
    /// Policy revisions the site's local server itself refused for failed
    /// verification (a forgery between it and its parent).
    #[serde(default)]
    pub rejected_by_server: u64,
}

/// One client's latest report.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ClientRow {
    /// Its name.
    pub name: String,
    /// Its site.
    pub site: String,
    /// Its platform.
    pub platform: String,
    /// When its server last heard from it.
    pub seen: String,
    /// Revision applied per policy.
    pub applied: Vec<(String, u64)>,
    /// Whether its firewall is on.
    pub firewall_on: bool,
    /// Threats found.
    pub threats: u32,
    /// Policy revisions it refused.
    pub rejected_policies: u32,
}

/// RFC 3339 text of an engine time.
pub fn time_text(t: Time) -> String {
    t.to_jiff().round(jiff::Unit::Second).map(|ts| ts.to_string()).unwrap_or_default()
}

/// Why an operator command failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum OperatorError {
    /// TLS files could not be used.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The server could not be reached.
    #[error("cannot reach {server}: {source}")]
    Connect {
        /// The address.
        server: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The exchange failed.
    #[error("exchange with the server failed: {0}")]
    Frame(#[from] FrameError),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(std::time::Duration),
    /// The server name is not a valid TLS name.
    #[error("server_name `{0}` is not a valid name")]
    ServerName(String),
    /// The policy file is unusable.
    #[error("{path}: {message}")]
    PolicyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// Sends one request and waits for its answer.
pub async fn request(
    cfg: &OperatorConfigFile,
    req: &OpRequest,
) -> Result<OpResponse, OperatorError> {
    let tls = pki::client_config(&cfg.tls)?;
    let name = rustls_pki_types::ServerName::try_from(cfg.server_name.clone())
        .map_err(|_| OperatorError::ServerName(cfg.server_name.clone()))?;
    let exchange = async {
        let tcp = TcpStream::connect(&cfg.server)
            .await
            .map_err(|source| OperatorError::Connect { server: cfg.server.clone(), source })?;
        let mut tls = TlsConnector::from(Arc::clone(&tls))
            .connect(name, tcp)
            .await
            .map_err(|source| OperatorError::Connect { server: cfg.server.clone(), source })?;
        let bytes = frame::encode_op(req)?;
        frame::write_all(&mut tls, &bytes, cfg.timeout).await?;
        let limits = Limits {
            max_frame_bytes: 256 << 20,
            dead_after: cfg.timeout,
            min_send_rate_bps: 1024,
            grace: cfg.timeout,
        };
        let answer = frame::read_frame(&mut tls, &limits).await?;
        Ok::<_, OperatorError>(frame::decode_op(&answer)?)
    };
    tokio::time::timeout(cfg.timeout, exchange)
        .await
        .map_err(|_| OperatorError::Timeout(cfg.timeout))?
}

/// The policy file of `policy set`:
///
/// ```toml
/// platforms = ["windows", "linux"]    # required when creating the policy
/// urgent = false                      # take the wake-up path
/// content_file = "signatures.bin"     # content bytes (relative to this file)
/// [params]
/// scan = "daily"
/// [platform_params.linux]
/// heuristics = false
/// [site_params.tokyo]
/// scan = "weekly"
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    platforms: Option<Vec<String>>,
    #[serde(default)]
    urgent: bool,
    content_file: Option<PathBuf>,
    content: Option<String>,
    params: Option<toml::Table>,
    platform_params: Option<BTreeMap<String, toml::Table>>,
    site_params: Option<BTreeMap<String, toml::Table>>,
}

/// Reads a policy file into a change of policy `id`.
pub fn read_policy_file(id: &str, path: &Path) -> Result<PolicyChange, OperatorError> {
    let err = |message: String| OperatorError::PolicyFile { path: path.to_owned(), message };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    let file: PolicyFile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
    let content = match (&file.content_file, &file.content) {
        (Some(_), Some(_)) => return Err(err("give content or content_file, not both".into())),
        (Some(f), None) => {
            let f = path.parent().unwrap_or(Path::new(".")).join(f);
            let bytes = std::fs::read(&f).map_err(|e| err(format!("{}: {e}", f.display())))?;
            Some(Blob::from_bytes(bytes))
        }
        (None, Some(s)) => Some(Blob::from_bytes(s.clone().into_bytes())),
        (None, None) => None,
    };
    let overlays = |m: Option<BTreeMap<String, toml::Table>>| {
        m.map(|m| m.into_iter().map(|(k, v)| (Name::new(&k), params_of(v))).collect())
    };
    Ok(PolicyChange {
        id: Name::new(id),
        params: file.params.map(params_of),
        content,
        platforms: file.platforms.map(|p| p.iter().map(|s| Name::new(s)).collect()),
        platform_params: overlays(file.platform_params),
        site_params: overlays(file.site_params),
        urgent: file.urgent,
    })
}

fn params_of(t: toml::Table) -> Params {
    t.into_iter().map(|(k, v)| (k, value_of(v))).collect()
}

fn value_of(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::Str(s),
        toml::Value::Integer(i) => Value::Int(i),
        toml::Value::Float(f) => Value::Float(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::Str(d.to_string()),
        toml::Value::Array(a) => Value::List(a.into_iter().map(value_of).collect()),
        toml::Value::Table(t) => Value::Map(params_of(t)),
    }
}

/// Parameters as JSON, for display.
pub fn params_json(p: &Params) -> serde_json::Value {
    serde_json::Value::Object(p.iter().map(|(k, v)| (k.clone(), value_json(v))).collect())
}

fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
        }
        Value::Str(s) => s.clone().into(),
        Value::List(l) => l.iter().map(value_json).collect(),
        Value::Map(m) => params_json(m),
    }
}

/// Lays out rows under headers in aligned columns.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> =
            cells.zip(&widths).map(|(c, w)| format!("{c:<w$}", w = *w)).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&mut headers.iter().copied());
    for row in rows {
        out += &line(&mut row.iter().map(String::as_str));
    }
    out
}

/// The human-readable text of an answer.
pub fn render(resp: &OpResponse) -> String {
    match resp {
        OpResponse::PolicySet(o) => match o.revision {
            Some(r) => format!("{}: revision {r} assigned by {}\n", o.policy, o.node),
            None => format!(
                "{}: proposal {} accepted by {}; it travels up to the master, which assigns \
                 its revision\n",
                o.policy, o.proposal, o.node
            ),
        },
        OpResponse::Policies(list) => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|p| {
                    vec![
                        p.id.clone(),
                        p.revision.to_string(),
                        p.platforms.join(","),
                        p.content_bytes.to_string(),
                        if p.site_overlays.is_empty() {
                            "-".into()
                        } else {
                            p.site_overlays.join(",")
                        },
                    ]
                })
                .collect();
            table(&["POLICY", "REVISION", "PLATFORMS", "CONTENT_BYTES", "SITE_OVERLAYS"], &rows)
        }
        OpResponse::Policy(d) => {
            let s = &d.summary;
            let mut out = format!(
                "policy     {}\nrevision   {}\nplatforms  {}\ncontent    {} bytes, sha256 {}, \
                 since revision {}\nurgent     {}\nparams     {}\nplatform   {}\nsite       {}\n",
                s.id,
                s.revision,
                s.platforms.join(", "),
                s.content_bytes,
                d.content_sha256,
                d.content_revision,
                s.urgent,
                d.params,
                d.platform_params,
                d.site_params
            );
            if !d.history.is_empty() {
                out += "\n";
                let rows: Vec<Vec<String>> = d
                    .history
                    .iter()
                    .map(|(r, at, origin)| vec![r.to_string(), at.clone(), origin.clone()])
                    .collect();
                out += &table(&["REVISION", "ASSIGNED", "ORIGIN"], &rows);
            }
            out
        }
        OpResponse::Status(v) => render_status(v),
        OpResponse::Done(what) => format!("{what}\n"),
        OpResponse::Error(e) => format!("error: {e}\n"),
    }
}

fn render_status(v: &StatusView) -> String {
    let mut out = String::new();
    if let Some(c) = &v.client {
        out += &format!(
            "client     {}\nsite       {}\nplatform   {}\nseen       {}\nfirewall   {}\n\
             threats    {}\nrejected   {}\n",
            c.name,
            c.site,
            c.platform,
            c.seen,
            if c.firewall_on { "on" } else { "off" },
            c.threats,
            c.rejected_policies
        );
        let applied: Vec<String> = c.applied.iter().map(|(p, r)| format!("{p}@{r}")).collect();
        out += &format!("applied    {}\n", applied.join(" "));
        return out;
    }
    let mut rows: Vec<Vec<String>> = v
        .sites
        .iter()
        .map(|s| {
            vec![
                s.site.clone(),
                s.as_of.clone(),
                s.clients.to_string(),
                s.compliant.to_string(),
                s.firewall_on.to_string(),
                s.stale.to_string(),
                s.threats.to_string(),
                s.rejected_policies.to_string(),
                s.rejected_by_server.to_string(),
            ]
        })
        .collect();
    for m in &v.missing {
        let mut row = vec![m.clone(), "NO ANSWER".into()];
        row.extend(std::iter::repeat_n("-".to_string(), 7));
        rows.push(row);
    }
    out += &format!("{} status\n", v.kind);
    out += &table(
        &[
            "SITE",
            "AS_OF",
            "CLIENTS",
            "COMPLIANT",
            "FIREWALL_ON",
            "STALE",
            "THREATS",
            "REJECTED",
            "SERVER_REJECTED",
        ],
        &rows,
    );
    if !v.missing.is_empty() {
        let n = v.missing.len();
        out += &format!("{n} site(s) did not answer (not connected, or silent to the deadline)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_file_becomes_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("av.toml");
        std::fs::write(dir.path().join("sig.bin"), b"abc").unwrap();
        std::fs::write(
            &path,
            "platforms = [\"windows\"]\ncontent_file = \"sig.bin\"\n[params]\nscan = \"daily\"\n\
             [site_params.tokyo]\nscan = \"weekly\"\n",
        )
        .unwrap();
        let c = read_policy_file("antivirus", &path).unwrap();
        assert_eq!(c.platforms, Some(vec![Name::new("windows")]));
        assert_eq!(c.content.map(|b| b.len()), Some(3));
        assert_eq!(c.params.unwrap()["scan"], Value::Str("daily".into()));
        assert!(c.site_params.unwrap().contains_key("tokyo"));
    }

    #[test]
    fn tables_align() {
        let t = table(&["A", "BB"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "A    BB\nxxx  y\n");
    }
}
