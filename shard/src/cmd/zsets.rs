//! Placeholder: filled in by the zsets command family.

use super::Handler;

pub(super) fn handler(_name: &str) -> Option<Handler> {
    None
}
