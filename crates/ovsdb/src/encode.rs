//! JSON text of outgoing requests, written by hand straight into the output buffer.
//!
//! A client pipelining thousands of small transactions spends a good share of its CPU turning
//! them into bytes, so the send path writes the few shapes OVSDB uses directly instead of going
//! through `serde`'s generic serializer (`bench ovsdb` measures the whole path). The output is
//! the same JSON `serde_json` writes for these types (`Serialize` impls of [`Value`], [`Row`]
//! and [`Condition`] stay for every other use); tests compare the two.
//!
//! Must not know: sockets, replies, any schema.

use crate::condition::Condition;
use crate::datum::{Atom, Row, Value};
use crate::txn::{Mutation, Operation, Transaction};
use crate::words::{word4, word8};

/// Appends the JSON text of a value to `out`.
pub(crate) trait WriteJson {
    fn write_json(&self, out: &mut Vec<u8>);
}

/// Which bytes a JSON string must escape: `"`, `\` and the control characters.
const fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// [`needs_escape`] as a table: one load per byte.
static ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = needs_escape(b as u8);
        b += 1;
    }
    table
};

/// A JSON string literal, escaped as `serde_json` escapes it.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    // Almost no OVSDB string needs escaping: check first, then copy it whole.
    if any_needs_escape(bytes) {
        out.push(b'"');
        write_escaped(out, bytes);
        out.push(b'"');
        return;
    }
    let n = bytes.len();
    out.reserve(n + 2);
    let start = out.len();
    // SAFETY: `reserve` made room for `n + 2` bytes past `start`; `copy_short` writes exactly
    // bytes `1..=n` of that room and the quotes fill `0` and `n + 1`, so every byte below the
    // new length is initialised. The source and the spare capacity cannot overlap.
    unsafe {
        let dst = out.as_mut_ptr().add(start);
        dst.write(b'"');
        copy_short(bytes.as_ptr(), dst.add(1), n);
        dst.add(n + 1).write(b'"');
        out.set_len(start + n + 2);
    }
}

/// Copies `n` bytes without a call into `memcpy` when `n` is small (most OVSDB strings are
/// 4-24 bytes, where the call costs more than the copy): two overlapping loads and stores.
///
/// # Safety
/// `src` is readable and `dst` writable for `n` bytes, and they do not overlap.
#[inline(always)]
unsafe fn copy_short(src: *const u8, dst: *mut u8, n: usize) {
    // SAFETY (all arms): each access lies within the first `n` bytes of `src` or `dst`.
    unsafe {
        match n {
            0 => {}
            1..=3 => {
                dst.write(src.read());
                dst.add(n / 2).write(src.add(n / 2).read());
                dst.add(n - 1).write(src.add(n - 1).read());
            }
            4..=7 => {
                let head = src.cast::<u32>().read_unaligned();
                let tail = src.add(n - 4).cast::<u32>().read_unaligned();
                dst.cast::<u32>().write_unaligned(head);
                dst.add(n - 4).cast::<u32>().write_unaligned(tail);
            }
            8..=16 => {
                let head = src.cast::<u64>().read_unaligned();
                let tail = src.add(n - 8).cast::<u64>().read_unaligned();
                dst.cast::<u64>().write_unaligned(head);
                dst.add(n - 8).cast::<u64>().write_unaligned(tail);
            }
            17..=32 => {
                let head = src.cast::<u128>().read_unaligned();
                let tail = src.add(n - 16).cast::<u128>().read_unaligned();
                dst.cast::<u128>().write_unaligned(head);
                dst.add(n - 16).cast::<u128>().write_unaligned(tail);
            }
            _ => std::ptr::copy_nonoverlapping(src, dst, n),
        }
    }
}

/// Whether any byte of `bytes` [`needs_escape`], eight bytes at a time (names, UUIDs and
/// external-ids values are most of every request).
fn any_needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Non-zero iff some byte of `x` is below `n` (n <= 0x80): exact as a yes/no answer.
    let has_below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGHS;
    let has_byte = |x: u64, b: u8| has_below(x ^ (ONES * u64::from(b)), 1);
    let word_needs = |w: u64| (has_below(w, 0x20) | has_byte(w, b'"') | has_byte(w, b'\\')) != 0;
    let n = bytes.len();
    if n < 8 {
        if n < 4 {
            return bytes.iter().any(|&b| ESCAPE[usize::from(b)]);
        }
        // Two overlapping halves make one word of real bytes: exact, no padding to mislead.
        return word_needs(u64::from(word4(bytes, 0)) | (u64::from(word4(bytes, n - 4)) << 32));
    }
    let mut i = 0;
    while i + 8 <= n {
        if word_needs(word8(bytes, i)) {
            return true;
        }
        i += 8;
    }
    // The last eight bytes, overlapping what was checked: no byte-by-byte tail.
    i < n && word_needs(word8(bytes, n - 8))
}

fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !ESCAPE[usize::from(b)] {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0xf)]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// A JSON integer.
fn write_int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `[a,b,…]` of any writable items.
fn write_array<T: WriteJson>(out: &mut Vec<u8>, items: &[T]) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item.write_json(out);
    }
    out.push(b']');
}

/// `"key":` inside an object (`first`: no comma before it).
fn write_key(out: &mut Vec<u8>, key: &str, first: bool) {
    if !first {
        out.push(b',');
    }
    write_str(out, key);
    out.push(b':');
}

/// `,"key":` for a key known not to need escaping (the operation keys of RFC 7047).
fn write_literal_key(out: &mut Vec<u8>, key: &str) {
    out.reserve(key.len() + 4);
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

impl WriteJson for String {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl WriteJson for Atom {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Atom::Integer(i) => write_int(out, *i),
            // serde_json's float formatting (shortest round-trip form; non-finite is null).
            Atom::Real(r) => out.extend_from_slice(serde_json::to_string(r).unwrap_or_default().as_bytes()),
            Atom::Boolean(true) => out.extend_from_slice(b"true"),
            Atom::Boolean(false) => out.extend_from_slice(b"false"),
            Atom::String(s) => write_str(out, s),
            Atom::Uuid(u) => {
                out.extend_from_slice(b"[\"uuid\",\"");
                out.extend_from_slice(
                    u.0.hyphenated()
                        .encode_lower(&mut uuid::Uuid::encode_buffer())
                        .as_bytes(),
                );
                out.extend_from_slice(b"\"]");
            }
            Atom::NamedUuid(n) => {
                out.extend_from_slice(b"[\"named-uuid\",");
                write_str(out, n);
                out.push(b']');
            }
        }
    }
}

impl WriteJson for (Atom, Atom) {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        self.0.write_json(out);
        out.push(b',');
        self.1.write_json(out);
        out.push(b']');
    }
}

impl WriteJson for Value {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Value::Atom(a) => a.write_json(out),
            Value::Set(items) => {
                out.extend_from_slice(b"[\"set\",");
                write_array(out, items);
                out.push(b']');
            }
            Value::Map(pairs) => {
                out.extend_from_slice(b"[\"map\",");
                write_array(out, pairs);
                out.push(b']');
            }
        }
    }
}

impl WriteJson for Row {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (column, value)) in self.columns().enumerate() {
            write_key(out, column, i == 0);
            value.write_json(out);
        }
        out.push(b'}');
    }
}

impl WriteJson for Condition {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Condition::Compare {
                column,
                function,
                value,
            } => {
                out.push(b'[');
                write_str(out, column);
                out.push(b',');
                write_str(out, function.as_str());
                out.push(b',');
                value.write_json(out);
                out.push(b']');
            }
            Condition::Constant(b) => Atom::Boolean(*b).write_json(out),
        }
    }
}

impl WriteJson for Mutation {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        write_str(out, &self.column);
        out.push(b',');
        write_str(out, self.mutator.as_str());
        out.push(b',');
        self.value.write_json(out);
        out.push(b']');
    }
}

impl WriteJson for Operation {
    fn write_json(&self, out: &mut Vec<u8>) {
        let op = |out: &mut Vec<u8>, name: &str| {
            out.extend_from_slice(b"{\"op\":\"");
            out.extend_from_slice(name.as_bytes());
            out.push(b'"');
        };
        let table = |out: &mut Vec<u8>, table: &str| {
            write_literal_key(out, "table");
            write_str(out, table);
        };
        let conditions = |out: &mut Vec<u8>, conditions: &[Condition]| {
            write_literal_key(out, "where");
            write_array(out, conditions);
        };
        match self {
            Operation::Insert {
                table: t,
                row,
                uuid_name,
            } => {
                op(out, "insert");
                table(out, t);
                write_literal_key(out, "row");
                row.write_json(out);
                if let Some(n) = uuid_name {
                    write_literal_key(out, "uuid-name");
                    write_str(out, n);
                }
            }
            Operation::Select {
                table: t,
                conditions: c,
                columns,
            } => {
                op(out, "select");
                table(out, t);
                conditions(out, c);
                if let Some(columns) = columns {
                    write_literal_key(out, "columns");
                    write_array(out, columns);
                }
            }
            Operation::Update {
                table: t,
                conditions: c,
                row,
            } => {
                op(out, "update");
                table(out, t);
                conditions(out, c);
                write_literal_key(out, "row");
                row.write_json(out);
            }
            Operation::Mutate {
                table: t,
                conditions: c,
                mutations,
            } => {
                op(out, "mutate");
                table(out, t);
                conditions(out, c);
                write_literal_key(out, "mutations");
                write_array(out, mutations);
            }
            Operation::Delete {
                table: t,
                conditions: c,
            } => {
                op(out, "delete");
                table(out, t);
                conditions(out, c);
            }
            Operation::Wait {
                table: t,
                conditions: c,
                columns,
                until_equal,
                rows,
                timeout_ms,
            } => {
                op(out, "wait");
                table(out, t);
                conditions(out, c);
                write_literal_key(out, "columns");
                write_array(out, columns);
                write_literal_key(out, "until");
                write_str(out, if *until_equal { "==" } else { "!=" });
                write_literal_key(out, "rows");
                write_array(out, rows);
                if let Some(t) = timeout_ms {
                    write_literal_key(out, "timeout");
                    write_int(out, *t);
                }
            }
            Operation::Commit { durable } => {
                op(out, "commit");
                write_literal_key(out, "durable");
                Atom::Boolean(*durable).write_json(out);
            }
            Operation::Abort => op(out, "abort"),
            Operation::Comment(c) => {
                op(out, "comment");
                write_literal_key(out, "comment");
                write_str(out, c);
            }
            Operation::Assert { lock } => {
                op(out, "assert");
                write_literal_key(out, "lock");
                write_str(out, lock);
            }
        }
        out.push(b'}');
    }
}

/// The `params` of a `transact` request: `[database, op, op, …]`.
impl WriteJson for Transaction {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'[');
        write_str(out, self.database());
        for op in self.operations() {
            out.push(b',');
            op.write_json(out);
        }
        out.push(b']');
    }
}

/// One whole request, `{"method":…,"params":…,"id":N}`, as [`crate::jsonrpc::write_request`]
/// writes it.
pub(crate) fn write_request(out: &mut Vec<u8>, id: u64, method: &str, params: &dyn WriteJson) {
    out.extend_from_slice(b"{\"method\":");
    write_str(out, method);
    out.extend_from_slice(b",\"params\":");
    params.write_json(out);
    out.extend_from_slice(b",\"id\":");
    write_int(out, id);
    out.push(b'}');
}

/// What can be the `params` of a request: anything `serde` serializes, and a [`Transaction`]
/// (written by [`WriteJson`], the fast path).
pub(crate) trait RequestParams {
    fn write_request(&self, out: &mut Vec<u8>, id: u64, method: &str) -> crate::Result<()>;
}

impl<T: serde::Serialize + ?Sized> RequestParams for T {
    fn write_request(&self, out: &mut Vec<u8>, id: u64, method: &str) -> crate::Result<()> {
        crate::jsonrpc::write_request(out, &serde_json::Value::from(id), method, self)
    }
}

impl RequestParams for Transaction {
    fn write_request(&self, out: &mut Vec<u8>, id: u64, method: &str) -> crate::Result<()> {
        write_request(out, id, method, self);
        Ok(())
    }
}

/// The JSON text of `value` as a `serde_json` value (for `to_json` helpers and tests).
pub(crate) fn to_json(value: &dyn WriteJson) -> serde_json::Value {
    let mut out = Vec::new();
    value.write_json(&mut out);
    serde_json::from_slice(&out).expect("the encoder writes valid JSON")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datum::Uuid;
    use crate::txn::Mutator;

    fn text(v: &dyn WriteJson) -> String {
        let mut out = Vec::new();
        v.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        for s in [
            "",
            "plain",
            "a\"b",
            "back\\slash",
            "tab\tnl\ncr\r",
            "\u{1}\u{8}\u{c}\u{1f}",
            "é ☃ 🎉",
            "\u{7f}",
        ] {
            let mut out = Vec::new();
            write_str(&mut out, s);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    #[test]
    fn escape_check_finds_every_byte_that_needs_it_anywhere() {
        let naive = |b: &[u8]| b.iter().any(|&c| needs_escape(c));
        for len in 0..26 {
            for at in 0..len {
                for special in 0..=255u8 {
                    // High bytes and the neighbours of 0x20, '"' and '\\' around the probe.
                    let mut bytes: Vec<u8> = (0..len).map(|i| [b'a', 0x80, 0xff, 0x20, b'#', b']'][i % 6]).collect();
                    bytes[at] = special;
                    assert_eq!(any_needs_escape(&bytes), naive(&bytes), "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn strings_of_every_short_length_are_copied_whole_after_what_came_before() {
        for len in 0..70 {
            let s: String = (0..len).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            // Odd prefixes put the copy at every alignment, with the buffer full or not.
            let mut out = b"x".repeat(len % 5);
            let before = out.clone();
            write_str(&mut out, &s);
            assert_eq!(&out[..before.len()], &before[..]);
            assert_eq!(
                std::str::from_utf8(&out[before.len()..]).unwrap(),
                serde_json::to_string(&s).unwrap()
            );
        }
    }

    #[test]
    fn numbers_match_serde_json() {
        for n in [0i64, 1, -1, 9, 10, 12345, i64::MAX, i64::MIN] {
            assert_eq!(text(&Atom::Integer(n)), serde_json::to_string(&n).unwrap());
        }
        for r in [0.0f64, -2.5, 1e300, 0.1] {
            assert_eq!(text(&Atom::Real(r)), serde_json::to_string(&r).unwrap());
        }
    }

    #[test]
    fn values_and_rows_match_their_serialize_impls() {
        let u = Uuid::new_v4();
        let values = [
            Value::from(7),
            Value::from(true),
            Value::from("x\"y"),
            Value::uuid(u),
            Value::named_uuid("row0"),
            Value::empty_set(),
            Value::set(["a", "b"]),
            Value::empty_map(),
            Value::Map(vec![
                (Atom::from("k"), Atom::Uuid(u)),
                (Atom::Integer(1), Atom::Real(0.5)),
            ]),
        ];
        for v in &values {
            assert_eq!(text(v), serde_json::to_string(v).unwrap());
        }
        let row = Row::new()
            .with("name", "sw0")
            .with("ports", Value::set([Atom::Uuid(u)]))
            .with("n", 3);
        assert_eq!(text(&row), serde_json::to_string(&row).unwrap());
        assert_eq!(text(&Row::new()), "{}");
        let c = Condition::eq("name", "a");
        assert_eq!(text(&c), serde_json::to_string(&c).unwrap());
        assert_eq!(text(&Condition::Constant(false)), "false");
        assert_eq!(text(&Mutation::new("n", Mutator::Add, 1)), r#"["n","+=",1]"#);
    }

    #[test]
    fn a_request_is_one_json_rpc_call() {
        let mut txn = Transaction::new("DB");
        txn.insert("T", Row::new().with("a", 1));
        let mut out = Vec::new();
        write_request(&mut out, 42, "transact", &txn);
        let j: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            j,
            serde_json::json!({"method": "transact", "id": 42,
                "params": ["DB", {"op": "insert", "table": "T", "row": {"a": 1}, "uuid-name": "row0"}]})
        );
    }
}
