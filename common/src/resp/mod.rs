//! RESP framing: the incremental request scanner and the reply writer.

mod reply;
mod scanner;

pub use reply::{format_double, ReplyWriter};
pub use scanner::{Limits, ProtocolError, Request, RequestScanner};
