//! How application frames become bytes on the wire.
//!
//! The simulator charges each protocol message the exact length of its
//! encoded frame; this module adds what TLS 1.3 and TCP/IPv4 put around it,
//! so that traffic figures compare with what a router interface or a NetFlow
//! collector would count. The report states the model by serialising
//! [`TransportModel`].
//!
//! # Scope
//!
//! Bytes are counted at the IP layer: link-layer framing (Ethernet header,
//! preamble, inter-frame gap) is not included, since it differs per hop.
//! Retransmissions are not modelled here: a lost message is a link event,
//! decided by [`crate::link`]. A lost message is still metered on every
//! link it was sent onto, up to and including the one that lost it, since
//! it occupied those links; its pure ACKs are counted only on the links it
//! crossed whole.
//!
//! # Directions
//!
//! A message's own bytes (frame, TLS records, segment headers, and the
//! connection bytes of its sender's side) go in the direction it travels.
//! The bytes it causes the other way (the receiver's pure ACKs, and for a
//! message on a connection of its own the receiver's side of the handshake
//! and teardown) go in the reverse direction of each link it crosses. Which
//! exchanges open a connection is part of the model:
//! [`TransportModel::client_connections`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The per-byte and per-connection overheads of TLS 1.3 over TCP over IPv4,
/// with the assumptions that turn an application message into wire bytes.
///
/// Assumptions, each chosen to err towards counting more rather than less:
/// - each application message is written on its own: it starts a new TLS
///   record and a new TCP segment (no Nagle coalescing of two messages);
/// - a message larger than one record is split into full records;
/// - every segment is full-sized except the last of a message;
/// - the receiver sends one pure ACK per [`delayed_ack_segments`] segments
///   and one for an odd trailing segment (its delayed-ACK timer fires); ACKs
///   that could ride on reverse traffic are still counted as pure ACKs;
/// - IPv4 without options; TCP timestamps on, as Linux enables by default.
///
/// [`delayed_ack_segments`]: TransportModel::delayed_ack_segments
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransportModel {
    /// The TCP maximum segment size announced by each end, in bytes: an
    /// Ethernet MTU of 1500 less 20 bytes of IPv4 and 20 of TCP header
    /// (RFC 879, RFC 6691). Per RFC 6691 it excludes TCP options, so the
    /// data carried per segment is this less the timestamp option.
    pub mss_bytes: u64,
    /// IPv4 header without options, in bytes (RFC 791 §3.1).
    pub ipv4_header_bytes: u64,
    /// TCP header without options, in bytes (RFC 793 §3.1).
    pub tcp_header_bytes: u64,
    /// TCP timestamp option on every segment after the SYN, in bytes: 10 for
    /// the option (RFC 7323 §3) plus 2 NOPs of padding that Linux sends to
    /// keep it 4-byte aligned. Linux default `net.ipv4.tcp_timestamps = 1`.
    pub tcp_timestamp_option_bytes: u64,
    /// TCP options on a Linux SYN or SYN-ACK, in bytes: MSS 4 (RFC 793),
    /// SACK-permitted 2 (RFC 2018), timestamps 10 (RFC 7323), window scale 3
    /// (RFC 7323) and 1 NOP; 20 in all.
    pub tcp_syn_option_bytes: u64,
    /// TLS record header (type, legacy version, length), in bytes
    /// (RFC 8446 §5.1).
    pub tls_record_header_bytes: u64,
    /// AEAD authentication tag per record, in bytes: 16 for AES-GCM and
    /// ChaCha20-Poly1305, the cipher suites of RFC 8446 §B.4.
    pub tls_aead_tag_bytes: u64,
    /// The inner content type byte inside every protected record, in bytes
    /// (RFC 8446 §5.2, `TLSInnerPlaintext`); no padding is assumed.
    pub tls_inner_content_type_bytes: u64,
    /// Largest plaintext per record, in bytes: 2^14 (RFC 8446 §5.1).
    pub tls_max_record_payload_bytes: u64,
    /// Client's first handshake flight, in TLS bytes: a ClientHello of about
    /// 256 bytes (random, a 32-byte legacy session id for middlebox
    /// compatibility, three cipher suites, server name, supported versions
    /// and groups, one X25519 key share, signature algorithms, PSK modes,
    /// ALPN) in a plaintext record (+5). Estimated: 261.
    pub tls_client_hello_bytes: u64,
    /// Server's handshake flight with client authentication requested, in
    /// TLS bytes. ServerHello with an X25519 key share, 122 + 5 record
    /// header; a middlebox-compatibility ChangeCipherSpec record, 6; one
    /// protected record (+22) holding EncryptedExtensions ≈ 20,
    /// CertificateRequest ≈ 30, Certificate 1042 (an assumed 1024-byte DER
    /// chain of two ECDSA P-256 certificates plus 18 bytes of framing),
    /// CertificateVerify ≈ 80 (ECDSA P-256) and Finished 36 (SHA-256).
    /// Total 1363. Session tickets sent after the handshake are not counted:
    /// a server that sends them adds about 230 bytes per ticket.
    pub tls_server_flight_bytes: u64,
    /// Client's second flight, in TLS bytes: a ChangeCipherSpec record, 6,
    /// then one protected record (+22) with its Certificate 1042,
    /// CertificateVerify ≈ 80 and Finished 36, as assumed for the server.
    /// Total 1186.
    pub tls_client_final_flight_bytes: u64,
    /// A TLS alert message body (level, description), in bytes
    /// (RFC 8446 §6); sent as `close_notify` at teardown.
    pub tls_alert_bytes: u64,
    /// Data segments acknowledged by one pure ACK: a receiver acknowledges
    /// at least every second full-sized segment (RFC 1122 §4.2.3.2,
    /// RFC 5681 §4.2), which Linux does outside quick-ACK mode.
    pub delayed_ack_segments: u64,
    /// Which messages between a client and its server (the master under the
    /// flat strategies) open or close a TCP and TLS connection, by message
    /// kind: an agent polling over HTTPS opens one connection per exchange.
    /// By default a poll or a status report opens one; the policy update,
    /// report acknowledgement or error that answers it closes it; a wake-up
    /// reaches the client on a connection of its own, opened by the server
    /// (so the server is the TLS client there). Kinds not listed carry no
    /// connection bytes.
    #[serde(default = "default_client_connections")]
    pub client_connections: BTreeMap<String, ConnectionRole>,
    /// Whether messages between servers (the master and the local servers)
    /// ride on connections kept open for the whole run; default true, so
    /// they carry no setup or teardown bytes. When false, the roles of
    /// [`client_connections`](Self::client_connections) apply to them too.
    #[serde(default = "default_persistent")]
    pub server_connections_persistent: bool,
}

/// What a message does to a connection, in [`TransportModel::client_connections`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionRole {
    /// A request that opens a connection, closed after its answer: the
    /// sender's side of the setup and of the teardown
    /// ([`TransportModel::connection_setup_bytes`] and
    /// [`TransportModel::teardown_bytes`], first values) ride with it.
    Opens,
    /// The answer on a connection its request opened: the responder's side
    /// of setup and teardown (the second values) ride with it.
    Answers,
    /// A message on a connection of its own, opened by its sender: the
    /// sender's side of setup and teardown ride with it, the receiver's
    /// side flows back in the reverse direction.
    Own,
}

fn default_client_connections() -> BTreeMap<String, ConnectionRole> {
    use ConnectionRole::*;
    [
        ("poll", Opens),
        ("report", Opens),
        ("policy_update", Answers),
        ("report_ack", Answers),
        ("error", Answers),
        ("wake", Own),
    ]
    .into_iter()
    .map(|(k, r)| (k.to_owned(), r))
    .collect()
}

fn default_persistent() -> bool {
    true
}

/// A [`TransportModel`] whose numbers cannot describe a real connection,
/// usually from a scenario file that overrides a field.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportModelError {
    /// The TCP options fill the whole segment, leaving no room for data.
    #[error("MSS of {mss_bytes} bytes leaves no data after {option_bytes} bytes of TCP options")]
    NoSegmentPayload {
        /// The configured MSS, in bytes.
        mss_bytes: u64,
        /// The per-segment TCP option bytes, in bytes.
        option_bytes: u64,
    },
    /// A TLS record must carry at least one byte of plaintext.
    #[error("TLS record payload limit must be at least 1 byte")]
    NoRecordPayload,
    /// A receiver must acknowledge after some number of segments.
    #[error("delayed ACK must acknowledge at least 1 segment")]
    NoAckRatio,
}

impl Default for TransportModel {
    /// TLS 1.3 with mutual certificate authentication over TCP/IPv4 with
    /// Linux defaults; each value's source is on its field.
    fn default() -> Self {
        TransportModel {
            mss_bytes: 1460,
            ipv4_header_bytes: 20,
            tcp_header_bytes: 20,
            tcp_timestamp_option_bytes: 12,
            tcp_syn_option_bytes: 20,
            tls_record_header_bytes: 5,
            tls_aead_tag_bytes: 16,
            tls_inner_content_type_bytes: 1,
            tls_max_record_payload_bytes: 16_384,
            tls_client_hello_bytes: 261,
            tls_server_flight_bytes: 1363,
            tls_client_final_flight_bytes: 1186,
            tls_alert_bytes: 2,
            delayed_ack_segments: 2,
            client_connections: default_client_connections(),
            server_connections_persistent: default_persistent(),
        }
    }
}

impl TransportModel {
    /// Checks that the numbers can describe a connection; the arithmetic
    /// methods assume a model that passed.
    pub fn validate(&self) -> Result<(), TransportModelError> {
        if self.mss_bytes <= self.tcp_timestamp_option_bytes {
            return Err(TransportModelError::NoSegmentPayload {
                mss_bytes: self.mss_bytes,
                option_bytes: self.tcp_timestamp_option_bytes,
            });
        }
        if self.tls_max_record_payload_bytes == 0 {
            return Err(TransportModelError::NoRecordPayload);
        }
        if self.delayed_ack_segments == 0 {
            return Err(TransportModelError::NoAckRatio);
        }
        Ok(())
    }

    /// Data bytes carried by one full segment: the MSS less the timestamp
    /// option (1448 by default).
    pub fn segment_payload_bytes(&self) -> u64 {
        self.mss_bytes - self.tcp_timestamp_option_bytes
    }

    /// Header bytes on every segment after the handshake: IPv4, TCP and the
    /// timestamp option (52 by default). A pure ACK is exactly this long.
    pub fn segment_header_bytes(&self) -> u64 {
        self.ipv4_header_bytes + self.tcp_header_bytes + self.tcp_timestamp_option_bytes
    }

    /// Bytes a protected TLS record adds to its plaintext: header, AEAD tag
    /// and inner content type (22 by default).
    pub fn record_overhead_bytes(&self) -> u64 {
        self.tls_record_header_bytes + self.tls_aead_tag_bytes + self.tls_inner_content_type_bytes
    }

    /// TLS records needed for `app_bytes` of application data; zero bytes
    /// need no record because nothing is written.
    pub fn records(&self, app_bytes: u64) -> u64 {
        debug_assert!(self.tls_max_record_payload_bytes > 0);
        app_bytes.div_ceil(self.tls_max_record_payload_bytes)
    }

    /// TLS bytes, records included, for `app_bytes` of application data.
    pub fn tls_bytes(&self, app_bytes: u64) -> u64 {
        app_bytes + self.records(app_bytes) * self.record_overhead_bytes()
    }

    /// TCP segments needed to carry `stream_bytes` of TCP payload written at
    /// once.
    pub fn segments(&self, stream_bytes: u64) -> u64 {
        debug_assert!(self.mss_bytes > self.tcp_timestamp_option_bytes);
        stream_bytes.div_ceil(self.segment_payload_bytes())
    }

    /// IP-layer bytes, in the sending direction, of one application message
    /// of `app_bytes` on an established connection: its TLS records cut into
    /// segments, each with its headers. Zero bytes send nothing.
    pub fn wire_bytes(&self, app_bytes: u64) -> u64 {
        let tls_bytes = self.tls_bytes(app_bytes);
        tls_bytes + self.segments(tls_bytes) * self.segment_header_bytes()
    }

    /// IP-layer bytes of the pure ACKs the receiver sends back, in the
    /// reverse direction, for one message of `app_bytes`.
    pub fn ack_bytes(&self, app_bytes: u64) -> u64 {
        debug_assert!(self.delayed_ack_segments > 0);
        let segments = self.segments(self.tls_bytes(app_bytes));
        segments.div_ceil(self.delayed_ack_segments) * self.segment_header_bytes()
    }

    /// TLS bytes of a full TLS 1.3 handshake with mutual certificate
    /// authentication, as (client to server, server to client); 1447 and
    /// 1363 by default.
    pub fn tls_handshake_bytes(&self) -> (u64, u64) {
        (
            self.tls_client_hello_bytes + self.tls_client_final_flight_bytes,
            self.tls_server_flight_bytes,
        )
    }

    /// IP-layer bytes to open a connection and complete a full TLS 1.3
    /// handshake with mutual authentication, as (client to server, server
    /// to client); (1663, 1527) by default.
    ///
    /// Client to server: SYN, the ACK that completes the TCP handshake, the
    /// ClientHello flight and the final flight. Server to client: SYN-ACK,
    /// the server flight, and one pure ACK for the client's final flight.
    /// The other flights acknowledge what they answer, so they need no
    /// separate ACK.
    pub fn connection_setup_bytes(&self) -> (u64, u64) {
        let syn = self.ipv4_header_bytes + self.tcp_header_bytes + self.tcp_syn_option_bytes;
        let header = self.segment_header_bytes();
        let flight = |tls_bytes: u64| tls_bytes + self.segments(tls_bytes) * header;

        let client_to_server = syn
            + header
            + flight(self.tls_client_hello_bytes)
            + flight(self.tls_client_final_flight_bytes);
        let server_to_client = syn + flight(self.tls_server_flight_bytes) + header;
        (client_to_server, server_to_client)
    }

    /// IP-layer bytes to close a connection, as (client to server, server to
    /// client); (180, 128) by default.
    ///
    /// Each side sends a TLS `close_notify` alert in its own segment, then a
    /// FIN; the client, closing first, sends the last ACK. The alert's
    /// segment and the peer's reply acknowledge each other.
    pub fn teardown_bytes(&self) -> (u64, u64) {
        let header = self.segment_header_bytes();
        let close_notify = self.tls_alert_bytes + self.record_overhead_bytes() + header;
        let fin = header;
        let last_ack = header;
        (close_notify + fin + last_ack, close_notify + fin)
    }

    /// Connection bytes a message in `role` adds, as (in its own direction,
    /// in the reverse direction); see [`ConnectionRole`].
    pub fn connection_bytes(&self, role: ConnectionRole) -> (u64, u64) {
        let (setup_c2s, setup_s2c) = self.connection_setup_bytes();
        let (down_c2s, down_s2c) = self.teardown_bytes();
        match role {
            ConnectionRole::Opens => (setup_c2s + down_c2s, 0),
            ConnectionRole::Answers => (setup_s2c + down_s2c, 0),
            ConnectionRole::Own => (setup_c2s + down_c2s, setup_s2c + down_s2c),
        }
    }
}

/// Wire and ACK bytes of recently seen frame lengths.
///
/// A simulation sends a few frame lengths over and over (an empty poll,
/// its empty answer, a client's unchanged report), and each costs several
/// divisions to convert; this direct-mapped memo of 64 lengths answers
/// those from a table. It returns exactly what [`TransportModel::wire_bytes`]
/// and [`TransportModel::ack_bytes`] would: it only remembers them.
#[derive(Debug)]
pub struct WireMemo {
    /// Per slot: (frame length + 1, wire bytes, ACK bytes); 0 is empty.
    slots: [std::cell::Cell<(u64, u64, u64)>; WireMemo::SLOTS],
}

impl Default for WireMemo {
    fn default() -> Self {
        WireMemo { slots: std::array::from_fn(|_| std::cell::Cell::new((0, 0, 0))) }
    }
}

impl WireMemo {
    const SLOTS: usize = 64;

    /// `(model.wire_bytes(frame), model.ack_bytes(frame))`.
    #[inline]
    pub fn get(&self, model: &TransportModel, frame: u64) -> (u64, u64) {
        let slot = &self.slots[frame as usize % Self::SLOTS];
        let (tag, wire, ack) = slot.get();
        if tag == frame.wrapping_add(1) {
            return (wire, ack);
        }
        let (wire, ack) = (model.wire_bytes(frame), model.ack_bytes(frame));
        slot.set((frame.wrapping_add(1), wire, ack));
        (wire, ack)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memo_answers_what_the_model_computes() {
        let model = TransportModel::default();
        let memo = WireMemo::default();
        // Lengths that share slots, asked twice, in both orders.
        for round in 0..2 {
            for frame in [0u64, 1, 5, 64, 65, 1448, 1449, 4200, 4264, 70 << 20] {
                let frame = if round == 0 { frame } else { frame ^ 64 };
                let want = (model.wire_bytes(frame), model.ack_bytes(frame));
                assert_eq!(memo.get(&model, frame), want, "frame {frame}");
                assert_eq!(memo.get(&model, frame), want, "frame {frame}, again");
            }
        }
    }

    #[test]
    fn default_model_is_valid_and_has_the_documented_sizes() {
        let model = TransportModel::default();
        assert_eq!(model.validate(), Ok(()));
        assert_eq!(model.segment_payload_bytes(), 1448);
        assert_eq!(model.segment_header_bytes(), 52);
        assert_eq!(model.record_overhead_bytes(), 22);
        assert_eq!(model.tls_handshake_bytes(), (1447, 1363));
        assert_eq!(model.connection_setup_bytes(), (1663, 1527));
        assert_eq!(model.teardown_bytes(), (180, 128));
    }

    #[test]
    fn documented_handshake_breakdown_adds_up() {
        let model = TransportModel::default();
        let server_protected = 20 + 30 + 1042 + 80 + 36 + 22;
        assert_eq!(model.tls_server_flight_bytes, 122 + 5 + 6 + server_protected);
        let client_protected = 1042 + 80 + 36 + 22;
        assert_eq!(model.tls_client_final_flight_bytes, 6 + client_protected);
        assert_eq!(model.tls_client_hello_bytes, 256 + 5);
    }

    /// (application bytes, wire bytes, reverse ACK bytes) on boundary sizes.
    #[test]
    fn wire_and_ack_bytes_on_boundaries() {
        let model = TransportModel::default();
        let cases = [
            // Nothing written, nothing sent.
            (0, 0, 0),
            // One byte: one record (23 bytes), one segment, one ACK.
            (1, 1 + 22 + 52, 52),
            // The largest message that fits one segment: 1426 + 22 = 1448.
            (1426, 1500, 52),
            (1427, 1427 + 22 + 2 * 52, 52),
            // The MSS in application bytes needs two segments after TLS.
            (1460, 1460 + 22 + 2 * 52, 52),
            (1461, 1461 + 22 + 2 * 52, 52),
            // One full record: 16406 TLS bytes in 12 segments, 6 ACKs.
            (16_384, 16_384 + 22 + 12 * 52, 6 * 52),
            // One byte more opens a second record.
            (16_385, 16_385 + 2 * 22 + 12 * 52, 6 * 52),
        ];
        for (app, wire, ack) in cases {
            assert_eq!(model.wire_bytes(app), wire, "wire bytes of {app}");
            assert_eq!(model.ack_bytes(app), ack, "ack bytes of {app}");
        }
    }

    #[test]
    fn odd_trailing_segment_gets_its_own_ack() {
        let model = TransportModel::default();
        // 3 segments: one ACK for the first pair, one for the third.
        let app = 2 * 1448 + 1 - 22;
        assert_eq!(model.segments(model.tls_bytes(app)), 3);
        assert_eq!(model.ack_bytes(app), 2 * 52);
    }

    #[test]
    fn validate_rejects_impossible_models() {
        let no_room = TransportModel { mss_bytes: 12, ..TransportModel::default() };
        assert!(matches!(no_room.validate(), Err(TransportModelError::NoSegmentPayload { .. })));
        let no_record =
            TransportModel { tls_max_record_payload_bytes: 0, ..TransportModel::default() };
        assert_eq!(no_record.validate(), Err(TransportModelError::NoRecordPayload));
        let no_ack = TransportModel { delayed_ack_segments: 0, ..TransportModel::default() };
        assert_eq!(no_ack.validate(), Err(TransportModelError::NoAckRatio));
    }

    #[test]
    fn connection_roles_split_setup_and_teardown_by_direction() {
        let model = TransportModel::default();
        assert_eq!(model.connection_bytes(ConnectionRole::Opens), (1663 + 180, 0));
        assert_eq!(model.connection_bytes(ConnectionRole::Answers), (1527 + 128, 0));
        // A connection of its own: the opener's side forward, the other back.
        assert_eq!(model.connection_bytes(ConnectionRole::Own), (1663 + 180, 1527 + 128));
        let opens = model.connection_bytes(ConnectionRole::Opens).0;
        let answers = model.connection_bytes(ConnectionRole::Answers).0;
        let (own_fwd, own_rev) = model.connection_bytes(ConnectionRole::Own);
        assert_eq!(own_fwd + own_rev, opens + answers, "one whole connection either way");
    }

    #[test]
    fn json_states_which_exchanges_open_a_connection() {
        let json = serde_json::to_value(TransportModel::default()).unwrap();
        assert_eq!(json["client_connections"]["poll"], "opens");
        assert_eq!(json["client_connections"]["report"], "opens");
        assert_eq!(json["client_connections"]["policy_update"], "answers");
        assert_eq!(json["client_connections"]["wake"], "own");
        assert!(json["client_connections"].get("sync").is_none());
        assert_eq!(json["server_connections_persistent"], true);
    }

    #[test]
    fn serialises_every_field_for_the_report() {
        let json = serde_json::to_value(TransportModel::default()).unwrap();
        assert_eq!(json["mss_bytes"], 1460);
        assert_eq!(json["tls_max_record_payload_bytes"], 16_384);
        let back: TransportModel = serde_json::from_value(json).unwrap();
        assert_eq!(back, TransportModel::default());
    }
}
