//! hyper's own answers to requests it cannot parse, rewritten into the API's error shape.
//!
//! hyper refuses a request head it cannot parse before our service ever sees it: a raw
//! space, `"`, `<`, `>`, `{`, `|` or non-ASCII byte in the request target, a malformed
//! header, a head over `max_header_bytes`. It answers those by itself with a bare `400`,
//! `414` or `431` (`content-length: 0`, no body) and closes the connection. hyper 1.x
//! offers no hook for these answers (no callback, no way to give them a body), yet the API
//! promises that every error is `{"error": {"code", "message"}}`.
//!
//! So [`ParseErrors`] sits between hyper and the socket and recognises such an answer on
//! its way out: a head, at the very end of what hyper writes, whose status is 400, 414 or
//! 431 and whose only headers are `content-length: 0`, `date` and `connection`. Our own
//! answers never look like that: every error of ours carries a JSON body and a
//! `content-type`. It replaces the head with the same status, the JSON error body (code
//! and message from [`ApiError`]) and its length.
//!
//! Why the answer is always found whole: hyper writes an answer's head into its head
//! buffer, and only when no body bytes are queued behind it (`can_headers_buf`); a bare
//! answer has no body, and hyper writes nothing after it (it closes the connection). So a
//! bare answer is always at the end of a write that is one slice (the head buffer, which
//! may begin with the tail of an earlier, pipelined response: passed on unchanged), and
//! such a write is searched; a vectored write of several slices is a head followed by its
//! body and goes to the socket as it is. The wrapper is vectored when the socket is, so
//! hyper queues bodies instead of copying them into its buffer (a tenth of a busy live
//! tail's cost was that copy).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::ApiError;
use crate::http::JSON;

/// hyper's limit on the request target (`MAX_URI_LEN` in hyper's h1 parser), past which it
/// answers 414.
const MAX_TARGET_BYTES: usize = u16::MAX as usize - 1;

/// hyper's default cap on the number of header fields, past which it answers 431.
const MAX_HEADER_FIELDS: usize = 100;

/// Longest bare answer searched for: a status line, `content-length`, `date` and
/// `connection`, with room to spare.
const MAX_BARE_ANSWER: usize = 512;

/// A connection's IO whose write side turns hyper's bare parse-error answers into JSON
/// errors. Reads pass through untouched.
pub struct ParseErrors<S> {
    inner: S,
    /// For the 431 message: the configured limit on a request head.
    max_header_bytes: usize,
    /// A rewritten answer already reported to hyper as written, still to be sent.
    queued: Vec<u8>,
    /// How much of `queued` the socket has taken.
    sent: usize,
}

impl<S> ParseErrors<S> {
    pub fn new(inner: S, max_header_bytes: usize) -> ParseErrors<S> {
        ParseErrors {
            inner,
            max_header_bytes,
            queued: Vec::new(),
            sent: 0,
        }
    }
}

impl<S: AsyncWrite + Unpin> ParseErrors<S> {
    /// Sends what is queued; ready once all of it is written.
    fn poll_send_queued(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.queued.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.queued[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.queued.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ParseErrors<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ParseErrors<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Bytes already promised go out before anything new.
        ready!(this.poll_send_queued(cx))?;
        let Some(answer) = rewrite(buf, this.max_header_bytes) else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        // The whole of `buf` now lives in `queued`: report it consumed, and start sending.
        // A socket that is not ready yet is fine, hyper flushes (or shuts down) next, and
        // both finish sending `queued` first.
        this.queued = answer;
        this.sent = 0;
        if let Poll::Ready(Err(e)) = this.poll_send_queued(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send_queued(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_send_queued(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut slices = bufs.iter().filter(|b| !b.is_empty());
        match (slices.next(), slices.next()) {
            // One slice: the head buffer alone, where a bare answer would be.
            (Some(one), None) => self.poll_write(cx, one),
            // A head and its body (or nothing): never one of hyper's bare answers.
            _ => {
                let this = &mut *self;
                ready!(this.poll_send_queued(cx))?;
                Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// If `buf` ends with one of hyper's bare parse-error answers, `buf` with that answer
/// replaced by a JSON error; otherwise `None`.
fn rewrite(buf: &[u8], max_header_bytes: usize) -> Option<Vec<u8>> {
    let head_end = buf.len().checked_sub(4)?;
    if &buf[head_end..] != b"\r\n\r\n" {
        return None;
    }
    // The answer starts at the last status line; nothing but its own headers follows it.
    // hyper's bare answers are under 200 bytes, so only the tail of `buf` is searched.
    let from = head_end.saturating_sub(MAX_BARE_ANSWER);
    let start = from + find_last(&buf[from..head_end], b"HTTP/1.")?;
    let head = std::str::from_utf8(&buf[start..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line.get(9..12)?.parse().ok()?;
    if status_line.as_bytes().get(12) != Some(&b' ') {
        return None;
    }
    let error = match status {
        400 => ApiError::InvalidQuery(
            "the request line or a header is not valid HTTP/1.1: percent-encode characters \
             such as space, \", <, >, {, |, } and non-ASCII bytes in the path and query string"
                .into(),
        ),
        414 => ApiError::PayloadTooLarge(format!(
            "the request target (path and query string) is over the limit of \
             {MAX_TARGET_BYTES} bytes"
        )),
        // hyper answers 431 both for too many bytes and for too many header fields.
        431 => ApiError::PayloadTooLarge(format!(
            "the request head (request line and headers) is over the limit of \
             {max_header_bytes} bytes or {MAX_HEADER_FIELDS} header fields"
        )),
        _ => return None,
    };
    let mut kept = Vec::new();
    let mut empty_body = false;
    let mut closes = false;
    for line in lines {
        let (name, value) = line.split_once(": ")?;
        match name {
            "content-length" if value == "0" => empty_body = true,
            "date" => kept.push(line),
            "connection" => {
                closes |= value.eq_ignore_ascii_case("close");
                kept.push(line);
            }
            // Any other header (a content-type above all) means the answer is not hyper's.
            _ => return None,
        }
    }
    if !empty_body {
        return None;
    }
    let body = serde_json::to_vec(&error.body()).ok()?;
    // Every answer carries a request id and the server's trace context, this one too: a
    // fresh trace (the request never reached a handler, so no client context was read).
    let trace = crate::trace::begin(&tracing::Span::none(), None);
    let request_id = &trace.trace_id[..24];
    let mut out = Vec::with_capacity(start + head.len() + 256 + body.len());
    out.extend_from_slice(&buf[..start]);
    out.extend_from_slice(status_line.as_bytes());
    out.extend_from_slice(format!("\r\ncontent-type: {JSON}\r\n").as_bytes());
    out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    out.extend_from_slice(format!("x-request-id: {request_id}\r\n").as_bytes());
    out.extend_from_slice(format!("traceparent: {}\r\n", trace.traceparent).as_bytes());
    for line in kept {
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    // hyper closes the connection after such an answer; say so.
    if !closes {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&body);
    Some(out)
}

fn find_last(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use tokio::io::AsyncWriteExt;

    const DATE: &str = "date: Sun, 22 Nov 2026 12:00:00 GMT";

    fn bare(status: &str) -> Vec<u8> {
        format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n{DATE}\r\n\r\n").into_bytes()
    }

    /// Splits an answer into its head and its body, checking the body's length.
    fn parts(answer: &[u8]) -> (String, Value) {
        let at = find_last(answer, b"\r\n\r\n").expect("a head") + 4;
        let head = String::from_utf8(answer[..at].to_vec()).unwrap();
        let body = &answer[at..];
        assert!(
            head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{head}"
        );
        (head, serde_json::from_slice(body).expect("a JSON body"))
    }

    /// An answer without its request id and trace context, which are new in every rewrite.
    fn without_ids(answer: &[u8]) -> String {
        String::from_utf8_lossy(answer)
            .split("\r\n")
            .filter(|l| !l.starts_with("x-request-id: ") && !l.starts_with("traceparent: "))
            .collect::<Vec<_>>()
            .join("\r\n")
    }

    #[test]
    fn a_bare_400_becomes_an_invalid_query_error() {
        let out = rewrite(&bare("400 Bad Request"), 16384).expect("rewritten");
        let (head, body) = parts(&out);
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(
            head.contains(&format!("\r\ncontent-type: {JSON}\r\n")),
            "{head}"
        );
        assert!(head.contains(&format!("\r\n{DATE}\r\n")), "{head}");
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        // Like every answer: a request id and the server's trace context.
        assert!(head.contains("\r\nx-request-id: "), "{head}");
        assert!(head.contains("\r\ntraceparent: 00-"), "{head}");
        assert_eq!(body["error"]["code"], "invalid_query");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("percent-encode"));
    }

    #[test]
    fn hypers_own_connection_header_is_kept_once() {
        // What hyper 1.x writes, byte for byte, for an unparsable request line.
        let bare = format!(
            "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n{DATE}\r\n\r\n"
        );
        let out = rewrite(bare.as_bytes(), 16384).expect("rewritten");
        let (head, body) = parts(&out);
        assert_eq!(head.matches("connection: close").count(), 1, "{head}");
        assert_eq!(head.matches("content-length").count(), 1, "{head}");
        assert_eq!(body["error"]["code"], "invalid_query");
    }

    #[test]
    fn a_bare_431_names_the_limit() {
        let out = rewrite(&bare("431 Request Header Fields Too Large"), 16384).unwrap();
        let (head, body) = parts(&out);
        assert!(head.starts_with("HTTP/1.1 431 "), "{head}");
        assert_eq!(body["error"]["code"], "payload_too_large");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("16384 bytes"));
        let out = rewrite(&bare("414 URI Too Long"), 16384).unwrap();
        assert_eq!(parts(&out).1["error"]["code"], "payload_too_large");
    }

    #[test]
    fn the_tail_of_an_earlier_answer_is_kept() {
        let earlier = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec();
        let mut buf = earlier.clone();
        buf.extend_from_slice(&bare("400 Bad Request"));
        let out = rewrite(&buf, 16384).unwrap();
        assert!(out.starts_with(&earlier));
        assert_eq!(
            parts(&out[earlier.len()..]).1["error"]["code"],
            "invalid_query"
        );
    }

    #[test]
    fn our_own_answers_pass_untouched() {
        for answer in [
            // Our errors always have a body and a content-type.
            format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: {JSON}\r\ncontent-length: 2\r\n\r\n{{}}"
            ),
            format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: {JSON}\r\ncontent-length: 0\r\n\
                 {DATE}\r\n\r\n"
            ),
            // hyper's own headers, in the order it writes them, and one more.
            format!(
                "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\
                 {DATE}\r\nx-request-id: 1\r\n\r\n"
            ),
            format!("HTTP/1.1 204 No Content\r\n{DATE}\r\n\r\n"),
            format!("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n{DATE}\r\n\r\n"),
            format!("HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n{DATE}\r\n\r\n"),
            // A head still being written (no blank line yet).
            "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n".to_owned(),
            String::new(),
        ] {
            assert_eq!(rewrite(answer.as_bytes(), 16384), None, "{answer:?}");
        }
    }

    /// A socket that takes at most 5 bytes a call and is not ready every other call.
    #[derive(Default)]
    struct Trickle {
        out: Vec<u8>,
        calls: usize,
        flushed: bool,
        shut: bool,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.calls += 1;
            if self.calls % 2 == 1 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            let n = buf.len().min(5);
            self.out.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.flushed = true;
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            self.shut = true;
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_rewritten_answer_is_sent_whole_through_short_writes() {
        let earlier = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}".to_vec();
        let mut buf = earlier.clone();
        buf.extend_from_slice(&bare("400 Bad Request"));
        let expected = rewrite(&buf, 16384).unwrap();

        // As hyper does: write what it has, flush, shut down.
        let mut w = ParseErrors::new(Trickle::default(), 16384);
        w.write_all(&earlier[..10]).await.unwrap();
        w.write_all(&buf[10..]).await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(without_ids(&w.inner.out), without_ids(&expected));
        assert!(w.inner.flushed);

        // Only a shutdown after the write: the answer still goes out first.
        let mut w = ParseErrors::new(Trickle::default(), 16384);
        w.write_all(&buf).await.unwrap();
        w.shutdown().await.unwrap();
        assert_eq!(without_ids(&w.inner.out), without_ids(&expected));
        assert!(w.inner.shut);
    }

    #[tokio::test]
    async fn ordinary_bytes_pass_through() {
        let mut w = ParseErrors::new(Trickle::default(), 16384);
        let answer = format!("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n{DATE}\r\n\r\n");
        w.write_all(answer.as_bytes()).await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(w.inner.out, answer.as_bytes());
    }

    /// Written as hyper writes when the socket is vectored: a bare answer alone in one
    /// slice is rewritten; a head and its body in several slices pass as they are.
    #[tokio::test]
    async fn vectored_writes_rewrite_a_lone_head_and_pass_a_head_with_its_body() {
        use tokio::io::AsyncWriteExt as _;
        let head = bare("400 Bad Request");
        let expected = rewrite(&head, 16384).unwrap();
        let mut w = ParseErrors::new(Vec::<u8>::new(), 16384);
        let n = w
            .write_vectored(&[IoSlice::new(&[]), IoSlice::new(&head)])
            .await
            .unwrap();
        assert_eq!(n, head.len());
        w.flush().await.unwrap();
        assert_eq!(without_ids(&w.inner), without_ids(&expected));

        let mut w = ParseErrors::new(Vec::<u8>::new(), 16384);
        let ok = format!("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n{DATE}\r\n\r\n");
        let n = w
            .write_vectored(&[IoSlice::new(ok.as_bytes()), IoSlice::new(b"{}")])
            .await
            .unwrap();
        assert_eq!(n, ok.len() + 2);
        assert_eq!(w.inner, [ok.as_bytes(), b"{}"].concat());
    }
}
