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
    #[command(after_help = "Examples:
  ovn-heater db dump --db unix:/run/ovn/ovnnb_db.sock > nb.json
  ovn-heater db dump --db ssl:127.0.0.1:6642 --database OVN_Southbound --private-key key.pem --certificate cert.pem --ca-cert ca.pem")]
    Dump(DumpArgs),
    /// Print changes to one table as JSON lines until interrupted.
    #[command(after_help = "Examples:
  ovn-heater db watch --db unix:/run/ovn/ovnnb_db.sock --table Logical_Switch_Port --initial
  ovn-heater db watch --db unix:/run/ovn/ovnsb_db.sock --database OVN_Southbound --table Port_Binding --where logical_port=vm1")]
    Watch(WatchArgs),
}

#[derive(clap::Args, Debug)]
pub struct Target {
    /// The server: unix:PATH, tcp:HOST:PORT, ssl:HOST:PORT or tcp:[IPv6]:PORT (comma-separated:
    /// the first that answers). Any OVSDB server, so neither --nb nor --sb; --remote is the same.
    #[arg(long = "db", visible_alias = "remote", value_name = "REMOTE")]
    pub remote: String,
    /// The database; default: the server's only one besides _Server, else OVN_Northbound.
    #[arg(long, value_name = "NAME")]
    pub database: Option<String>,
    /// How long to keep trying to connect: 500ms, 2s, 1m, or a plain number of seconds.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::cli::duration::parse)]
    pub timeout: Duration,
    /// The largest message accepted from the server, in MiB (a bigger one, or a stream that is
    /// not OVSDB, ends the command with exit 3 instead of filling memory).
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub max_message_mib: usize,
    #[command(flatten)]
    pub tls: crate::tls::TlsArgs,
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
    if target.timeout.is_zero() {
        return Err(Failure::bad_input("--timeout must be more than 0 (e.g. 5s)").into());
    }
    let options = target
        .tls
        .apply(ClientOptions::new(&target.remote)?)?
        .reconnect(false)
        .connect_timeout(target.timeout)
        .max_message_bytes(target.max_message_mib.saturating_mul(1 << 20));
    if !(1..=1 << 20).contains(&target.max_message_mib) {
        return Err(Failure::bad_input(format!(
            "--max-message-mib must be from 1 to 1048576, got {}",
            target.max_message_mib
        ))
        .into());
    }
    // A socket file that is not there is a wrong path (or a server not started), not a
    // server that may still come up: said at once, as bad input.
    let remotes = ovsdb::Remote::parse_list(&target.remote)?;
    let missing: Vec<&std::path::Path> = remotes
        .iter()
        .filter_map(|r| match r {
            ovsdb::Remote::Unix(path) if !path.exists() => Some(path.as_path()),
            _ => None,
        })
        .collect();
    if !remotes.is_empty() && missing.len() == remotes.len() {
        return Err(Failure::bad_input(format!(
            "--db {}: no socket at {} (fix: name the socket of a running ovsdb-server, e.g. \
             unix:/run/ovn/ovnnb_db.sock, or start it with --remote=punix:PATH)",
            target.remote,
            missing
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .into());
    }
    Client::connect(options).await.map_err(|e| {
        // Only a server that never answered may not be running; one that answered with
        // something unusable is running but is not (or not only) speaking OVSDB.
        let hint = match e {
            ovsdb::Error::Connect { .. } | ovsdb::Error::Timeout { .. } => {
                " (is it running? check the socket path or host:port)"
            }
            _ => "",
        };
        anyhow::Error::new(e).context(format!("cannot reach the OVSDB server at {}{hint}", target.remote))
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
    let doc = ovsdb::dump::dump(&client, &database)
        .await
        .with_context(|| format!("reading {database} failed"))?;
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
    emit(&ovsdb::dump::to_pretty_string(&doc))?;
    client.close().await;
    Ok(ExitCode::SUCCESS)
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
    // One update can touch a whole table (northd rewriting every Logical_Flow); a printer
    // falls that far behind, so this watch gets a deep queue.
    let mut events = replica.subscribe_with_capacity(64 * 1024);
    if args.initial {
        let rows = replica.read(|t| t.get(&args.table).cloned().unwrap_or_default());
        for (uuid, row) in rows.into_iter().filter(|(_, r)| row_matches(r, &conditions)) {
            emit_line(
                &json!({"event": "initial", "table": args.table, "uuid": uuid.to_string(), "new": row.to_json()}),
            )?;
        }
    }
    // Both listeners live across iterations: a signal that arrives while an event is being
    // printed must still end the loop (a listener created later would miss it).
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot install the SIGINT handler")?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    loop {
        tokio::select! {
            _ = interrupt.recv() => break,
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
        AtomicType::String => Ok(Atom::from(match serde_json::from_str::<Json>(raw) {
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
