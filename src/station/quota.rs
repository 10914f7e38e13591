//! What a station keeps from its peers, in bytes: each peer's quota and
//! the station's (`attachments.peer_quota` and `total_quota`), and the
//! storage alarm that goes up before either is reached.

use super::{AlarmKind, Inner};
use crate::domain::StationName;

/// Whether keeping `adding` more bytes from `peer` would pass its quota or
/// the station's (see `attachments.peer_quota` and `total_quota`): why, if
/// so. The storage alarm goes up at 90% of either and comes down below it.
pub(super) fn over_quota(inner: &Inner, peer: &StationName, adding: u64) -> Option<String> {
    let limits = inner.config.attachments;
    let (from_peer, in_all) = {
        let mut kept = inner
            .kept
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut of = |whose: Option<&StationName>| {
            *kept.entry(whose.cloned()).or_insert_with(|| {
                inner
                    .journal
                    .inbound_bytes(whose.map(StationName::as_str))
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "could not read what the journal keeps");
                        0
                    })
            })
        };
        (of(Some(peer)), of(None))
    };
    let size = crate::domain::format_size;
    let over = if from_peer.saturating_add(adding) > limits.peer_quota {
        Some(format!(
            "this station keeps {} from {peer}, and its quota for one peer is {}",
            size(from_peer),
            size(limits.peer_quota)
        ))
    } else if in_all.saturating_add(adding) > limits.total_quota {
        Some(format!(
            "this station keeps {} in all, and its quota is {}",
            size(in_all),
            size(limits.total_quota)
        ))
    } else {
        None
    };
    let near = |kept: u64, quota: u64| kept.saturating_add(adding) >= quota / 10 * 9;
    if over.is_some() || near(from_peer, limits.peer_quota) || near(in_all, limits.total_quota) {
        inner.raise(
            AlarmKind::Storage,
            "quota",
            Some(peer),
            None,
            crate::t!(
                inner.config.station.language,
                "alarm.storage",
                kept_from_peer = size(from_peer),
                peer = peer,
                peer_quota = size(limits.peer_quota),
                kept = size(in_all),
                quota = size(limits.total_quota)
            ),
        );
    } else {
        inner.resolve(AlarmKind::Storage, "quota");
    }
    over
}

/// Counts `bytes` more kept from `peer`, where the quota check has read
/// the journal's count already.
pub(super) fn count_kept(inner: &Inner, peer: &StationName, bytes: u64) {
    let mut kept = inner
        .kept
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for whose in [Some(peer.clone()), None] {
        if let Some(n) = kept.get_mut(&whose) {
            *n = n.saturating_add(bytes);
        }
    }
}
