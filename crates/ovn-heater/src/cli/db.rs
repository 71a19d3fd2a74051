//! `ovn-heater db`: talk to any OVSDB server.
//!
//! - `db dump --db REMOTE [--database NAME]`: one consistent snapshot (a single read-only
//!   `transact` with one `select` per table) printed as
//!   `{"database", "schema_version", "tables": {TABLE: [ROW, ...]}}`, byte for byte in the
//!   layout of `neutron-reference/nbdump.py` (Python's `json.dump(indent=1, sort_keys=True)`:
//!   sorted keys, rows sorted by `_uuid`, every table even when empty, non-ASCII escaped).
//!   Rows are the server's JSON, untouched: they never go through typed values.
//! - `db watch --db REMOTE --table T [--where COL=VALUE]...`: one JSON line per change
//!   (`insert` / `modify` with `old` and `new` / `delete`) from a monitor on that table, until
//!   Ctrl-C or SIGTERM (exit 0). Conditions are sent to the server (`monitor_cond`).
//!
//! Exit codes: 2 for a bad remote, unknown database/table/column or a value that does not fit
//! the column; 3 when the server cannot be reached or goes away.
//!
//! Must not know: OVN table names (any schema works), the lab, Neutron.

use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use ovsdb::schema::{suggest, AtomicType, DatabaseSchema};
use ovsdb::{
    Atom, Client, ClientOptions, Condition, ConnectionEvent, Function, MonitorRequest, RowEvent, TableMonitor, Value,
};
use serde_json::{json, Value as Json};

use crate::error::Failure;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Subcommand, Debug)]
pub enum DbCommand {
    /// Print a whole database as one JSON document (one consistent snapshot).
    ///
    /// The layout is that of neutron-reference/nbdump.py, so dumps compare byte for byte.
    Dump(DumpArgs),
    /// Print changes to one table as JSON lines until interrupted.
    Watch(WatchArgs),
}

#[derive(clap::Args, Debug)]
pub struct Target {
    /// The server: unix:PATH, tcp:HOST:PORT or tcp:[IPv6]:PORT (comma-separated: the first that answers).
    #[arg(long = "db", value_name = "REMOTE")]
    pub remote: String,
    /// The database; default: the server's only one besides _Server, else OVN_Northbound.
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,
    /// How long to keep trying to connect.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub timeout: f64,
}

#[derive(clap::Args, Debug)]
pub struct DumpArgs {
    #[command(flatten)]
    pub target: Target,
    /// Also write a "step" key, as nbdump.py does.
    #[arg(long)]
    pub step: Option<String>,
    /// Also write a "command" key, as nbdump.py does.
    #[arg(long)]
    pub command: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub target: Target,
    /// The table to watch.
    #[arg(long)]
    pub table: String,
    /// Only rows where COL=VALUE (a set column: includes VALUE; a map: COL:KEY=VALUE). Repeatable.
    #[arg(long = "where", value_name = "COL=VALUE")]
    pub conditions: Vec<String>,
    /// First print the rows already there, as "initial" events.
    #[arg(long)]
    pub initial: bool,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        DbCommand::Dump(a) => dump(a).await,
        DbCommand::Watch(a) => watch(a).await,
    }
}

/// Connects (no reconnect: a dump or a watch that loses its server should say so and stop).
async fn connect(target: &Target) -> anyhow::Result<Client> {
    if !(target.timeout.is_finite() && target.timeout > 0.0) {
        return Err(Failure::bad_input(format!(
            "--timeout must be a positive number of seconds, got {}",
            target.timeout
        ))
        .into());
    }
    let options = ClientOptions::new(&target.remote)?
        .reconnect(false)
        .connect_timeout(Duration::from_secs_f64(target.timeout));
    Client::connect(options).await.with_context(|| {
        format!(
            "cannot reach the OVSDB server at {} (is it running? check the socket path or host:port)",
            target.remote
        )
    })
}

/// `--database`, or the only database besides `_Server`, or OVN_Northbound.
async fn choose_database(client: &Client, target: &Target) -> anyhow::Result<String> {
    let dbs = client.list_dbs().await.context("list_dbs failed")?;
    let user_dbs: Vec<&String> = dbs.iter().filter(|d| d.as_str() != "_Server").collect();
    if let Some(wanted) = &target.database {
        if dbs.contains(wanted) {
            return Ok(wanted.clone());
        }
        return Err(Failure::bad_input(format!(
            "{} has no database {wanted:?}{}; it has: {}",
            target.remote,
            suggest(wanted, dbs.iter().map(String::as_str)),
            dbs.join(", ")
        ))
        .into());
    }
    match user_dbs.as_slice() {
        [only] => Ok((*only).clone()),
        _ if dbs.iter().any(|d| d == "OVN_Northbound") => Ok("OVN_Northbound".into()),
        _ => Err(Failure::bad_input(format!(
            "{} serves {}; choose one with --database",
            target.remote,
            if user_dbs.is_empty() {
                "no database besides _Server".to_owned()
            } else {
                format!("several databases ({})", dbs.join(", "))
            }
        ))
        .into()),
    }
}

async fn dump(args: DumpArgs) -> anyhow::Result<ExitCode> {
    let client = connect(&args.target).await?;
    let database = choose_database(&client, &args.target).await?;
    let doc = snapshot(&client, &database).await?;
    let doc = match doc {
        Json::Object(mut m) => {
            if let Some(step) = args.step {
                m.insert("step".into(), Json::String(step));
            }
            if let Some(command) = args.command {
                m.insert("command".into(), Json::String(command));
            }
            Json::Object(m)
        }
        other => other,
    };
    let mut text = to_python_json(&doc);
    text.push('\n');
    emit(&text)?;
    client.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The whole database in one read-only transaction, rows exactly as the server sent them.
pub(crate) async fn snapshot(client: &Client, database: &str) -> anyhow::Result<Json> {
    let schema = client
        .call("get_schema", json!([database]))
        .await
        .with_context(|| format!("get_schema {database} failed"))?;
    let tables: Vec<String> = schema
        .get("tables")
        .and_then(Json::as_object)
        .map(|t| t.keys().cloned().collect())
        .ok_or_else(|| Failure::environment(format!("the server's schema of {database} has no tables object")))?;
    let mut tables = tables;
    tables.sort();
    let mut params = vec![json!(database)];
    params.extend(tables.iter().map(|t| json!({"op": "select", "table": t, "where": []})));
    let reply = client
        .call("transact", Json::Array(params))
        .await
        .with_context(|| format!("reading {database} failed"))?;
    let results = reply
        .as_array()
        .ok_or_else(|| Failure::environment(format!("transact reply is not an array: {}", brief(&reply))))?;
    let mut out = serde_json::Map::new();
    for (i, table) in tables.iter().enumerate() {
        let result = results.get(i);
        let Some(Json::Array(rows)) = result.and_then(|r| r.get("rows")) else {
            return Err(Failure::environment(format!(
                "select on {table} failed: {}",
                result.map_or_else(|| "no result".to_owned(), brief)
            ))
            .into());
        };
        let mut rows = rows.clone();
        rows.sort_by(|a, b| row_uuid(a).cmp(row_uuid(b)));
        out.insert(table.clone(), Json::Array(rows));
    }
    Ok(json!({
        "database": database,
        "schema_version": schema.get("version").cloned().unwrap_or(Json::Null),
        "tables": Json::Object(out),
    }))
}

fn row_uuid(row: &Json) -> &str {
    row.get("_uuid")
        .and_then(|u| u.get(1))
        .and_then(Json::as_str)
        .unwrap_or("")
}

fn brief(j: &Json) -> String {
    let s = j.to_string();
    if s.len() > 200 {
        format!("{}...", &s[..s.char_indices().nth(197).map_or(s.len(), |(i, _)| i)])
    } else {
        s
    }
}

/// Serializes exactly like Python's `json.dumps(doc, indent=1, sort_keys=True)`: one space per
/// level, `", "`-free separators, sorted keys, `\uXXXX` for everything outside printable ASCII,
/// floats in `repr()` form. No final newline.
pub(crate) fn to_python_json(doc: &Json) -> String {
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

/// Python's `ensure_ascii` string form: printable ASCII as is, the usual short escapes, the
/// rest as `\uXXXX` (lowercase hex, UTF-16 surrogate pairs above the BMP).
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

/// Writes to stdout; a closed pipe (e.g. `| head`) ends the command quietly.
fn emit(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(StdoutClosed.into()),
        other => other.context("cannot write to stdout"),
    }
}

/// Stdout was closed by the reader: not an error for the user.
#[derive(Debug, thiserror::Error)]
#[error("stdout closed")]
struct StdoutClosed;

async fn watch(args: WatchArgs) -> anyhow::Result<ExitCode> {
    match watch_inner(args).await {
        Err(e) if e.downcast_ref::<StdoutClosed>().is_some() => Ok(ExitCode::SUCCESS),
        other => other,
    }
}

async fn watch_inner(args: WatchArgs) -> anyhow::Result<ExitCode> {
    let client = connect(&args.target).await?;
    let database = choose_database(&client, &args.target).await?;
    let schema = client
        .get_schema(&database)
        .await
        .with_context(|| format!("get_schema {database} failed"))?;
    schema.table(&args.table)?;
    let conditions = args
        .conditions
        .iter()
        .map(|c| parse_condition(&schema, &args.table, c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Monitor conditions are a disjunction on the server, and --where flags a conjunction:
    // the server gets the first one (to cut traffic), every event is checked against all.
    let mut monitor = TableMonitor::all();
    if let Some(first) = conditions.first() {
        monitor = monitor.conditions(vec![first.clone()]);
    }
    let mut connection = client.connection_events();
    let replica = client
        .monitor(&database, MonitorRequest::new().table(args.table.clone(), monitor))
        .await
        .with_context(|| format!("cannot monitor {database}.{}", args.table))?;
    let mut events = replica.subscribe();
    if args.initial {
        let rows = replica.read(|t| t.get(&args.table).cloned().unwrap_or_default());
        for (uuid, row) in rows.into_iter().filter(|(_, r)| row_matches(r, &conditions)) {
            emit_line(
                &json!({"event": "initial", "table": args.table, "uuid": uuid.to_string(), "new": row.to_json()}),
            )?;
        }
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            event = connection.recv() => {
                if let Ok(ConnectionEvent::Disconnected { remote, reason }) = event {
                    return Err(Failure::environment(format!(
                        "lost the connection to {remote} while watching {}: {reason}", args.table
                    )).into());
                }
            }
            event = events.recv() => match event {
                Ok(e) => {
                    if let Some(line) = event_json(&e, &conditions) {
                        emit_line(&line)?;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("watch fell behind: {n} changes were not printed");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                    return Err(Failure::environment(format!(
                        "the monitor of {} ended (connection to {} closed)", args.table, args.target.remote
                    )).into());
                }
            }
        }
    }
    client.close().await;
    Ok(ExitCode::SUCCESS)
}

fn emit_line(j: &Json) -> anyhow::Result<()> {
    let mut line = j.to_string();
    line.push('\n');
    emit(&line)
}

/// The JSON line for an event, seen through the `--where` conjunction: a modify that makes a
/// row match is an insert, one that makes it stop matching a delete; `None` if not shown.
fn event_json(e: &RowEvent, conditions: &[Condition]) -> Option<Json> {
    let line = |event: &str, table: &str, uuid: &ovsdb::Uuid, old: Option<&ovsdb::Row>, new: Option<&ovsdb::Row>| {
        let mut j = json!({"event": event, "table": table, "uuid": uuid.to_string()});
        if let Some(old) = old {
            j["old"] = old.to_json();
        }
        if let Some(new) = new {
            j["new"] = new.to_json();
        }
        j
    };
    match e {
        RowEvent::Insert { table, uuid, new, .. } => {
            row_matches(new, conditions).then(|| line("insert", table, uuid, None, Some(new)))
        }
        RowEvent::Modify {
            table, uuid, old, new, ..
        } => match (row_matches(old, conditions), row_matches(new, conditions)) {
            (true, true) => Some(line("modify", table, uuid, Some(old), Some(new))),
            (false, true) => Some(line("insert", table, uuid, None, Some(new))),
            (true, false) => Some(line("delete", table, uuid, Some(old), None)),
            (false, false) => None,
        },
        RowEvent::Delete { table, uuid, old, .. } => {
            row_matches(old, conditions).then(|| line("delete", table, uuid, Some(old), None))
        }
        RowEvent::Resynced { .. } => Some(json!({"event": "resynced"})),
    }
}

/// Whether a row satisfies every condition built by [`parse_condition`] (`==` and `includes`).
fn row_matches(row: &ovsdb::Row, conditions: &[Condition]) -> bool {
    conditions.iter().all(|c| match c {
        Condition::Compare {
            column,
            function,
            value,
        } => {
            let Some(have) = row.get(column) else { return false };
            match function {
                Function::Eq => {
                    let (a, b) = (have.atoms(), value.atoms());
                    a.len() == b.len() && a.iter().all(|x| b.contains(x)) && have.pairs().len() == value.pairs().len()
                }
                Function::Includes => {
                    value.atoms().iter().all(|x| have.atoms().contains(x))
                        && value.pairs().iter().all(|p| have.pairs().contains(p))
                }
                _ => false,
            }
        }
        Condition::Constant(b) => *b,
    })
}

/// `COL=VALUE` (`==` on a column holding at most one value, `includes` on a set) or
/// `COL:KEY=VALUE` (`includes` of that pair on a map), with VALUE read as the column's type.
fn parse_condition(schema: &DatabaseSchema, table: &str, text: &str) -> anyhow::Result<Condition> {
    let bad = |why: String| -> anyhow::Error { Failure::bad_input(format!("--where {text:?}: {why}")).into() };
    let (lhs, raw) = text
        .split_once('=')
        .ok_or_else(|| bad("expected COL=VALUE or COL:KEY=VALUE".into()))?;
    let (column, key) = match lhs.split_once(':') {
        Some((c, k)) => (c, Some(k)),
        None => (lhs, None),
    };
    let t = schema.table(table)?;
    let ty = if column == "_uuid" {
        None
    } else {
        Some(
            &t.columns
                .get(column)
                .ok_or_else(|| {
                    bad(format!(
                        "table {table} has no column {column:?}{}",
                        suggest(column, t.columns.keys().map(String::as_str))
                    ))
                })?
                .column_type,
        )
    };
    let condition = match (ty, key) {
        (None, None) => Condition::eq("_uuid", Value::Atom(parse_atom(AtomicType::Uuid, raw).map_err(bad)?)),
        (None, Some(_)) => return Err(bad("_uuid is not a map".into())),
        (Some(ty), Some(key)) => {
            let value_type = ty
                .value
                .as_ref()
                .ok_or_else(|| bad(format!("{column} is not a map column; write {column}=VALUE")))?;
            let pair = (
                parse_atom(ty.key.atomic, key).map_err(bad)?,
                parse_atom(value_type.atomic, raw).map_err(bad)?,
            );
            Condition::includes(column, Value::Map(vec![pair]))
        }
        (Some(ty), None) if ty.is_map() => {
            return Err(bad(format!("{column} is a map; write {column}:KEY=VALUE")));
        }
        (Some(ty), None) => {
            let atom = parse_atom(ty.key.atomic, raw).map_err(bad)?;
            if ty.max == Some(1) {
                Condition::eq(column, Value::Atom(atom))
            } else {
                Condition::includes(column, Value::Set(vec![atom]))
            }
        }
    };
    // Ranges, enums and lengths: the same checks a transaction would get.
    if let Condition::Compare { column, value, .. } = &condition {
        schema
            .check_value(table, column, value)
            .map_err(|e| bad(e.to_string()))?;
    }
    Ok(condition)
}

/// Reads command-line text as an atom of `atomic` type (a JSON-quoted string is unquoted).
fn parse_atom(atomic: AtomicType, raw: &str) -> Result<Atom, String> {
    let expected = |what: &str| format!("{raw:?} is not {what}");
    match atomic {
        AtomicType::String => Ok(Atom::String(match serde_json::from_str::<Json>(raw) {
            Ok(Json::String(s)) if raw.starts_with('"') => s,
            _ => raw.to_owned(),
        })),
        AtomicType::Integer => raw
            .trim()
            .parse()
            .map(Atom::Integer)
            .map_err(|_| expected("an integer")),
        AtomicType::Real => raw
            .trim()
            .parse()
            .map(Atom::Real)
            .map_err(|_| expected("a real number")),
        AtomicType::Boolean => match raw.trim() {
            "true" => Ok(Atom::Boolean(true)),
            "false" => Ok(Atom::Boolean(false)),
            _ => Err(expected("true or false")),
        },
        AtomicType::Uuid => ovsdb::Uuid::parse(raw.trim())
            .map(Atom::Uuid)
            .map_err(|_| expected("a UUID")),
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

    #[test]
    fn where_flags_are_a_conjunction_and_modifies_cross_the_boundary() {
        let conds = vec![
            Condition::eq("name", "a"),
            Condition::includes("ids", Value::Map(vec![("k".into(), "v".into())])),
        ];
        let row = |name: &str, ids: &[(&str, &str)]| {
            ovsdb::Row::new()
                .with("name", name)
                .with("ids", Value::string_map(ids.iter().copied()))
        };
        assert!(row_matches(&row("a", &[("k", "v"), ("x", "y")]), &conds));
        assert!(!row_matches(&row("a", &[("k", "w")]), &conds));
        assert!(!row_matches(&row("b", &[("k", "v")]), &conds));
        let uuid = ovsdb::Uuid::new_v4();
        let at = std::time::Instant::now();
        let modify = |old, new| RowEvent::Modify {
            table: "T".into(),
            uuid,
            old,
            new,
            at,
        };
        let kind = |e: &RowEvent| event_json(e, &conds).map(|j| j["event"].as_str().unwrap().to_owned());
        assert_eq!(
            kind(&modify(row("a", &[]), row("a", &[("k", "v")]))).as_deref(),
            Some("insert")
        );
        assert_eq!(
            kind(&modify(row("a", &[("k", "v")]), row("b", &[("k", "v")]))).as_deref(),
            Some("delete")
        );
        assert_eq!(
            kind(&modify(row("a", &[("k", "v")]), row("a", &[("k", "v"), ("z", "z")]))).as_deref(),
            Some("modify")
        );
        assert_eq!(kind(&modify(row("b", &[]), row("c", &[]))), None);
    }

    #[test]
    fn where_clauses_follow_column_types() {
        let schema = DatabaseSchema::from_json(&json!({
            "name": "D", "tables": {"T": {"columns": {
                "name": {"type": "string"},
                "tag": {"type": {"key": {"type": "integer", "maxInteger": 10}, "min": 0, "max": 1}},
                "addrs": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
                "ids": {"type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}}
            }}}
        }))
        .unwrap();
        let c = |s: &str| parse_condition(&schema, "T", s).map(|c| c.to_json());
        assert_eq!(c("name=sw0").unwrap(), json!(["name", "==", "sw0"]));
        assert_eq!(c("name=\"5\"").unwrap(), json!(["name", "==", "5"]));
        assert_eq!(c("tag=5").unwrap(), json!(["tag", "==", 5]));
        assert_eq!(c("addrs=a b").unwrap(), json!(["addrs", "includes", ["set", ["a b"]]]));
        assert_eq!(
            c("ids:neutron:net=x=y").unwrap(),
            json!(["ids", "includes", ["map", [["neutron:net", "x=y"]]]])
        );
        let err = |s: &str| c(s).unwrap_err().to_string();
        assert!(err("nmae=x").contains("did you mean \"name\""));
        assert!(err("tag=x").contains("not an integer"));
        assert!(err("tag=11").contains("out of range"));
        assert!(err("ids=x").contains("ids:KEY=VALUE"));
        assert!(err("name:k=v").contains("not a map"));
        assert!(err("novalue").contains("COL=VALUE"));
    }
}
