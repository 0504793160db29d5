//! The WAL decoder on arbitrary bytes. Invariants: `scan_file` and `decode_batch` return
//! errors, never panic; every frame `scan_file` reports lies inside the file, in order;
//! a batch that decodes has the row count and sequence numbers its header promises and
//! survives a re-encode unchanged.
//!
//! Each input is tried three ways: as a whole WAL file (what recovery reads), as one batch
//! payload (so the fuzzer reaches the row decoder without forging a crc32c), and as a payload
//! wrapped in a valid header and frame (so the frame checksum always passes).
use ledger_engine::wal::format::{
    batch_payload, decode_batch, encode_body, file_header, peek_batch, put_frame, scan_file, Batch,
    BATCH_HEADER_LEN, HEADER_LEN, MAX_PAYLOAD,
};

fn check_batch(payload: &[u8]) {
    let Ok(b) = decode_batch(payload) else {
        return;
    };
    let (project, first_seq, count) = peek_batch(payload).expect("decoded, so the header reads");
    assert_eq!(b.project, project);
    assert_eq!(b.first_seq, first_seq);
    assert_eq!(
        b.records.len(),
        count as usize,
        "row count disagrees with the header"
    );
    for (i, r) in b.records.iter().enumerate() {
        assert_eq!(
            r.seq,
            first_seq + i as u64,
            "sequence numbers are not consecutive"
        );
    }
    // Decode → encode → decode is the identity on what decoded.
    for compress in [false, true] {
        let mut body = encode_body(&b.records, compress);
        body.usage_bytes = b.usage_bytes;
        let mut p = Vec::new();
        batch_payload(&mut p, b.project, b.first_seq, count, &body);
        let again: Batch = decode_batch(&p).expect("a re-encoded batch decodes");
        assert_eq!(again, b, "batch changed on re-encode (compress={compress})");
    }
}

/// Checks one input; panics on a broken invariant.
pub fn run(data: &[u8]) {
    // 1. A whole WAL file.
    if let Ok(scan) = scan_file(data) {
        let mut end = HEADER_LEN;
        for (offset, range) in &scan.frames {
            assert_eq!(*offset as usize, end, "frames are not contiguous");
            assert!(
                range.start <= range.end && range.end <= data.len(),
                "frame out of bounds"
            );
            end = range.end;
            check_batch(&data[range.clone()]);
        }
        if let Some(d) = &scan.damage {
            assert_eq!(
                d.offset as usize, end,
                "damage is not where the valid frames stop"
            );
            assert!((d.offset as usize) < data.len());
        } else {
            assert_eq!(end, data.len(), "undamaged file not scanned to its end");
        }
    }

    // 2. One batch payload, checksum bypassed.
    check_batch(data);

    // 3. The payload inside a well-formed file: exactly one frame, no damage.
    if (BATCH_HEADER_LEN..=MAX_PAYLOAD).contains(&data.len()) {
        let file_no = data.len() as u64;
        let mut f = file_header(file_no).to_vec();
        put_frame(&mut f, file_no, data);
        let scan = scan_file(&f).expect("a well-formed header parses");
        assert_eq!(scan.file_no, file_no);
        assert!(
            scan.damage.is_none(),
            "a well-formed frame reported as damage"
        );
        assert_eq!(scan.frames.len(), 1);
        assert_eq!(&f[scan.frames[0].1.clone()], data);
    }
}
