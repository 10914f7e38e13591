//! Plain data of the link: names, precedence, date-time groups, durations,
//! coordinates and the message itself. Nothing here does I/O.

mod area;
mod coordinates;
mod dtg;
mod duration;
mod language;
mod message;
mod names;
mod precedence;
mod size;

pub use area::{Area, AreaProblem, BadArea, RadiusUnit};
pub use coordinates::{BadCoordinates, Coordinates};
pub use dtg::{BadDateTime, Dtg, parse_datetime, stamp};
pub use duration::{BadDuration, format_duration, parse_duration};
pub use language::{Language, UnknownLanguage};
pub use message::{AttachmentRef, Message, MessageId, Original, TemplateRef};
pub use names::{MAX_NAME, NameError, OperatorName, StationName};
pub use precedence::{Precedence, UnknownPrecedence};
pub use size::{BadSize, format_size, parse_size};

/// The protocol version written into every signed object.
pub const PROTOCOL: &str = "hotline/1";

/// The revision of the signed bodies this build writes, raised whenever a
/// signed body gains something a receiver must understand.
///
/// Every signed body carries it as `revision` (`#[serde(default)]`: a body
/// from before revisions has none and reads as revision 0, so old bodies
/// stay readable forever). A receiver reads the revision from the exact
/// verified bytes before it parses the body (see
/// [`crate::crypto::signed::Unverified::verify`]); a body newer than this
/// is refused with a reason that names both revisions, never parsed and
/// never half understood. A message so refused gets a signed refusal
/// `unsupported-revision`; a hello so refused keeps the link down.
///
/// 2: receipts of messages, and acknowledgements, name the SHA-256 of the
/// sealed message they answer.
/// 3: a message says which language its free text is in
/// (`text_language`), and carries a security marking (`label`).
/// 4: a hello says the highest of the receiver's serials the sender holds
/// (`your_serial`), which a station restored from a backup needs.
pub const REVISION: u32 = 4;
