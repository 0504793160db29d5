//! The fuzz smoke that `cargo test --workspace` runs on the stable toolchain: every target's
//! body over its committed corpus (`fuzz/corpus/<target>/`), then over random mutations of
//! that corpus for a few seconds. No coverage feedback and no sanitizer: that is the long
//! run, `fuzz/run.sh` with nightly and libFuzzer. What this catches is a change that breaks
//! an invariant on an input the fuzzer once found interesting, or a step away from one.
//!
//! `LEDGER_FUZZ_SMOKE_SECONDS` (default 3) bounds the mutation phase of each target and
//! `LEDGER_FUZZ_SMOKE_SEED` picks its mutations. A failing input is written to
//! `fuzz/artifacts/<target>/smoke-<hash>` and the panic names it; replay it with
//! `cargo +nightly fuzz run <target> <file>` in `fuzz/`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The replay of a corpus stops here; the slow HTTP target (one round trip per input, each
/// waiting for the server to go quiet) would otherwise take minutes.
const REPLAY_BUDGET: Duration = Duration::from_secs(20);
/// Mutated inputs grow to at most this many bytes.
const MAX_LEN: usize = 256 << 10;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn seconds() -> f64 {
    std::env::var("LEDGER_FUZZ_SMOKE_SECONDS")
        .ok()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|_| panic!("LEDGER_FUZZ_SMOKE_SECONDS={s:?} is not a number"))
        })
        .unwrap_or(3.0)
}

/// The committed corpus, in name order.
fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = root().join("corpus").join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "the corpus of {target} at {} is missing: {e}",
                dir.display()
            )
        })
        .map(|e| e.expect("a corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let inputs: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect();
    assert!(!inputs.is_empty(), "the corpus of {target} is empty");
    inputs
}

/// xorshift64*: the mutations are reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that often sit on a boundary of a length, a count or a character class.
const INTERESTING: &[u8] = &[
    0, 1, 0x7f, 0x80, 0xff, b'"', b'\\', b'{', b'}', b'[', b']', b'\n', b':', b',',
];

/// One to four of libFuzzer's simpler mutations, with `other` as the splice partner.
fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut d = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(7) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = rng.next() as u8;
            }
            2 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            3 => {
                let i = rng.below(d.len() + 1);
                let n = 1 + rng.below(8);
                for _ in 0..n {
                    d.insert(i, rng.next() as u8);
                }
            }
            4 if !d.is_empty() => {
                let i = rng.below(d.len());
                let n = 1 + rng.below((d.len() - i).min(64));
                d.drain(i..i + n);
            }
            5 if !d.is_empty() => {
                // Repeat a span: counts and nesting grow.
                let i = rng.below(d.len());
                let n = 1 + rng.below((d.len() - i).min(256));
                let span = d[i..i + n].to_vec();
                let at = rng.below(d.len() + 1);
                d.splice(at..at, span);
            }
            _ if !other.is_empty() => {
                // Splice: a head of this input, a tail of the other.
                let cut = rng.below(d.len() + 1);
                let from = rng.below(other.len());
                d.truncate(cut);
                d.extend_from_slice(&other[from..]);
            }
            _ => {}
        }
    }
    d.truncate(MAX_LEN);
    d
}

/// Runs `body` on `input`; a panic saves the input and fails naming it.
fn check(target: &str, body: fn(&[u8]), input: &[u8], what: &str) {
    if std::panic::catch_unwind(|| body(input)).is_ok() {
        return;
    }
    let dir = root().join("artifacts").join(target);
    std::fs::create_dir_all(&dir).expect("create the artifacts directory");
    let file = dir.join(format!("smoke-{}", &blake3::hash(input).to_hex()[..16]));
    std::fs::write(&file, input).expect("save the failing input");
    panic!(
        "{target} broke an invariant on {what}; the input is in {} \
         (replay: cd fuzz && cargo +nightly fuzz run {target} {})",
        file.display(),
        file.display()
    );
}

fn smoke(target: &str) {
    let body = ledger_fuzz_targets::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .unwrap_or_else(|| panic!("no target named {target}"))
        .1;
    let inputs = corpus(target);

    let start = Instant::now();
    let mut replayed = 0;
    for (i, input) in inputs.iter().enumerate() {
        if start.elapsed() > REPLAY_BUDGET {
            break;
        }
        check(target, body, input, &format!("corpus input #{i}"));
        replayed += 1;
    }

    let seed = std::env::var("LEDGER_FUZZ_SMOKE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_F022_u64)
        ^ blake3::hash(target.as_bytes()).as_bytes()[0] as u64;
    let mut rng = Rng(seed | 1);
    let until = Instant::now() + Duration::from_secs_f64(seconds());
    let mut mutated = 0u64;
    while Instant::now() < until {
        let a = &inputs[rng.below(inputs.len())];
        let b = &inputs[rng.below(inputs.len())];
        let input = mutate(&mut rng, a, b);
        check(
            target,
            body,
            &input,
            &format!("mutation #{mutated} (seed {seed})"),
        );
        mutated += 1;
    }
    eprintln!(
        "{target}: {replayed} of {} corpus inputs replayed, {mutated} mutations, {:.1} s",
        inputs.len(),
        start.elapsed().as_secs_f64()
    );
    assert!(replayed > 0 && mutated > 0, "{target} ran nothing");
}

macro_rules! smoke_tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                smoke(stringify!($name));
            }
        )*

        /// Every target in the library has a smoke test here.
        #[test]
        fn every_target_is_smoked() {
            let here = [$(stringify!($name)),*];
            for (name, _) in ledger_fuzz_targets::TARGETS {
                assert!(here.contains(name), "{name} has no smoke test");
            }
        }
    };
}

smoke_tests!(
    wal_frames,
    segment_reader,
    search_query,
    ingest_json,
    http_request,
    query_string,
    otlp_request,
    es_bulk,
    loki_push,
);
