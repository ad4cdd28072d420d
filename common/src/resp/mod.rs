//! RESP framing: the incremental request scanner, the reply writer, and the reply scanner the proxy
//! uses to frame shard replies.

mod reply;
mod reply_scanner;
mod scanner;

pub use reply::{encode_request, format_double, ReplyWriter};
pub use reply_scanner::{ReplyScanner, ReplyValue};
pub use scanner::{Limits, ProtocolError, Request, RequestScanner};
