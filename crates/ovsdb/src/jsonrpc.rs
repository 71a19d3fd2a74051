//! JSON-RPC 1.0 framing on a byte stream: splits incoming bytes into whole JSON values
//! (partial reads, several messages per read, messages of tens of MB without rescanning),
//! and the three message kinds OVSDB exchanges (request, response, notification).
//!
//! [`Framer`] remembers how far it has scanned (and whether it stopped inside a string or
//! after a backslash), so each byte is looked at once however the stream is cut. A complete
//! frame is handed to `serde_json` as one slice. Does no I/O of its own: the connection task
//! feeds it what it reads.
//!
//! Must not know: OVSDB methods beyond the shape of JSON-RPC messages.

use bytes::{Buf, BytesMut};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::{Error, Result};

/// Splits a byte stream into top-level JSON objects or arrays.
///
/// Feed bytes with [`Framer::buffer_mut`] (or [`Framer::extend`]), then call
/// [`Framer::next_frame`] until it returns `Ok(None)`.
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    /// Bytes of `buf` already scanned as part of the current (incomplete) frame.
    scanned: usize,
    /// Nesting depth of `{`/`[` inside the current frame; 0 before it starts.
    depth: usize,
    in_string: bool,
    escaped: bool,
    /// The largest frame accepted ([`MAX_FRAME_BYTES`] unless set).
    max_frame: usize,
}

/// What a frame may not exceed: far above anything ovsdb-server sends (its initial dumps of
/// large databases are tens of MB), low enough that a garbage stream cannot eat all memory.
pub const MAX_FRAME_BYTES: usize = 1 << 30;

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

impl Framer {
    pub fn new() -> Self {
        Framer::with_capacity(64 * 1024)
    }
    pub fn with_capacity(capacity: usize) -> Self {
        Framer {
            buf: BytesMut::with_capacity(capacity),
            scanned: 0,
            depth: 0,
            in_string: false,
            escaped: false,
            max_frame: MAX_FRAME_BYTES,
        }
    }
    /// Refuses frames longer than `bytes` (the stream is unusable after that error).
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }
    /// Appends bytes read from the stream.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }
    /// The buffer to read into (e.g. with `AsyncReadExt::read_buf`).
    pub fn buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.buf
    }
    /// Bytes received but not yet returned as a frame (whitespace included).
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }
    /// Whether a frame has started but not ended (an EOF now would cut a message).
    pub fn in_frame(&self) -> bool {
        self.depth > 0
    }
    /// Moves the bytes not yet returned into a fresh buffer of `capacity` (or their size, if
    /// larger), releasing the one a big message grew; the scan state is kept.
    pub fn shrink_to(&mut self, capacity: usize) {
        let mut fresh = BytesMut::with_capacity(capacity.max(self.buf.len()));
        fresh.extend_from_slice(&self.buf);
        self.buf = fresh;
    }

    /// The unread bytes, if the next frame has not been scanned at all yet (whitespace before
    /// it is dropped): for a caller that recognises a frame itself and then [`Framer::skip`]s
    /// it. `None` inside a partly scanned frame or when nothing is buffered.
    pub(crate) fn frame_start(&mut self) -> Option<&[u8]> {
        if self.depth != 0 {
            return None;
        }
        let ws = self.buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
        self.buf.advance(ws);
        self.scanned = 0;
        (!self.buf.is_empty()).then_some(&self.buf[..])
    }

    /// Drops the first `len` bytes of what [`Framer::frame_start`] returned: a whole frame.
    pub(crate) fn skip(&mut self, len: usize) {
        debug_assert!(self.depth == 0 && self.scanned == 0);
        self.buf.advance(len.min(self.buf.len()));
    }

    /// The next complete top-level JSON value, if the buffer holds one. Garbage (anything but
    /// whitespace, `{` or `[` between values, or an unbalanced closing bracket) is an error;
    /// the framer cannot resynchronise after it and the connection should be dropped.
    pub fn next_frame(&mut self) -> Result<Option<BytesMut>> {
        if self.depth == 0 {
            // Skip whitespace between values so it never accumulates.
            let ws = self.buf.iter().take_while(|b| b.is_ascii_whitespace()).count();
            self.buf.advance(ws);
            self.scanned = 0;
            match self.buf.first() {
                None => return Ok(None),
                Some(b'{' | b'[') => {}
                Some(&b) => {
                    return Err(Error::Decode(format!(
                        "JSON-RPC stream: expected '{{' or '[' to start a message, got {:?}",
                        char::from(b)
                    )))
                }
            }
        }
        // The scan state lives in locals while scanning (written back only when the frame is
        // incomplete): this loop is what framing costs.
        let bytes = &self.buf[..];
        let (mut i, mut depth, mut in_string, mut escaped) = (self.scanned, self.depth, self.in_string, self.escaped);
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            if in_string {
                if escaped {
                    escaped = false;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    in_string = false;
                } else {
                    // Skip to the next byte that can end or escape the string.
                    i += quote_or_backslash(&bytes[i..]).unwrap_or(bytes.len() - i);
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    if depth == 0 {
                        return Err(Error::Decode("JSON-RPC stream: unbalanced closing bracket".into()));
                    }
                    depth -= 1;
                    if depth == 0 {
                        let frame = self.buf.split_to(i);
                        (self.scanned, self.depth, self.in_string, self.escaped) = (0, 0, false, false);
                        return Ok(Some(frame));
                    }
                }
                _ => {}
            }
        }
        (self.scanned, self.depth, self.in_string, self.escaped) = (i, depth, in_string, escaped);
        if self.scanned > self.max_frame {
            return Err(Error::Decode(format!(
                "JSON-RPC stream: a message larger than {} bytes (the limit; the server sends something that is not OVSDB, or a reply bigger than the client allows)",
                self.max_frame
            )));
        }
        Ok(None)
    }
}

/// Position of the first `"` or `\` in `hay`, eight bytes at a time: strings (names, UUIDs,
/// addresses) are most of what OVSDB sends, and this is the framer's inner loop.
fn quote_or_backslash(hay: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // The high bit of each zero byte of `x` is set. The lowest set bit is exact (a borrow only
    // carries upwards from a true zero), and the lowest is the one we need.
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut chunks = hay.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let word = u64::from_le_bytes(chunk.try_into().expect("chunks of 8"));
        let hits = zero_bytes(word ^ (ONES * u64::from(b'"'))) | zero_bytes(word ^ (ONES * u64::from(b'\\')));
        if hits != 0 {
            return Some(offset + (hits.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&c| c == b'"' || c == b'\\')
        .map(|p| offset + p)
}

/// One JSON-RPC 1.0 message as OVSDB uses it.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A call expecting a response with the same `id`.
    Request { id: Json, method: String, params: Json },
    /// A call with `id: null`: no response (e.g. `update`, `locked`).
    Notification { method: String, params: Json },
    /// The answer to a request: exactly one of `result`/`error` is meaningful.
    Response { id: Json, result: Json, error: Json },
}

#[derive(Deserialize)]
struct RawMessage {
    #[serde(default)]
    id: Option<Json>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Json>,
    #[serde(default)]
    result: Option<Json>,
    #[serde(default)]
    error: Option<Json>,
}

impl Message {
    /// Parses one frame from [`Framer::next_frame`].
    pub fn parse(frame: &[u8]) -> Result<Message> {
        let raw: RawMessage =
            serde_json::from_slice(frame).map_err(|e| Error::Decode(format!("JSON-RPC message: {e}")))?;
        Message::from_raw(raw)
    }

    fn from_raw(raw: RawMessage) -> Result<Message> {
        match raw.method {
            Some(method) => {
                let params = raw.params.unwrap_or(Json::Array(Vec::new()));
                match raw.id {
                    None | Some(Json::Null) => Ok(Message::Notification { method, params }),
                    Some(id) => Ok(Message::Request { id, method, params }),
                }
            }
            None => {
                let id = raw
                    .id
                    .ok_or_else(|| Error::Decode("JSON-RPC message with neither method nor id".into()))?;
                if raw.result.is_none() && raw.error.is_none() {
                    return Err(Error::Decode("JSON-RPC response with neither result nor error".into()));
                }
                Ok(Message::Response {
                    id,
                    result: raw.result.unwrap_or(Json::Null),
                    error: raw.error.unwrap_or(Json::Null),
                })
            }
        }
    }

    /// Serializes to the wire form (no trailing newline; none is needed).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Appends the wire form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let res = match self {
            Message::Request { id, method, params } => {
                serde_json::to_writer(&mut *out, &WireCall { id, method, params })
            }
            Message::Notification { method, params } => serde_json::to_writer(
                &mut *out,
                &WireCall {
                    id: &Json::Null,
                    method,
                    params,
                },
            ),
            Message::Response { id, result, error } => {
                serde_json::to_writer(&mut *out, &WireResponse { id, result, error })
            }
        };
        // Writing a serde_json::Value into a Vec cannot fail.
        debug_assert!(res.is_ok());
    }
}

/// Writes a request without building a [`Message`]: `params` is serialized straight into `out`.
pub fn write_request<P: Serialize + ?Sized>(out: &mut Vec<u8>, id: &Json, method: &str, params: &P) -> Result<()> {
    serde_json::to_writer(out, &WireCall { id, method, params })
        .map_err(|e| Error::Decode(format!("cannot encode {method} request: {e}")))
}

#[derive(Serialize)]
struct WireCall<'a, P: Serialize + ?Sized> {
    method: &'a str,
    params: &'a P,
    id: &'a Json,
}

/// A message as the connection reads it: `params`/`result` stay unparsed slices of the frame,
/// so each is decoded once, straight into its final type (rows, transaction results).
#[derive(Deserialize)]
pub(crate) struct Incoming<'a> {
    #[serde(default)]
    pub(crate) id: Option<Json>,
    #[serde(default, borrow)]
    pub(crate) method: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) params: Option<&'a serde_json::value::RawValue>,
    #[serde(default, borrow)]
    pub(crate) result: Option<&'a serde_json::value::RawValue>,
    #[serde(default)]
    pub(crate) error: Option<Json>,
}

impl<'a> Incoming<'a> {
    pub(crate) fn parse(frame: &'a [u8]) -> Result<Incoming<'a>> {
        let m: Incoming<'a> =
            serde_json::from_slice(frame).map_err(|e| Error::Decode(format!("JSON-RPC message: {e}")))?;
        if m.method.is_none() && m.id.is_none() {
            return Err(Error::Decode("JSON-RPC message with neither method nor id".into()));
        }
        Ok(m)
    }
}

/// The id and `result` text of a successful response in exactly the layout ovsdb-server
/// writes, `{"id":N,"result":…,"error":null}`, found without parsing the result: whoever takes
/// the text parses it completely, so anything between the two members that is not exactly one
/// JSON value is rejected there. `None` for every other message: parse it with
/// [`Incoming::parse`].
pub(crate) fn plain_response(frame: &[u8]) -> Option<(u64, &str)> {
    let (id, digits) = leading_id(frame.strip_prefix(b"{\"id\":")?)?;
    let rest = &frame[b"{\"id\":".len()..];
    // The member before the closing brace belongs to the top-level object: it is its `error`.
    let result = rest[digits..]
        .strip_prefix(b",\"result\":")?
        .strip_suffix(b",\"error\":null}")?;
    let result = std::str::from_utf8(result).ok()?;
    (!result.is_empty()).then_some((id, result))
}

/// A successful response at the start of `bytes`, in the exact layout ovsdb-server writes
/// (`{"id":N,"result":…,"error":null}`, no spaces), whose result `read_result` recognises
/// and measures: the id, what `read_result` made of the result, and the length of the whole
/// message. `None` for anything else, a message not wholly buffered yet included; the framer
/// then handles it. Nothing after the message is looked at.
pub(crate) fn plain_response_at<T>(
    bytes: &[u8],
    read_result: impl FnOnce(&[u8]) -> Option<(T, usize)>,
) -> Option<(u64, T, usize)> {
    let rest = bytes.strip_prefix(b"{\"id\":")?;
    let (id, digits) = leading_id(rest)?;
    let rest = rest[digits..].strip_prefix(b",\"result\":")?;
    let (value, used) = read_result(rest)?;
    let after = rest.get(used..)?.strip_prefix(b",\"error\":null}")?;
    Some((id, value, bytes.len() - after.len()))
}

/// The request id a response starts with, as the client numbers them: a JSON integer of at
/// most 19 digits (so it fits a `u64`) without leading zeros (which JSON forbids); its value and
/// how many digits it took.
fn leading_id(bytes: &[u8]) -> Option<(u64, usize)> {
    let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 || (digits > 1 && bytes[0] == b'0') {
        return None;
    }
    let id = bytes[..digits].iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some((id, digits))
}

#[derive(Serialize)]
struct WireResponse<'a> {
    result: &'a Json,
    error: &'a Json,
    id: &'a Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_or_backslash_finds_the_first_of_either() {
        let naive = |h: &[u8]| h.iter().position(|&c| c == b'"' || c == b'\\');
        let mut cases: Vec<Vec<u8>> = vec![b"".to_vec(), b"abc".to_vec(), b"\"".to_vec(), b"\\".to_vec()];
        for len in 0..20 {
            for at in 0..len {
                for special in [b'"', b'\\'] {
                    // Neighbours of the specials' values and high bytes around them.
                    let mut h: Vec<u8> = (0..len)
                        .map(|i| [b'!', b'#', b'[', b']', 0x80, 0xff, 0x01][i % 7])
                        .collect();
                    h[at] = special;
                    cases.push(h.clone());
                    if at + 1 < len {
                        h[at + 1] = b'"';
                        cases.push(h);
                    }
                }
            }
        }
        for h in &cases {
            assert_eq!(quote_or_backslash(h), naive(h), "{h:?}");
        }
    }
    use serde_json::json;

    fn frames_of(chunks: &[&[u8]]) -> Result<Vec<String>> {
        let mut f = Framer::new();
        let mut out = Vec::new();
        for c in chunks {
            f.extend(c);
            while let Some(fr) = f.next_frame()? {
                out.push(String::from_utf8(fr.to_vec()).unwrap());
            }
        }
        Ok(out)
    }

    const TRICKY: &str =
        r#"{"method":"update","params":["m\"}{[",{"T":{"u":{"new":{"s":"a\\","t":"}}]]\\\"{"}}}}],"id":null}"#;

    #[test]
    fn several_messages_in_one_read() {
        let s = format!("{TRICKY}\n  {{\"id\":1,\"result\":[],\"error\":null}}[1,[2]]");
        let got = frames_of(&[s.as_bytes()]).unwrap();
        assert_eq!(
            got,
            vec![
                TRICKY.to_string(),
                r#"{"id":1,"result":[],"error":null}"#.into(),
                "[1,[2]]".into()
            ]
        );
    }

    #[test]
    fn split_at_every_position_gives_the_same_frames() {
        let s = format!("{TRICKY} {TRICKY}");
        let whole = frames_of(&[s.as_bytes()]).unwrap();
        assert_eq!(whole.len(), 2);
        for i in 0..=s.len() {
            let (a, b) = s.as_bytes().split_at(i);
            assert_eq!(frames_of(&[a, b]).unwrap(), whole, "split at {i}");
        }
        // One byte at a time: every escape and quote lands on a read boundary somewhere.
        let bytes: Vec<&[u8]> = s.as_bytes().chunks(1).collect();
        assert_eq!(frames_of(&bytes).unwrap(), whole);
    }

    #[test]
    fn strings_with_brackets_and_escapes_do_not_end_a_frame() {
        let got = frames_of(&[br#"{"a":"]}\"]}","b":"\\"}"#]).unwrap();
        assert_eq!(got.len(), 1);
        let v: Json = serde_json::from_str(&got[0]).unwrap();
        assert_eq!(v["a"], "]}\"]}");
        assert_eq!(v["b"], "\\");
    }

    #[test]
    fn deeply_nested_arrays() {
        let s = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(frames_of(&[s.as_bytes()]).unwrap(), vec![s.clone()]);
    }

    #[test]
    fn incomplete_frame_is_kept_and_reported() {
        let mut f = Framer::new();
        f.extend(br#"{"id":1,"res"#);
        assert!(f.next_frame().unwrap().is_none());
        assert!(f.in_frame());
        f.extend(br#"ult":{}}"#);
        assert!(f.next_frame().unwrap().is_some());
        assert!(!f.in_frame());
        assert_eq!(f.pending_bytes(), 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(frames_of(&[b"hello"]).is_err());
        assert!(frames_of(&[b"{}]"]).is_err());
        assert!(frames_of(&[b"42"]).is_err());
        assert!(frames_of(&[b"{\"a\":1}\x00"]).is_err());
        // Balanced but not JSON: framing passes, parsing fails.
        let f = frames_of(&[b"{:::}"]).unwrap();
        assert!(Message::parse(f[0].as_bytes()).is_err());
        assert!(Message::parse(b"[1,2]").is_err());
        assert!(Message::parse(b"{\"foo\":1}").is_err());
        assert!(Message::parse(b"{\"id\":3}").is_err());
    }

    #[test]
    fn large_message_in_small_reads_is_scanned_once() {
        let big = "x".repeat(10_000_000);
        let msg = json!({"id": 7, "result": [big, {"k": "}"}], "error": null}).to_string();
        let mut f = Framer::new();
        let mut n = 0;
        for chunk in msg.as_bytes().chunks(4096) {
            f.extend(chunk);
            if let Some(fr) = f.next_frame().unwrap() {
                n += 1;
                assert_eq!(fr.len(), msg.len());
            }
        }
        assert_eq!(n, 1);
    }

    #[test]
    fn plain_responses_are_found_without_parsing_and_others_are_left_to_the_parser() {
        let ok = br#"{"id":7,"result":[{"uuid":["uuid","f3f73e40-c253-4dc0-9bbd-2e598e6eb4f2"]}],"error":null}"#;
        assert_eq!(
            plain_response(ok),
            Some((7, r#"[{"uuid":["uuid","f3f73e40-c253-4dc0-9bbd-2e598e6eb4f2"]}]"#))
        );
        assert_eq!(
            plain_response(br#"{"id":1,"result":{"error":null},"error":null}"#),
            Some((1, r#"{"error":null}"#))
        );
        for other in [
            &br#"{"id":"echo","result":[],"error":null}"#[..],
            br#"{"id":3,"result":null,"error":"unknown method"}"#,
            br#"{"id":3,"error":null,"result":[]}"#,
            br#"{"id":,"result":[],"error":null}"#,
            br#"{"id":99999999999999999999999,"result":[],"error":null}"#,
            br#"{"id":007,"result":[],"error":null}"#,
            br#"{"id":3,"result":{"a":1,"error":null}}"#,
            br#"{"id":null,"method":"update","params":[]}"#,
            br#"{"id":3,"result":,"error":null}"#,
        ] {
            assert_eq!(plain_response(other), None, "{}", String::from_utf8_lossy(other));
        }
        // Extra members end up in the result text, which its consumer then rejects.
        let (_, text) = plain_response(br#"{"id":3,"result":1,"x":2,"error":null}"#).unwrap();
        assert!(serde_json::from_str::<Json>(text).is_err());
    }

    #[test]
    fn plain_responses_at_the_buffer_start_are_measured_exactly() {
        let counted = |b: &[u8]| b.strip_prefix(b"[]").map(|_| ((), 2));
        let one = br#"{"id":42,"result":[],"error":null}"#;
        let mut two = one.to_vec();
        two.extend_from_slice(br#"{"id":43,"result":[],"error":null}"#);
        assert_eq!(plain_response_at(one, counted), Some((42, (), one.len())));
        assert_eq!(plain_response_at(&two, counted), Some((42, (), one.len())));
        for cut in 0..one.len() {
            assert_eq!(plain_response_at(&one[..cut], counted), None);
        }
        for other in [
            &br#"{"id":042,"result":[],"error":null}"#[..],
            br#"{"id":,"result":[],"error":null}"#,
            br#"{"id":99999999999999999999,"result":[],"error":null}"#,
            br#"{"id":4,"result":[],"error":"x"}"#,
            br#"{"id":4,"result":[], "error":null}"#,
            br#"{"id":4,"result":{},"error":null}"#,
            br#" {"id":4,"result":[],"error":null}"#,
        ] {
            assert_eq!(
                plain_response_at(other, counted),
                None,
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }

    #[test]
    fn frame_start_drops_whitespace_and_skip_drops_a_recognised_frame() {
        let mut f = Framer::new();
        f.extend(b" \n{\"id\":1}[2]");
        assert_eq!(f.frame_start(), Some(&b"{\"id\":1}[2]"[..]));
        f.skip(8);
        assert_eq!(f.next_frame().unwrap().as_deref(), Some(&b"[2]"[..]));
        assert_eq!(f.frame_start(), None);
        // Inside a partly scanned frame there is no frame start.
        f.extend(b"{\"a\":");
        assert_eq!(f.next_frame().unwrap(), None);
        assert_eq!(f.frame_start(), None);
    }

    #[test]
    fn message_kinds() {
        assert_eq!(
            Message::parse(br#"{"id":"echo","method":"echo","params":[]}"#).unwrap(),
            Message::Request {
                id: json!("echo"),
                method: "echo".into(),
                params: json!([])
            }
        );
        assert_eq!(
            Message::parse(br#"{"id":null,"method":"locked","params":["l"]}"#).unwrap(),
            Message::Notification {
                method: "locked".into(),
                params: json!(["l"])
            }
        );
        assert_eq!(
            Message::parse(br#"{"id":4,"result":null,"error":"unknown method"}"#).unwrap(),
            Message::Response {
                id: json!(4),
                result: Json::Null,
                error: json!("unknown method")
            }
        );
    }

    #[test]
    fn round_trip() {
        for m in [
            Message::Request {
                id: json!(1),
                method: "transact".into(),
                params: json!(["db", {"op": "comment", "comment": "\"}"}]),
            },
            Message::Notification {
                method: "update2".into(),
                params: json!(["m", {}]),
            },
            Message::Response {
                id: json!("x"),
                result: json!({"a": 1}),
                error: Json::Null,
            },
        ] {
            let bytes = m.to_bytes();
            let mut f = Framer::new();
            f.extend(&bytes);
            let fr = f.next_frame().unwrap().unwrap();
            assert_eq!(Message::parse(&fr).unwrap(), m);
        }
    }
}
