//! Differential tests: our incremental scanner against the `redis-protocol` crate as the oracle.
#![allow(clippy::unwrap_used)]

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use redis_protocol::resp2::decode::decode_bytes_mut;
use redis_protocol::resp2::encode::extend_encode;
use redis_protocol::resp2::types::BytesFrame;
use ringcache_common::resp::{Limits, RequestScanner};

fn encode_command(args: &[Vec<u8>], out: &mut BytesMut) {
    let frame = BytesFrame::Array(args.iter().map(|a| BytesFrame::BulkString(Bytes::from(a.clone()))).collect());
    extend_encode(out, &frame, false).unwrap();
}

/// Decodes `wire` with redis-protocol into argument lists (arrays of bulk strings only).
fn oracle(wire: &[u8]) -> Vec<Vec<Vec<u8>>> {
    let mut buf = BytesMut::from(wire);
    let mut out = Vec::new();
    while let Some((frame, _, _)) = decode_bytes_mut(&mut buf).unwrap() {
        match frame {
            BytesFrame::Array(items) => out.push(
                items
                    .into_iter()
                    .map(|f| match f {
                        BytesFrame::BulkString(b) => b.to_vec(),
                        other => panic!("unexpected element {other:?}"),
                    })
                    .collect(),
            ),
            other => panic!("unexpected frame {other:?}"),
        }
    }
    out
}

/// Feeds `wire` to our scanner in pieces cut at `cuts`, collecting every request.
fn ours(wire: &[u8], cuts: &[usize]) -> Vec<Vec<Vec<u8>>> {
    let mut scanner = RequestScanner::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut points: Vec<usize> = cuts.iter().map(|&c| c % (wire.len() + 1)).collect();
    points.push(wire.len());
    points.sort_unstable();
    let mut from = 0;
    for to in points {
        buf.extend_from_slice(&wire[from..to]);
        from = to;
        while let Some(req) = scanner.next(&mut buf, &Limits::DEFAULT).unwrap() {
            out.push(req.args_from(0).map(<[u8]>::to_vec).collect());
        }
    }
    assert!(buf.is_empty() && !scanner.in_request());
    out
}

fn command() -> impl Strategy<Value = Vec<Vec<u8>>> {
    proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Any sequence of commands, encoded by redis-protocol and delivered in arbitrary pieces, scans to
    /// exactly what redis-protocol decodes.
    #[test]
    fn same_requests_as_redis_protocol(
        commands in proptest::collection::vec(command(), 1..10),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut wire = BytesMut::new();
        for c in &commands {
            encode_command(c, &mut wire);
        }
        let expected = oracle(&wire);
        prop_assert_eq!(&expected, &commands);
        prop_assert_eq!(ours(&wire, &cuts), expected);
    }

    /// Arbitrary bytes never panic the scanner; whenever it accepts an array request, redis-protocol
    /// decodes the same arguments from the same bytes.
    #[test]
    fn garbage_never_panics_and_accepted_frames_agree(
        body in proptest::collection::vec(prop_oneof![
            Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'), Just(b'1'), Just(b'2'), Just(b'-'), any::<u8>()
        ], 0..80),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut wire = b"*".to_vec();
        wire.extend_from_slice(&body);
        let mut scanner = RequestScanner::new();
        let mut buf = BytesMut::new();
        let mut points: Vec<usize> = cuts.iter().map(|&c| c % (wire.len() + 1)).collect();
        points.push(wire.len());
        points.sort_unstable();
        let mut from = 0;
        let mut consumed = 0;
        'outer: for to in points {
            buf.extend_from_slice(&wire[from..to]);
            from = to;
            loop {
                let before = buf.len();
                match scanner.next(&mut buf, &Limits::DEFAULT) {
                    Ok(Some(req)) => {
                        let start = consumed;
                        consumed += before - buf.len();
                        if wire[start] == b'*' {
                            let mut oracle_buf = BytesMut::from(&wire[start..]);
                            if let Ok(Some((BytesFrame::Array(items), len, _))) = decode_bytes_mut(&mut oracle_buf) {
                                let theirs: Vec<Vec<u8>> = items.into_iter().map(|f| match f {
                                    BytesFrame::BulkString(b) => b.to_vec(),
                                    _ => Vec::new(),
                                }).collect();
                                let mine: Vec<Vec<u8>> = req.args_from(0).map(<[u8]>::to_vec).collect();
                                prop_assert_eq!(mine, theirs);
                                prop_assert_eq!(len, req.raw().unwrap().len());
                            }
                        }
                    }
                    Ok(None) => break,
                    Err(_) => break 'outer,
                }
            }
        }
    }
}

/// Everything a scanner makes of `wire` delivered in pieces of `piece_len` bytes: each request's arguments,
/// then the error that stopped it (if any), and the bytes it examined. `one_pass`: with the one-pass path
/// for whole requests (`next`), or the general scanner alone (`next_step_by_step`).
fn scan_in_pieces(
    wire: &[u8],
    piece_len: usize,
    limits: &Limits,
    one_pass: bool,
) -> (Vec<Vec<Vec<u8>>>, Option<String>, u64) {
    let mut scanner = RequestScanner::new();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for piece in wire.chunks(piece_len.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            let next =
                if one_pass { scanner.next(&mut buf, limits) } else { scanner.next_step_by_step(&mut buf, limits) };
            match next {
                Ok(Some(req)) => out.push(req.args_from(0).map(<[u8]>::to_vec).collect()),
                Ok(None) => break,
                Err(e) => return (out, Some(e.to_string()), scanner.examined_bytes()),
            }
        }
    }
    (out, None, scanner.examined_bytes())
}

fn limits_variant() -> impl Strategy<Value = Limits> {
    prop_oneof![
        Just(Limits::DEFAULT),
        Just(Limits::DEFAULT.unauthenticated()),
        // Line limits below, at and above what the one-pass scan handles itself.
        (0usize..6, 0usize..4, prop_oneof![1usize..5, 17usize..22, Just(64 * 1024)]).prop_map(
            |(bulk, count, inline)| Limits {
                max_bulk_len: bulk,
                max_multibulk_len: count,
                max_inline_len: inline,
                unauthenticated: false,
            }
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    /// The one-pass path for a whole request in the buffer and the general scanner agree on every input,
    /// whole or arriving a byte at a time: the same requests, the same protocol error, the same count of
    /// examined bytes; under every kind of limit.
    #[test]
    fn one_pass_and_step_by_step_agree(
        commands in proptest::collection::vec(command(), 1..6),
        noise in proptest::collection::vec((any::<usize>(), prop_oneof![
            Just(b'*'), Just(b'$'), Just(b'\r'), Just(b'\n'), Just(b'0'), Just(b'9'), Just(b'-'), Just(b' '), any::<u8>()
        ]), 0..4),
        limits in limits_variant(),
        piece_len in prop_oneof![Just(usize::MAX), 1usize..8],
    ) {
        let mut wire = BytesMut::new();
        for c in &commands {
            encode_command(c, &mut wire);
        }
        let mut wire = wire.to_vec();
        for (at, byte) in noise {
            let at = at % wire.len();
            wire[at] = byte;
        }
        let one_pass = scan_in_pieces(&wire, piece_len, &limits, true);
        let step_by_step = scan_in_pieces(&wire, piece_len, &limits, false);
        prop_assert_eq!(&one_pass, &step_by_step);
        if one_pass.1.is_none() && limits == Limits::DEFAULT && noise_free(&wire, &commands) {
            prop_assert_eq!(&one_pass.0, &commands);
        }
    }
}

/// Whether `wire` is still exactly the encoding of `commands` (the noise may have hit nothing).
fn noise_free(wire: &[u8], commands: &[Vec<Vec<u8>>]) -> bool {
    let mut encoded = BytesMut::new();
    for c in commands {
        encode_command(c, &mut encoded);
    }
    encoded[..] == *wire
}

#[test]
fn a_4mb_mset_in_16kb_reads_is_parsed_once() {
    // Correct in pieces ...
    let mut args = vec![b"MSET".to_vec()];
    for i in 0..64 {
        args.push(format!("key{i}").into_bytes());
        args.push(vec![b'x'; 64 * 1024]);
    }
    let mut wire = BytesMut::new();
    encode_command(&args, &mut wire);
    let cuts: Vec<usize> = (1..wire.len() / (16 * 1024)).map(|k| k * 16 * 1024).collect();
    assert_eq!(ours(&wire, &cuts), vec![args.clone()]);
    // ... and each byte of framing is looked at once while payload bytes are not looked at at all.
    let mut scanner = RequestScanner::new();
    let mut buf = BytesMut::new();
    let mut got = None;
    for chunk in wire.chunks(16 * 1024) {
        buf.extend_from_slice(chunk);
        if let Some(r) = scanner.next(&mut buf, &Limits::DEFAULT).unwrap() {
            got = Some(r);
        }
    }
    assert_eq!(got.unwrap().argc(), args.len());
    let framing_bytes = wire.len() - args.iter().map(Vec::len).sum::<usize>();
    assert!(
        scanner.examined_bytes() <= framing_bytes as u64,
        "examined {} bytes of {} (framing {framing_bytes})",
        scanner.examined_bytes(),
        wire.len()
    );
}
