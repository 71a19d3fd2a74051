//! `ovn-heater bench ovsdb`: how fast and how cheap our OVSDB client is, next to the
//! reference tools, on a private ovsdb-server. Prints figures and ratios; never asserts.
//!
//! (a) Initial sync: an NB database holding `--ports` Logical_Switch_Ports over `--switches`
//!     Logical_Switches (written in big transactions), then the time for our
//!     `Client::monitor` of every table to return, next to `ovsdb-client dump` of the same
//!     database in the same run (its process start-up, timed as `ovsdb-client list-dbs`,
//!     subtracted) and, like for like, an in-process client sending the same requests over
//!     the same socket, framing the replies with the same framer and parsing them whole into
//!     `serde_json::Value`s.
//! (b) Pipelined transactions: `--txns` single-row inserts with `--in-flight` outstanding, on
//!     a fresh database: transactions per second, and CPU seconds of this process next to
//!     those of ovsdb-server over the same interval (the goal: ours ≤ 10% of the server's).
//!     Twice per runtime: with `Client::transact_many` (`--in-flight / --batch` batches kept
//!     outstanding, the way to pipeline) and with one `Client::transact` task per transaction.
//!     Over a unix socket, loopback TCP and TLS (`pssl:`, certificates made for the run): what
//!     encryption costs each side.
//!
//! The private server lives in a temp dir and is killed (and the dir removed) on every exit
//! path. Must not know: the lab (`ovn-lab`) or any CMS; only the NB schema file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use ovsdb::{Atom, Client, ClientOptions, MonitorRequest, Row, Str, Transaction, Value};

use crate::error::Failure;

use super::find_binary;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Logical_Switch_Port rows in the initial-sync database.
    #[arg(long, default_value_t = 100_000)]
    pub ports: usize,
    /// Logical_Switch rows the ports are spread over.
    #[arg(long, default_value_t = 1_000)]
    pub switches: usize,
    /// Single-row insert transactions in the pipelining benchmark.
    #[arg(long, default_value_t = 10_000)]
    pub txns: usize,
    /// Transactions outstanding at once in the pipelining benchmark.
    #[arg(long, default_value_t = 128)]
    pub in_flight: usize,
    /// Transactions per `Client::transact_many` call in the pipelining benchmark
    /// (`--in-flight / --batch` calls are kept outstanding).
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Which client API (b) pipelines with (both by default; one alone is handy under a profiler).
    #[arg(long, value_enum, default_value_t = Api::Both)]
    pub api: Api,
    /// How (b) reaches the server: a unix socket, TCP on 127.0.0.1, TLS on 127.0.0.1, `both`
    /// (unix and tcp) or `all` (the default).
    #[arg(long, value_enum, default_value_t = Transports::All)]
    pub transport: Transports,
    /// How many times to time each initial sync (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub repeat: usize,
    /// The Northbound schema file.
    #[arg(long, default_value = "/usr/share/ovn/ovn-nb.ovsschema")]
    pub schema: PathBuf,
    /// Skip (a), the initial sync.
    #[arg(long)]
    pub skip_sync: bool,
    /// Skip (b), the pipelined transactions.
    #[arg(long)]
    pub skip_txns: bool,
    /// Print the figures as one JSON document on stdout instead of the text.
    #[arg(long)]
    pub json: bool,
}

/// Text output, unless --json (then [`Figures`] is printed at the end instead).
macro_rules! say {
    ($args:expr, $($text:tt)*) => {
        if !$args.json {
            println!($($text)*);
        }
    };
}

/// Everything measured, for --json.
#[derive(Debug, Default, serde::Serialize)]
struct Figures {
    ovsdb_server: String,
    schema: String,
    build: &'static str,
    cpus: usize,
    initial_sync: Option<SyncFigures>,
    transactions: Vec<TxnRow>,
}

/// (a): our initial sync against ovsdb-client's dump, medians of --repeat runs.
#[derive(Debug, serde::Serialize)]
struct SyncFigures {
    transport: &'static str,
    ports: usize,
    switches: usize,
    populate_s: f64,
    db_file_mb: f64,
    repeat: usize,
    ours_s: f64,
    ovsdb_client_dump_s: f64,
    ovsdb_client_json_dump_s: f64,
    ovsdb_client_startup_s: f64,
    ratio_vs_dump: f64,
    ratio_vs_json_dump: f64,
    serde_json_client_s: Option<f64>,
    ratio_vs_serde_json_client: Option<f64>,
}

/// (b): one transport, pipelining and runtime.
#[derive(Debug, serde::Serialize)]
struct TxnRow {
    transport: &'static str,
    api: String,
    runtime: &'static str,
    txns: usize,
    in_flight: usize,
    elapsed_s: f64,
    txn_per_s: f64,
    ovn_heater_cpu_s: f64,
    ovsdb_server_cpu_s: f64,
    cpu_ratio_pct: Option<f64>,
}

#[allow(clippy::print_stdout)]
pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    if args.switches == 0 || args.ports < args.switches || args.in_flight == 0 || args.repeat == 0 || args.batch == 0 {
        return Err(Failure::bad_input(
            "--switches, --in-flight, --batch and --repeat must be at least 1, and --ports at least --switches",
        )
        .into());
    }
    for tool in ["ovsdb-server", "ovsdb-tool", "ovsdb-client"] {
        find_binary(tool).ok_or_else(|| {
            Failure::bad_input(format!(
                "{tool} not found in $PATH or /usr/sbin; apt-get install openvswitch-common"
            ))
        })?;
    }
    if !args.schema.is_file() {
        return Err(Failure::bad_input(format!(
            "schema {} not found; apt-get install ovn-common or pass --schema",
            args.schema.display()
        ))
        .into());
    }
    let mut figures = print_header(&args);
    let benches = async {
        if !args.skip_sync {
            figures.initial_sync = Some(initial_sync(&args).await?);
        }
        if !args.skip_txns {
            figures.transactions = pipelined_transactions(&args).await?;
        }
        anyhow::Ok(figures)
    };
    // On Ctrl-C or SIGTERM the benchmark future is dropped, which stops and removes its server
    // (SIGTERM's default action would end the process without that).
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot install the SIGTERM handler")?;
    tokio::select! {
        done = benches => {
            let figures = done?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&figures)?);
            }
            Ok(ExitCode::SUCCESS)
        }
        _ = tokio::signal::ctrl_c() => Err(Failure::interrupted().into()),
        _ = term.recv() => Err(Failure::interrupted().into()),
    }
}

#[allow(clippy::print_stdout)]
fn print_header(args: &Args) -> Figures {
    let version = Command::new(find_binary("ovsdb-server").unwrap_or_else(|| "ovsdb-server".into()))
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).lines().next().map(str::to_owned))
        .unwrap_or_default();
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    say!(args, "bench ovsdb: {version}; schema {}", args.schema.display());
    say!(
        args,
        "  build: {}; {cpus} CPUs",
        if cfg!(debug_assertions) {
            "debug (use --release for real figures)"
        } else {
            "release"
        },
    );
    Figures {
        ovsdb_server: version,
        schema: args.schema.display().to_string(),
        build,
        cpus,
        ..Figures::default()
    }
}

#[allow(clippy::print_stdout)]
async fn initial_sync(args: &Args) -> anyhow::Result<SyncFigures> {
    // Over TLS only when asked for TLS alone (`--transport ssl`); the reference dump too.
    let transport = if args.transport == Transports::Ssl {
        Transport::Ssl
    } else {
        Transport::Unix
    };
    let server = BenchServer::start("sync", &args.schema, transport)?;
    let client = Client::connect(server.options()?)
        .await
        .context("connect to the benchmark server")?;
    let started = Instant::now();
    populate(&client, args.switches, args.ports).await?;
    let populate_time = started.elapsed();
    client.close().await;
    let db_bytes = std::fs::metadata(server.db_path()).map_or(0, |m| m.len());
    say!(
        args,
        "(a) initial sync of {} Logical_Switch_Port over {} Logical_Switch (populated in {:.2} s, db file {:.1} MB), {}",
        args.ports,
        args.switches,
        populate_time.as_secs_f64(),
        db_bytes as f64 / 1e6,
        transport.label().trim()
    );

    let mut ours = Vec::new();
    let mut dump_text = Vec::new();
    let mut dump_json = Vec::new();
    let mut generic = Vec::new();
    let mut startup = Vec::new();
    for _ in 0..args.repeat {
        let (t, rows) = time_our_sync(server.options()?).await?;
        if rows != args.ports {
            return Err(Failure::environment(format!(
                "our replica holds {rows} Logical_Switch_Port rows, expected {}",
                args.ports
            ))
            .into());
        }
        ours.push(t);
        dump_text.push(time_ovsdb_client_dump(&server, false)?);
        dump_json.push(time_ovsdb_client_dump(&server, true)?);
        startup.push(time_ovsdb_client_startup(&server)?);
        if transport == Transport::Unix {
            generic.push(time_generic_sync(&server.dir.join("nb.sock"))?);
        }
    }
    let (ours, text, json) = (median(&mut ours), median(&mut dump_text), median(&mut dump_json));
    let startup = median(&mut startup);
    say!(
        args,
        "    ovn-heater Client::monitor, all tables: {:>8.3} s (median of {})",
        ours,
        args.repeat
    );
    say!(args, "    ovsdb-client dump:                     {:>8.3} s", text);
    say!(args, "    ovsdb-client --format=json dump:       {:>8.3} s", json);
    say!(
        args,
        "    ovsdb-client start-up (list-dbs):      {:>8.3} s, subtracted below",
        startup
    );
    say!(
        args,
        "    ratio ours / ovsdb-client dump without start-up: {:.2} (text), {:.2} (json)",
        ours / (text - startup).max(1e-6),
        ours / (json - startup).max(1e-6)
    );
    // Like for like: the same requests over the same socket in this process, the replies
    // parsed into serde_json values: what our typed replica costs over a generic client.
    let generic = (!generic.is_empty()).then(|| median(&mut generic));
    if let Some(generic) = generic {
        say!(args, "    in-process serde_json::Value client:   {:>8.3} s", generic);
        say!(
            args,
            "    ratio ours / in-process serde_json client: {:.2}",
            ours / generic
        );
    }
    Ok(SyncFigures {
        transport: transport.label().trim(),
        ports: args.ports,
        switches: args.switches,
        populate_s: populate_time.as_secs_f64(),
        db_file_mb: db_bytes as f64 / 1e6,
        repeat: args.repeat,
        ours_s: ours,
        ovsdb_client_dump_s: text,
        ovsdb_client_json_dump_s: json,
        ovsdb_client_startup_s: startup,
        ratio_vs_dump: ours / (text - startup).max(1e-6),
        ratio_vs_json_dump: ours / (json - startup).max(1e-6),
        serde_json_client_s: generic,
        ratio_vs_serde_json_client: generic.map(|g| ours / g),
    })
}

/// `ovsdb-client list-dbs` on the same server: process start, connect, one round trip — what
/// a dump pays besides the dump.
fn time_ovsdb_client_startup(server: &BenchServer) -> anyhow::Result<f64> {
    let mut cmd = Command::new(find_binary("ovsdb-client").expect("checked at start"));
    if let Some(files) = &server.client_files {
        cmd.args(files.daemon_args());
    }
    cmd.args(["list-dbs", &server.remote()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    let status = cmd.status().context("run ovsdb-client list-dbs")?;
    let elapsed = started.elapsed().as_secs_f64();
    if !status.success() {
        return Err(Failure::environment("ovsdb-client list-dbs failed").into());
    }
    Ok(elapsed)
}

/// The reference in process: connect to `socket`, `get_schema`, `monitor_cond_since` every
/// table with every column (what [`time_our_sync`] asks of this server), each reply cut out of the stream with the same
/// framer and parsed whole into a `serde_json::Value` — no typed rows, no replica.
fn time_generic_sync(socket: &Path) -> anyhow::Result<f64> {
    use std::io::{Read as _, Write as _};
    let started = Instant::now();
    let mut stream = std::os::unix::net::UnixStream::connect(socket).context("connect the reference client")?;
    let mut framer = ovsdb::jsonrpc::Framer::new();
    let mut chunk = vec![0u8; 256 * 1024];
    let mut call = |request: serde_json::Value| -> anyhow::Result<serde_json::Value> {
        stream.write_all(request.to_string().as_bytes())?;
        loop {
            while let Some(frame) = framer.next_frame().context("framing a reply")? {
                let reply: serde_json::Value = serde_json::from_slice(&frame).context("reply is not JSON")?;
                if reply["id"] == request["id"] {
                    return Ok(reply);
                }
            }
            let n = stream.read(&mut chunk)?;
            anyhow::ensure!(n > 0, "the server hung up");
            framer.extend(&chunk[..n]);
        }
    };
    let schema = call(serde_json::json!({"id": 1, "method": "get_schema", "params": ["OVN_Northbound"]}))?;
    let tables: serde_json::Map<String, serde_json::Value> = schema["result"]["tables"]
        .as_object()
        .map(|t| t.keys().map(|k| (k.clone(), serde_json::json!([{}]))).collect())
        .unwrap_or_default();
    // The method our client picks on this server, so the server does the same work for both.
    let reply = call(serde_json::json!({"id": 2, "method": "monitor_cond_since",
        "params": ["OVN_Northbound", "bench", tables, "00000000-0000-0000-0000-000000000000"]}))?;
    let elapsed = started.elapsed().as_secs_f64();
    if !reply["error"].is_null() {
        return Err(Failure::environment(format!("reference monitor failed: {}", reply["error"])).into());
    }
    Ok(elapsed)
}

/// Connect, fetch the schema, monitor every table; returns the time and the port count seen.
async fn time_our_sync(options: ClientOptions) -> anyhow::Result<(f64, usize)> {
    let started = Instant::now();
    let client = Client::connect(options.inactivity_probe(None))
        .await
        .context("connect for the initial sync")?;
    let schema = client.get_schema("OVN_Northbound").await?;
    let replica = client
        .monitor("OVN_Northbound", MonitorRequest::all_tables(&schema))
        .await
        .context("monitor of every table")?;
    let elapsed = started.elapsed().as_secs_f64();
    let rows = replica.len("Logical_Switch_Port");
    drop(replica);
    client.close().await;
    Ok((elapsed, rows))
}

fn time_ovsdb_client_dump(server: &BenchServer, json: bool) -> anyhow::Result<f64> {
    let mut cmd = Command::new(find_binary("ovsdb-client").expect("checked at start"));
    if json {
        cmd.arg("--format=json");
    }
    if let Some(files) = &server.client_files {
        cmd.args(files.daemon_args());
    }
    cmd.args(["dump", &server.remote(), "OVN_Northbound"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let out = cmd.output().context("run ovsdb-client dump")?;
    let elapsed = started.elapsed().as_secs_f64();
    if !out.status.success() {
        return Err(Failure::environment(format!(
            "ovsdb-client dump failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
        .into());
    }
    Ok(elapsed)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Writes the switches and their ports, about 2,000 rows per transaction, 4 transactions in flight.
async fn populate(client: &Client, switches: usize, ports: usize) -> anyhow::Result<()> {
    const ROWS_PER_TXN: usize = 2_000;
    const WINDOW: usize = 4;
    let mut pending = tokio::task::JoinSet::new();
    let mut txn = Transaction::new("OVN_Northbound");
    let mut rows_in_txn = 0;
    let mut port_index = 0;
    for s in 0..switches {
        // Spread the remainder so every port lands somewhere.
        let count = ports / switches + usize::from(s < ports % switches);
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            let port = txn.insert("Logical_Switch_Port", neutron_like_port(s, port_index));
            members.push(port.atom().cloned().expect("insert returns a named-uuid"));
            port_index += 1;
        }
        txn.insert(
            "Logical_Switch",
            Row::new()
                .with("name", format!("neutron-{}", fake_uuid(1, s)))
                .with("ports", Value::Set(members))
                .with(
                    "external_ids",
                    Value::string_map([("neutron:network_name", format!("net{s}"))]),
                ),
        );
        rows_in_txn += count + 1;
        if rows_in_txn >= ROWS_PER_TXN || s + 1 == switches {
            let full = std::mem::replace(&mut txn, Transaction::new("OVN_Northbound"));
            rows_in_txn = 0;
            let client = client.clone();
            pending.spawn(async move { client.transact(full).await });
            while pending.len() >= WINDOW {
                join_one(&mut pending).await?;
            }
        }
    }
    while !pending.is_empty() {
        join_one(&mut pending).await?;
    }
    Ok(())
}

async fn join_one<T: 'static>(set: &mut tokio::task::JoinSet<ovsdb::Result<T>>) -> anyhow::Result<()> {
    match set.join_next().await {
        Some(Ok(Ok(_))) | None => Ok(()),
        Some(Ok(Err(e))) => Err(anyhow::Error::new(e).context("a benchmark transaction failed")),
        Some(Err(e)) => Err(anyhow::Error::new(e).context("a benchmark task panicked")),
    }
}

/// A port with the columns and sizes Neutron writes (addresses, port security, external_ids).
fn neutron_like_port(switch: usize, index: usize) -> Row {
    let mac = format!(
        "fa:16:3e:{:02x}:{:02x}:{:02x}",
        (index >> 16) & 0xff,
        (index >> 8) & 0xff,
        index & 0xff
    );
    let ip = format!("10.{}.{}.{}", (switch >> 8) & 0xff, switch & 0xff, index % 250 + 2);
    let address = format!("{mac} {ip}");
    Row::new()
        .with("name", fake_uuid(2, index))
        .with("addresses", Value::Set(vec![Atom::from(address.clone())]))
        .with("port_security", Value::Set(vec![Atom::from(address)]))
        .with("enabled", true)
        .with(
            "external_ids",
            Value::string_map([
                ("neutron:cidrs", format!("{ip}/24")),
                ("neutron:device_id", fake_uuid(3, index)),
                ("neutron:device_owner", "compute:nova".to_owned()),
                ("neutron:network_name", format!("neutron-{}", fake_uuid(1, switch))),
                ("neutron:port_name", String::new()),
                ("neutron:project_id", "5d8e3c7f0b9a4e1c8d2f6a3b9c0e1d2f".to_owned()),
                ("neutron:revision_number", "2".to_owned()),
                ("neutron:security_group_ids", fake_uuid(4, 0)),
            ]),
        )
        .with(
            "options",
            Value::string_map([("requested-chassis", "hv1"), ("mcast_flood_reports", "true")]),
        )
}

/// A deterministic UUID-shaped string, distinct per (kind, n).
fn fake_uuid(kind: u32, n: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{n:012x}")
}

/// What one run of (b) measured.
struct TxnFigures {
    elapsed: f64,
    ours: f64,
    server: f64,
}

/// `--api`: which ways of pipelining (b) measures.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    Both,
    TransactMany,
    Transact,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transports {
    Unix,
    Tcp,
    Ssl,
    /// Unix and TCP.
    Both,
    /// Unix, TCP and TLS.
    All,
}

/// How a benchmark client reaches its private server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Unix,
    /// TCP on loopback: the way a CMS usually reaches the NB.
    Tcp,
    /// TLS on loopback (`pssl:`), as deployments with `enable_ssl` run.
    Ssl,
}

impl Transport {
    fn label(self) -> &'static str {
        match self {
            Transport::Unix => "unix",
            Transport::Tcp => "tcp ",
            Transport::Ssl => "ssl ",
        }
    }
}

/// How (b) keeps transactions in flight.
#[derive(Clone, Copy, Debug)]
enum Pipelining {
    /// `in_flight / size` concurrent `Client::transact_many` calls of `size` transactions.
    Batches { size: usize },
    /// One task per transaction, each calling `Client::transact`.
    TaskPerTransaction,
}

impl Pipelining {
    fn label(self) -> String {
        match self {
            Pipelining::Batches { size } => format!("transact_many, {size} per batch"),
            Pipelining::TaskPerTransaction => "transact, a task per txn ".to_owned(),
        }
    }
}

#[allow(clippy::print_stdout)]
async fn pipelined_transactions(args: &Args) -> anyhow::Result<Vec<TxnRow>> {
    let mut rows = Vec::new();
    say!(
        args,
        "(b) {} single-row insert transactions, {} in flight, fresh database each run",
        args.txns,
        args.in_flight
    );
    let batches = Pipelining::Batches {
        size: args.batch.min(args.in_flight),
    };
    let modes = match args.api {
        Api::Both => vec![batches, Pipelining::TaskPerTransaction],
        Api::TransactMany => vec![batches],
        Api::Transact => vec![Pipelining::TaskPerTransaction],
    };
    let transports = match args.transport {
        Transports::Unix => vec![Transport::Unix],
        Transports::Tcp => vec![Transport::Tcp],
        Transports::Ssl => vec![Transport::Ssl],
        Transports::Both => vec![Transport::Unix, Transport::Tcp],
        Transports::All => vec![Transport::Unix, Transport::Tcp, Transport::Ssl],
    };
    for mode in modes {
        for &transport in &transports {
            // Once on a single-threaded runtime of its own (client task and callers on one
            // thread, as an event-loop client would run), once on the binary's multi-threaded
            // runtime.
            let (schema, txns, in_flight) = (args.schema.clone(), args.txns, args.in_flight);
            let single = std::thread::spawn(move || -> anyhow::Result<TxnFigures> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .context("build a current-thread runtime")?;
                runtime.block_on(measure_transactions(&schema, transport, txns, in_flight, mode))
            })
            .join()
            .map_err(|_| Failure::environment("the single-threaded benchmark thread panicked"))??;
            let multi = measure_transactions(&args.schema, transport, args.txns, args.in_flight, mode).await?;
            for (name, f) in [("current-thread", single), ("multi-thread  ", multi)] {
                say!(
                    args,
                    "    {} {name}, {}: {:.3} s, {:>6.0} txn/s; CPU s: ovn-heater {:.3}, ovsdb-server {:.3}; ratio {:.1}% (goal <= 10%)",
                    transport.label(),
                    mode.label(),
                    f.elapsed,
                    args.txns as f64 / f.elapsed,
                    f.ours,
                    f.server,
                    if f.server > 0.0 { 100.0 * f.ours / f.server } else { f64::NAN }
                );
                rows.push(TxnRow {
                    transport: transport.label().trim(),
                    api: mode.label().trim().to_owned(),
                    runtime: name.trim(),
                    txns: args.txns,
                    in_flight: args.in_flight,
                    elapsed_s: f.elapsed,
                    txn_per_s: args.txns as f64 / f.elapsed,
                    ovn_heater_cpu_s: f.ours,
                    ovsdb_server_cpu_s: f.server,
                    cpu_ratio_pct: (f.server > 0.0).then(|| 100.0 * f.ours / f.server),
                });
            }
        }
    }
    Ok(rows)
}

/// The `i`th transaction of (b): one Logical_Switch, as Neutron would name it. Built the way
/// a client writing thousands of transactions should: short strings are inline `Str`s, and
/// numbers are rendered without the formatting machinery.
fn bench_transaction(i: usize) -> Transaction {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(i);
    let mut name = Str::const_new("bench-");
    name.push_str(digits);
    let mut network = Str::const_new("n");
    network.push_str(digits);
    let mut txn = Transaction::new("OVN_Northbound");
    txn.insert(
        "Logical_Switch",
        Row::new()
            .with("name", name)
            .with("external_ids", Value::string_map([("neutron:network_name", network)])),
    );
    txn
}

async fn measure_transactions(
    schema: &Path,
    transport: Transport,
    txns: usize,
    in_flight: usize,
    mode: Pipelining,
) -> anyhow::Result<TxnFigures> {
    let server = BenchServer::start("txns", schema, transport)?;
    let client = Client::connect(server.options()?)
        .await
        .context("connect to the benchmark server")?;
    // Fetch and cache the schema before timing, as a long-running client would have.
    client.get_schema("OVN_Northbound").await?;

    let (ours_before, server_before) = (own_cpu_seconds(), process_cpu_seconds(server.pid())?);
    let started = Instant::now();
    match mode {
        Pipelining::Batches { size } => {
            // Each caller takes the next `size` transactions, sends them and waits for all.
            let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let mut callers = tokio::task::JoinSet::new();
            for _ in 0..(in_flight / size).max(1) {
                let (client, next) = (client.clone(), next.clone());
                callers.spawn(async move {
                    loop {
                        let first = next.fetch_add(size, std::sync::atomic::Ordering::Relaxed);
                        if first >= txns {
                            return ovsdb::Result::Ok(());
                        }
                        let batch = (first..txns.min(first + size)).map(bench_transaction).collect();
                        for outcome in client.transact_many(batch).await {
                            outcome?;
                        }
                    }
                });
            }
            while !callers.is_empty() {
                join_one(&mut callers).await?;
            }
        }
        Pipelining::TaskPerTransaction => {
            let mut pending = tokio::task::JoinSet::new();
            for i in 0..txns {
                let txn = bench_transaction(i);
                let client = client.clone();
                pending.spawn(async move { client.transact(txn).await });
                while pending.len() >= in_flight {
                    join_one(&mut pending).await?;
                }
            }
            while !pending.is_empty() {
                join_one(&mut pending).await?;
            }
        }
    }
    let figures = TxnFigures {
        elapsed: started.elapsed().as_secs_f64(),
        ours: own_cpu_seconds() - ours_before,
        server: process_cpu_seconds(server.pid())? - server_before,
    };
    client.close().await;
    Ok(figures)
}

/// User + system CPU seconds of this process (all threads).
fn own_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we own; RUSAGE_SELF is always valid.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// CPU seconds of another process: the nanoseconds each of its threads has run, from
/// `/proc/<pid>/task/*/schedstat`; `/proc/<pid>/stat` (whole clock ticks, 10 ms apart, too
/// coarse for a run of half a second) only where schedstat is missing.
fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    if let Some(seconds) = schedstat_seconds(pid) {
        return Ok(seconds);
    }
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("read /proc/{pid}/stat"))?;
    // The command name may contain spaces; fields after it are space-separated.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of stat(5); `after` starts at field 3.
    let (Some(utime), Some(stime)) = (ticks(11), ticks(12)) else {
        return Err(Failure::environment(format!("cannot parse /proc/{pid}/stat")).into());
    };
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((utime + stime) / hz.max(1.0))
}

/// The threads alive now: one that exits between two readings takes its time with it, which
/// is fine for ovsdb-server (its threads live as long as it does).
fn schedstat_seconds(pid: u32) -> Option<f64> {
    let mut nanoseconds = 0u64;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        // A thread may exit between the listing and the read: it no longer counts.
        let Ok(schedstat) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        nanoseconds += schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(nanoseconds as f64 / 1e9)
}

/// A private standalone ovsdb-server in a temp dir; killed and removed on drop.
struct BenchServer {
    child: Child,
    dir: PathBuf,
    /// The loopback port it listens on, for [`Transport::Tcp`] and [`Transport::Ssl`].
    tcp_port: Option<u16>,
    /// Our certificate for its `pssl:` listener ([`Transport::Ssl`]), as files (for
    /// `ovsdb-client`) and loaded.
    client_files: Option<ovn_lab::TlsFiles>,
    client_tls: Option<ovsdb::TlsConfig>,
}

impl BenchServer {
    fn start(tag: &str, schema: &Path, transport: Transport) -> anyhow::Result<Self> {
        // A port the kernel just handed out and we released: another process could take it
        // before ovsdb-server binds it, in which case the server exits and the start fails
        // with its log named, which is rare enough for a benchmark.
        let tcp_port = match transport {
            Transport::Unix => None,
            Transport::Tcp | Transport::Ssl => Some(
                std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .context("find a free loopback port for the benchmark server")?
                    .port(),
            ),
        };
        let dir = std::env::temp_dir().join(format!("ovn-heater-bench-ovsdb-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let db = dir.join("nb.db");
        let out = Command::new(find_binary("ovsdb-tool").expect("checked at start"))
            .arg("create")
            .arg(&db)
            .arg(schema)
            .output()
            .context("run ovsdb-tool create")?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(Failure::environment(format!(
                "ovsdb-tool create failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
            .into());
        }
        let mut remote_arg = std::ffi::OsString::from("--remote=punix:");
        remote_arg.push(dir.join("nb.sock"));
        let mut tcp_arg: Vec<String> = Vec::new();
        let mut client_tls = None;
        let mut client_files = None;
        match (transport, tcp_port) {
            (Transport::Tcp, Some(port)) => tcp_arg.push(format!("--remote=ptcp:{port}:127.0.0.1")),
            (Transport::Ssl, Some(port)) => {
                // Certificates as the lab makes them (ECDSA P-256), for server and client.
                let pki = ovn_lab::LabPki::create(&dir.join("pki"), "bench")
                    .map_err(|e| Failure::environment(format!("cannot make the benchmark's certificates: {e}")))?;
                let issue = |name: &str| {
                    pki.issue(name)
                        .map_err(|e| Failure::environment(format!("cannot make the benchmark's certificates: {e}")))
                };
                tcp_arg.extend(issue("server")?.daemon_args());
                tcp_arg.push(format!("--remote=pssl:{port}:127.0.0.1"));
                let files = issue("client")?;
                client_tls = Some(files.client_tls().map_err(|e| Failure::environment(e.to_string()))?);
                client_files = Some(files);
            }
            _ => {}
        }
        let mut ctl_arg = std::ffi::OsString::from("--unixctl=");
        ctl_arg.push(dir.join("nb.ctl"));
        let mut log_arg = std::ffi::OsString::from("--log-file=");
        log_arg.push(dir.join("nb.log"));
        let mut cmd = Command::new(find_binary("ovsdb-server").expect("checked at start"));
        cmd.arg(&db)
            .args([remote_arg, ctl_arg, log_arg])
            .args(tcp_arg)
            .arg("-vconsole:off")
            .env("OVS_RUNDIR", &dir)
            .env("OVS_LOGDIR", &dir)
            .env("OVS_DBDIR", &dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        // The server must not outlive us, even if we are killed.
        // SAFETY: prctl is async-signal-safe and touches no parent memory.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
                Ok(())
            });
        }
        let child = cmd.spawn().context("start ovsdb-server")?;
        let mut server = BenchServer {
            child,
            dir,
            tcp_port,
            client_files,
            client_tls,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let listening = |server: &BenchServer| match server.tcp_port {
            None => std::os::unix::net::UnixStream::connect(server.dir.join("nb.sock")).is_ok(),
            Some(port) => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
        };
        while !listening(&server) {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(Failure::environment(format!(
                    "ovsdb-server exited ({status}) at start; see {}",
                    server.dir.join("nb.log").display()
                ))
                .into());
            }
            if Instant::now() > deadline {
                return Err(Failure::environment(format!(
                    "ovsdb-server did not start listening within 30 s; see {}",
                    server.dir.join("nb.log").display()
                ))
                .into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn remote(&self) -> String {
        match (self.tcp_port, &self.client_tls) {
            (None, _) => format!("unix:{}", self.dir.join("nb.sock").display()),
            (Some(port), None) => format!("tcp:127.0.0.1:{port}"),
            (Some(port), Some(_)) => format!("ssl:127.0.0.1:{port}"),
        }
    }
    /// Client options for this server (with our certificate for TLS), no reconnect.
    fn options(&self) -> anyhow::Result<ClientOptions> {
        let mut options = ClientOptions::new(&self.remote())?.reconnect(false);
        if let Some(tls) = &self.client_tls {
            options = options.tls(tls.clone());
        }
        Ok(options)
    }
    fn db_path(&self) -> PathBuf {
        self.dir.join("nb.db")
    }
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_seconds_of_a_process_are_read_in_nanoseconds() {
        // A busy child of our own: the test harness's threads come and go, a child's do not.
        let mut busy = Command::new("yes").stdout(Stdio::null()).spawn().expect("run yes(1)");
        let pid = busy.id();
        std::thread::sleep(Duration::from_millis(20));
        let start = schedstat_seconds(pid).expect("this kernel has /proc/<pid>/task/*/schedstat");
        std::thread::sleep(Duration::from_millis(50));
        let after = process_cpu_seconds(pid);
        let _ = busy.kill();
        let _ = busy.wait();
        // Not a timing goal: only that the reading moves between clock ticks.
        assert!(after.unwrap() > start);
    }
}
