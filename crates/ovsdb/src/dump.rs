//! A consistent whole-database dump as one JSON document: one read-only transaction with a
//! `select` of every table, rows kept exactly as the server sent them (they never go through
//! typed values, so reals, escapes and set/map notation are untouched).
//!
//! The layout is the one `neutron-reference/nbdump.py` writes, so dumps of any writer compare
//! byte for byte with those reference files: `{"database", "schema_version", "tables": {TABLE:
//! [ROW, ...]}}` with every table (empty ones too) and rows sorted by `_uuid`. Callers add their
//! own keys (e.g. `step`, `command`) with [`with_keys`] and write it with [`to_pretty_string`]
//! (Python's `json.dump(indent=1, sort_keys=True)`, byte for byte).
//!
//! ```no_run
//! # async fn demo(client: &ovsdb::Client) -> ovsdb::Result<()> {
//! let doc = ovsdb::dump::dump(client, "OVN_Northbound").await?;
//! std::fs::write("nb.json", ovsdb::dump::to_pretty_string(&doc))?;
//! # Ok(()) }
//! ```
//!
//! Must not know: any schema's table names, what the dump is for.

use std::fmt::Write as _;

use serde_json::{json, Map, Value as Json};

use crate::client::Client;
use crate::error::{Error, Result};

/// Dumps every table of `database` in one read-only transaction.
pub async fn dump(client: &Client, database: &str) -> Result<Json> {
    let schema = client.get_schema(database).await?;
    let tables: Vec<&String> = schema.tables.keys().collect();
    let mut params = vec![json!(database)];
    params.extend(tables.iter().map(|t| json!({"op": "select", "table": t, "where": []})));
    let reply = client.call("transact", Json::Array(params)).await?;
    let results = reply
        .as_array()
        .ok_or_else(|| Error::Decode(format!("transact reply is not an array: {}", brief(&reply))))?;
    let mut out = Map::new();
    for (i, table) in tables.iter().enumerate() {
        let result = results.get(i);
        let Some(Json::Array(rows)) = result.and_then(|r| r.get("rows")) else {
            return Err(Error::Decode(format!(
                "select on {table} failed: {}",
                result.map_or_else(|| "no result".to_owned(), brief)
            )));
        };
        let mut rows = rows.clone();
        rows.sort_by(|a, b| uuid_of(a).cmp(uuid_of(b)));
        out.insert((*table).clone(), Json::Array(rows));
    }
    Ok(json!({
        "database": database,
        "schema_version": schema.version,
        "tables": Json::Object(out),
    }))
}

fn uuid_of(row: &Json) -> &str {
    row.get("_uuid")
        .and_then(|u| u.get(1))
        .and_then(Json::as_str)
        .unwrap_or("")
}

fn brief(j: &Json) -> String {
    let s = j.to_string();
    match s.char_indices().nth(197) {
        Some((i, _)) if s.len() > 200 => format!("{}...", &s[..i]),
        _ => s,
    }
}

/// Adds top-level keys (e.g. `step`, `command`).
pub fn with_keys<'a>(doc: Json, keys: impl IntoIterator<Item = (&'a str, Json)>) -> Json {
    match doc {
        Json::Object(mut m) => {
            for (k, v) in keys {
                m.insert(k.to_owned(), v);
            }
            Json::Object(m)
        }
        other => other,
    }
}

/// Serializes like Python's `json.dump(doc, indent=1, sort_keys=True)` plus a final newline:
/// the reference files' exact bytes.
pub fn to_pretty_string(doc: &Json) -> String {
    let mut s = to_python_json(doc);
    s.push('\n');
    s
}

/// Serializes exactly like Python's `json.dumps(doc, indent=1, sort_keys=True)`: one space per
/// level, `", "`-free separators, sorted keys, `\uXXXX` for everything outside printable ASCII,
/// floats in `repr()` form. No final newline.
fn to_python_json(doc: &Json) -> String {
    let mut out = String::new();
    write_python_json(&mut out, doc, 0);
    out
}

fn write_python_json(out: &mut String, j: &Json, level: usize) {
    let newline = |out: &mut String, level: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n(' ', level));
    };
    match j {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => {
                let _ = write!(out, "{i}");
            }
            (None, Some(u), _) => {
                let _ = write!(out, "{u}");
            }
            (None, None, Some(f)) => out.push_str(&python_float_repr(f)),
            _ => out.push_str(&n.to_string()),
        },
        Json::String(s) => write_python_string(out, s),
        Json::Array(items) if items.is_empty() => out.push_str("[]"),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, level + 1);
                write_python_json(out, item, level + 1);
            }
            newline(out, level);
            out.push(']');
        }
        Json::Object(map) if map.is_empty() => out.push_str("{}"),
        Json::Object(map) => {
            let mut entries: Vec<(&String, &Json)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, level + 1);
                write_python_string(out, k);
                out.push_str(": ");
                write_python_json(out, v, level + 1);
            }
            newline(out, level);
            out.push('}');
        }
    }
}

/// Python's `json.dumps` of a string (`ensure_ascii`): printable ASCII as is, the usual short
/// escapes, the rest as `\uXXXX` (lowercase hex, UTF-16 surrogate pairs above the BMP).
pub fn python_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    write_python_string(&mut out, s);
    out
}

fn write_python_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional for decimal
/// exponents -4..16, else `d.ddde±XX`; always with a `.` or an exponent.
fn python_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    // Rust's `{:e}` gives the same shortest round-trip digits: "-1.2345e-5", "1e16".
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{body}")
    } else {
        let frac = if digits.len() > 1 {
            format!(".{}", &digits[1..])
        } else {
            String::new()
        };
        format!(
            "{sign}{}{frac}e{}{:02}",
            &digits[..1],
            if exp < 0 { '-' } else { '+' },
            exp.abs()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_json_layout() {
        let doc: Json = serde_json::from_str(r#"{"b": [1, {"y": [], "x": ["set", []], "z": {}}], "a": "s"}"#).unwrap();
        assert_eq!(
            to_python_json(&doc),
            "{\n \"a\": \"s\",\n \"b\": [\n  1,\n  {\n   \"x\": [\n    \"set\",\n    []\n   ],\n   \"y\": [],\n   \"z\": {}\n  }\n ]\n}"
        );
    }

    #[test]
    fn python_string_escapes() {
        let mut out = String::new();
        write_python_string(&mut out, "a\"b\\c\n\t\u{1}é\u{7f}\u{1F600}~");
        assert_eq!(out, r#""a\"b\\c\n\t\u0001\u00e9\u007f\ud83d\ude00~""#);
    }

    #[test]
    fn python_float_reprs() {
        // Values checked against CPython 3.11's repr().
        let cases = [
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (1.5e-5, "1.5e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1.234e16, "1.234e+16"),
            (9999999999999998.0, "9999999999999998.0"),
            (123456.789, "123456.789"),
            (1e-7, "1e-07"),
            (2.5e300, "2.5e+300"),
            (-3.25, "-3.25"),
        ];
        for (f, want) in cases {
            assert_eq!(python_float_repr(f), want, "{f:?}");
        }
    }
}
