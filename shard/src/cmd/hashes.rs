//! Placeholder: filled in by the hashes command family.

use super::Handler;

pub(super) fn handler(_name: &str) -> Option<Handler> {
    None
}
