//! (crate body arrives with its issue)
