//! Asking a tabletop white cell to admit us: one connection, one request,
//! one answer. The white cell's key is not pinned yet, so any Ed25519 key
//! passes the handshake here (its signature is still verified); the caller
//! checks the answer against the fingerprint it was given out of band.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};

use super::{DIAL_TIMEOUT, HELLO_TIMEOUT, LinkError, stream, tls};
use crate::wire::{Frame, FrameKind};

/// Sends `request` (a [`FrameKind::Join`]) to the white cell at `addr` and
/// returns the key it proved in the handshake and its answer.
pub async fn ask(
    key: &SigningKey,
    addr: SocketAddr,
    alpn: &[u8],
    request: &Frame,
) -> Result<(VerifyingKey, Frame), LinkError> {
    let failed = |reason: String| LinkError::Join { addr, reason };
    let config = tls::join_client_config(key, alpn, Duration::from_secs(15))?;
    let local: SocketAddr = if addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let endpoint = quinn::Endpoint::client(local).map_err(|source| LinkError::Bind {
        addr: local,
        source,
    })?;
    let result = async {
        let connecting = endpoint
            .connect_with(config, addr, "hotline")
            .map_err(|e| failed(e.to_string()))?;
        let conn = tokio::time::timeout(DIAL_TIMEOUT, connecting)
            .await
            .map_err(|_| {
                failed(format!(
                    "no answer in {} s; is a white cell (`hotline tabletop --control`) \
                     running there, and does the network let UDP through?",
                    DIAL_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|e| failed(e.to_string()))?;
        let white_cell = tls::peer_key(&conn)
            .ok_or_else(|| failed("presented no Ed25519 station key".into()))?;
        let answer = stream::request(&conn, request, i32::MAX, HELLO_TIMEOUT)
            .await
            .map_err(|e| failed(format!("the request to join was not answered: {e}")))?;
        conn.close(super::CLOSE_SHUTDOWN.into(), b"done");
        if answer.kind != FrameKind::JoinAnswer {
            return Err(failed(format!(
                "answered the request to join with {:?}; is this a tabletop white cell?",
                answer.kind
            )));
        }
        Ok((white_cell, answer))
    }
    .await;
    let _ = tokio::time::timeout(super::SHUTDOWN_GRACE, endpoint.wait_idle()).await;
    result
}
