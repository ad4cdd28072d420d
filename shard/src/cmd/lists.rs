//! Placeholder: filled in by the lists command family.

use super::Handler;

pub(super) fn handler(_name: &str) -> Option<Handler> {
    None
}
