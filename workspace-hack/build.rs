// Present so that the `[build-dependencies]` in Cargo.toml (syn with the union of the features
// the proc macros ask for) take part in feature resolution.
fn main() {}
