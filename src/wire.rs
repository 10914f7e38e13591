//! Frames on the link: `[kind: u8][length: u32 big-endian][payload]`, one
//! request and one answer per QUIC stream. Every kind has its own size cap,
//! checked from the header before any payload is read. No I/O here.
//!
//! An attachment stream is the one exception to one-frame-each-way: the
//! sender offers ([`AttachmentOffer`]), the receiver answers with where to
//! resume ([`FrameKind::AttachmentResume`]) or with a receipt or refusal,
//! then the sender writes the rest of the sealed file as raw bytes and
//! finishes, and the receiver answers with a receipt or refusal.

use std::fmt;

/// ALPN of the live link.
pub const ALPN_LIVE: &[u8] = b"hotline/1";
/// ALPN of tabletop exercises: a live station never accepts it.
pub const ALPN_EXERCISE: &[u8] = b"hotline-exercise/1";

pub const HEADER_LEN: usize = 5;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// Signed hello: who we are, our clock, our highest released serial.
    Hello = 1,
    /// A sealed message (age ciphertext of a signed message).
    Message = 2,
    /// Signed proof that a message or acknowledgement is stored.
    Receipt = 3,
    /// Signed refusal with a reason code; never retried blindly.
    Refusal = 4,
    /// A signed acknowledgement by a named operator.
    Ack = 5,
    /// A sealed link test with a nonce.
    LinkTest = 6,
    /// The sealed answer to a link test.
    LinkTestReply = 7,
    /// A hello on a probe connection: answered, but the connection is
    /// never used for traffic.
    Probe = 8,
    /// Offers one attachment's sealed file: message id, index, length.
    AttachmentOffer = 9,
    /// The receiver already holds this many sealed bytes: send the rest.
    AttachmentResume = 10,
    /// Asks a tabletop white cell to admit a trainee station: its signed
    /// card, from a key pinned for no peer yet.
    Join = 11,
    /// The white cell's signed answer: pending, admitted or refused, with
    /// its own card.
    JoinAnswer = 12,
    /// A station's notice that it has new keys, signed with the old key
    /// and the new one.
    Rotation = 13,
    /// The peer's signed answer to it: held, confirmed, or refused.
    RotationAnswer = 14,
}

impl FrameKind {
    fn from_byte(b: u8) -> Option<FrameKind> {
        Some(match b {
            1 => FrameKind::Hello,
            2 => FrameKind::Message,
            3 => FrameKind::Receipt,
            4 => FrameKind::Refusal,
            5 => FrameKind::Ack,
            6 => FrameKind::LinkTest,
            7 => FrameKind::LinkTestReply,
            8 => FrameKind::Probe,
            9 => FrameKind::AttachmentOffer,
            10 => FrameKind::AttachmentResume,
            11 => FrameKind::Join,
            12 => FrameKind::JoinAnswer,
            13 => FrameKind::Rotation,
            14 => FrameKind::RotationAnswer,
            _ => return None,
        })
    }

    /// The largest payload accepted for this kind.
    pub fn max_len(self) -> usize {
        match self {
            // A message decrypts to at most 1 MiB; age adds well under 1%.
            FrameKind::Message => 1_100_000,
            FrameKind::LinkTest | FrameKind::LinkTestReply => 64 * 1024,
            FrameKind::AttachmentOffer => OFFER_LEN,
            FrameKind::AttachmentResume => 8,
            FrameKind::Hello
            | FrameKind::Probe
            | FrameKind::Receipt
            | FrameKind::Refusal
            | FrameKind::Ack
            | FrameKind::Join
            | FrameKind::JoinAnswer
            | FrameKind::RotationAnswer => 16 * 1024,
            FrameKind::Rotation => crate::crypto::rotation::MAX_NOTICE,
        }
    }
}

/// One frame.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: FrameKind,
    pub payload: Vec<u8>,
}

impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Frame({:?}, {} bytes)", self.kind, self.payload.len())
    }
}

/// Why bytes from the wire are not a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("a {kind:?} frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        kind: FrameKind,
        len: usize,
        max: usize,
    },
    #[error("frame payload is shorter than its header says")]
    Truncated,
    #[error("trailing bytes after the frame")]
    Trailing,
}

impl Frame {
    pub fn new(kind: FrameKind, payload: Vec<u8>) -> Frame {
        Frame { kind, payload }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.payload.len());
        out.push(self.kind as u8);
        out.extend_from_slice(&(self.payload.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Decodes one whole frame (used by tests and fuzzing; the link reads
    /// the header first with [`parse_header`]).
    pub fn decode(bytes: &[u8]) -> Result<Frame, WireError> {
        let header: [u8; HEADER_LEN] = bytes
            .get(..HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(WireError::Truncated)?;
        let (kind, len) = parse_header(header)?;
        let payload = bytes
            .get(HEADER_LEN..HEADER_LEN + len)
            .ok_or(WireError::Truncated)?;
        if bytes.len() > HEADER_LEN + len {
            return Err(WireError::Trailing);
        }
        Ok(Frame::new(kind, payload.to_vec()))
    }
}

const OFFER_LEN: usize = 16 + 4 + 8;

/// What an attachment offer says: which attachment, and how long its sealed
/// file is. The receiver checks the length against what the signed message
/// lets it expect before it reads any content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttachmentOffer {
    pub message: uuid::Uuid,
    pub index: u32,
    pub sealed_len: u64,
}

impl AttachmentOffer {
    pub fn frame(&self) -> Frame {
        let mut p = Vec::with_capacity(OFFER_LEN);
        p.extend_from_slice(self.message.as_bytes());
        p.extend_from_slice(&self.index.to_be_bytes());
        p.extend_from_slice(&self.sealed_len.to_be_bytes());
        Frame::new(FrameKind::AttachmentOffer, p)
    }

    pub fn parse(frame: &Frame) -> Result<AttachmentOffer, WireError> {
        let p = &frame.payload;
        if frame.kind != FrameKind::AttachmentOffer || p.len() != OFFER_LEN {
            return Err(WireError::Truncated);
        }
        let id: [u8; 16] = p[..16].try_into().map_err(|_| WireError::Truncated)?;
        let index: [u8; 4] = p[16..20].try_into().map_err(|_| WireError::Truncated)?;
        let len: [u8; 8] = p[20..].try_into().map_err(|_| WireError::Truncated)?;
        Ok(AttachmentOffer {
            message: uuid::Uuid::from_bytes(id),
            index: u32::from_be_bytes(index),
            sealed_len: u64::from_be_bytes(len),
        })
    }
}

/// The answer "send from `offset`".
pub fn resume_frame(offset: u64) -> Frame {
    Frame::new(FrameKind::AttachmentResume, offset.to_be_bytes().to_vec())
}

/// The offset in a resume answer.
pub fn resume_offset(frame: &Frame) -> Option<u64> {
    let b: [u8; 8] = frame.payload.as_slice().try_into().ok()?;
    (frame.kind == FrameKind::AttachmentResume).then(|| u64::from_be_bytes(b))
}

/// Checks a header: a known kind and a length within that kind's cap.
pub fn parse_header(header: [u8; HEADER_LEN]) -> Result<(FrameKind, usize), WireError> {
    let kind = FrameKind::from_byte(header[0]).ok_or(WireError::UnknownKind(header[0]))?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > kind.max_len() {
        return Err(WireError::TooLarge {
            kind,
            len,
            max: kind.max_len(),
        });
    }
    Ok((kind, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let f = Frame::new(FrameKind::Receipt, b"abc".to_vec());
        assert_eq!(Frame::decode(&f.encode()), Ok(f));
    }

    #[test]
    fn refuses_bad_frames() {
        assert_eq!(
            Frame::decode(&[99, 0, 0, 0, 0]),
            Err(WireError::UnknownKind(99))
        );
        assert!(matches!(
            Frame::decode(&[3, 0xff, 0, 0, 0]),
            Err(WireError::TooLarge { .. })
        ));
        assert_eq!(
            Frame::decode(&[3, 0, 0, 0, 4, 1]),
            Err(WireError::Truncated)
        );
        assert_eq!(Frame::decode(&[3, 0, 0, 0, 0, 1]), Err(WireError::Trailing));
        assert_eq!(Frame::decode(&[3, 0]), Err(WireError::Truncated));
    }

    #[test]
    fn attachment_frames_round_trip() {
        let offer = AttachmentOffer {
            message: uuid::Uuid::now_v7(),
            index: 3,
            sealed_len: 1 << 40,
        };
        let decoded = Frame::decode(&offer.frame().encode()).expect("decodes");
        assert_eq!(AttachmentOffer::parse(&decoded), Ok(offer));
        assert_eq!(resume_offset(&resume_frame(77)), Some(77));
        assert!(
            AttachmentOffer::parse(&Frame::new(FrameKind::AttachmentOffer, vec![0; 5])).is_err()
        );
        assert!(matches!(
            Frame::decode(&[10, 0, 0, 0, 9]),
            Err(WireError::TooLarge { .. })
        ));
    }
}
