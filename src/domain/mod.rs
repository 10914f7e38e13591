//! Plain data of the link: names, precedence, date-time groups, durations,
//! coordinates and the message itself. Nothing here does I/O.

mod coordinates;
mod dtg;
mod duration;
mod language;
mod message;
mod names;
mod precedence;
mod size;

pub use coordinates::Coordinates;
pub use dtg::{Dtg, parse_datetime, stamp};
pub use duration::{format_duration, parse_duration};
pub use language::{Language, UnknownLanguage};
pub use message::{AttachmentRef, Message, MessageId, Original, TemplateRef};
pub use names::{NameError, OperatorName, StationName};
pub use precedence::{Precedence, UnknownPrecedence};
pub use size::{BadSize, format_size, parse_size};

/// The protocol version written into every signed object.
pub const PROTOCOL: &str = "hotline/1";
