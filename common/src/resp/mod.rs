//! RESP framing: the incremental request scanner, the protocol-aware reply writer (RESP2 and RESP3), and
//! the reply scanner the proxy uses to frame shard replies.

mod reply;
mod reply_scanner;
mod scanner;

pub use reply::{encode_request, format_double, Protocol, ReplyBuf, ReplyWriter};
pub use reply_scanner::{is_push, ReplyScanner, ReplyValue};
pub use scanner::{Limits, ProtocolError, Request, RequestScanner};
