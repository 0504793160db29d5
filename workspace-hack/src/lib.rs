//! Empty: this crate exists for its `Cargo.toml`, which unifies the features of dependencies
//! shared by the workspace's binaries (see there).
