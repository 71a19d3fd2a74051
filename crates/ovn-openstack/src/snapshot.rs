//! Normalized NB snapshots: the same stable text `neutron-reference/normalize.py` prints, so a
//! dump of our NB compares line for line with the dumps real Neutron produced, plus a readable
//! per-table, per-row diff of two snapshots.
//!
//! A snapshot is the JSON document `ovsdb::dump` writes (`{"database", "schema_version",
//! "step", "command", "tables": {TABLE: [ROW, ...]}}`, rows in OVSDB JSON notation). The
//! [`Normalizer`] is fed the snapshots of one run in step order and shares its names across
//! them: row UUIDs become `Table#N` labels, Neutron ids `<type:N>` tokens, MACs `<mac:N>`,
//! counters and timestamps placeholders. Labels and tokens are handed out in a canonical
//! order that depends on content only, never on the random UUIDs, which is what makes two
//! runs (or two NB writers) comparable.
//!
//! Must not know: how the dump was taken (a server, a file), processes, the CLI.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use ovsdb::dump::python_string;

/// The steps of the real-Neutron reference run (`neutron-reference/snapshots/<step>.{json,txt}`),
/// in order: the names `openstack walkthrough` gives its dumps.
pub const REFERENCE_STEPS: [&str; 14] = [
    "00-initial",
    "01-network-create",
    "02-subnet-create",
    "03-network-create-external",
    "04-subnet-create-external",
    "05-router-create",
    "06a-router-set-external-gateway",
    "06b-router-gateway-bound",
    "07-router-add-subnet",
    "08a-server-create-port-create",
    "08b-server-create-port-bind",
    "08c-server-create-port-up",
    "09-floating-ip-create",
    "10-floating-ip-associate",
];
use serde_json::Value as Json;

/// NB_Global external_ids keys Neutron rewrites on a timer (agent liveness), dropped.
pub const LIVENESS_KEYS: [&str; 2] = ["neutron:liveness_check_at", "neutron:metadata_liveness_check_at"];
const CFG_COUNTERS: [&str; 3] = ["nb_cfg", "sb_cfg", "hv_cfg"];
const KEEP_MACS: [&str; 2] = ["00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"];

/// external_ids / options keys (after any `prefix:`) whose value names a Neutron object type.
fn key_type(base: &str) -> Option<&'static str> {
    Some(match base {
        "security_group_rule_id" => "sgr",
        "security_group_id" | "security_group_ids" => "sg",
        "subnet_id" => "subnet",
        "fip_id" => "fip",
        "fip_port_id" => "port",
        "fip_network_id" => "net",
        "device_id" => "device",
        "network_id" | "network_name" => "net",
        "router_id" | "router_name" => "router",
        "port_id" | "port_name" => "port",
        "segment_id" => "segment",
        "qos_policy_id" => "qos",
        "subnet_pool_addr_scope4" | "subnet_pool_addr_scope6" | "address_scope_id" => "address-scope",
        "router-port" => "port",
        _ => return None,
    })
}

/// Tables whose `name` is `<prefix><uuid>` for a known Neutron type, prefixes tried in order.
const NAME_TYPES: [(&str, &[(&str, &str)]); 5] = [
    ("Logical_Switch", &[("neutron-", "net")]),
    ("Logical_Router", &[("neutron-", "router")]),
    ("Logical_Switch_Port", &[("provnet-", "segment"), ("", "port")]),
    ("Logical_Router_Port", &[("lrp-", "port")]),
    ("Port_Group", &[("pg_", "sg")]),
];

/// Errors reading a snapshot document.
#[derive(Debug, thiserror::Error)]
#[error("not an NB snapshot: {0}")]
pub struct SnapshotError(String);

// ------------------------------------------------------------------ parsed values --

/// One column value, parsed from OVSDB JSON notation.
#[derive(Clone, Debug)]
enum Val {
    Ref(String),
    Str(String),
    Int(i64),
    Real(f64),
    Bool(bool),
    Set(Vec<Val>),
    Map(Vec<(Val, Val)>),
    Other(Json),
}

fn parse(v: &Json) -> Val {
    if let Json::Array(a) = v {
        if a.len() == 2 {
            if let Json::String(tag) = &a[0] {
                match (tag.as_str(), &a[1]) {
                    ("uuid", Json::String(u)) => return Val::Ref(u.clone()),
                    ("set", Json::Array(items)) => return Val::Set(items.iter().map(parse).collect()),
                    ("map", Json::Array(items)) => {
                        return Val::Map(
                            items
                                .iter()
                                .filter_map(|p| match p {
                                    Json::Array(kv) if kv.len() == 2 => Some((parse(&kv[0]), parse(&kv[1]))),
                                    _ => None,
                                })
                                .collect(),
                        )
                    }
                    _ => {}
                }
            }
        }
    }
    match v {
        Json::String(s) => Val::Str(s.clone()),
        Json::Bool(b) => Val::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map(Val::Int)
            .unwrap_or_else(|| Val::Real(n.as_f64().unwrap_or(0.0))),
        other => Val::Other(other.clone()),
    }
}

struct ParsedRow {
    uuid: String,
    columns: BTreeMap<String, Val>,
}

// ------------------------------------------------------------------ string scanning --

fn is_hex(c: char) -> bool {
    c.is_ascii_hexdigit()
}

/// A UUID at `s[i..]` (dashes or underscores, the same separator throughout): its separator.
fn uuid_at(s: &[char], i: usize) -> Option<char> {
    const GROUPS: [usize; 5] = [8, 4, 4, 4, 12];
    if i + 36 > s.len() {
        return None;
    }
    let sep = s[i + 8];
    if sep != '-' && sep != '_' {
        return None;
    }
    let mut p = i;
    for (g, len) in GROUPS.iter().enumerate() {
        if g > 0 {
            if s[p] != sep {
                return None;
            }
            p += 1;
        }
        if !s[p..p + len].iter().all(|c| is_hex(*c)) {
            return None;
        }
        p += len;
    }
    Some(sep)
}

fn is_full_uuid(s: &str) -> bool {
    let chars: Vec<char> = s.chars().collect();
    chars.len() == 36 && uuid_at(&chars, 0).is_some()
}

/// A MAC address at `s[i..]` not glued to other hex digits or colons.
/// `(PREFIX, MAC)` when `text` is an IPv6 address whose interface id is the modified EUI-64 of
/// MAC (`ff:fe` in its middle); PREFIX is the address with the low 64 bits zeroed, printed
/// compressed (it ends in `::`), MAC lower case.
fn eui64_mac(text: &str) -> Option<(String, String)> {
    if text.matches(':').count() < 2 {
        return None;
    }
    let addr: std::net::Ipv6Addr = text.parse().ok()?;
    let o = addr.octets();
    let iid = &o[8..];
    if iid[3] != 0xff || iid[4] != 0xfe {
        return None;
    }
    let mac = [iid[0] ^ 0x02, iid[1], iid[2], iid[5], iid[6], iid[7]];
    let mac = mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
    let mut prefix = o;
    prefix[8..].fill(0);
    Some((std::net::Ipv6Addr::from(prefix).to_string(), mac))
}

fn mac_at(s: &[char], i: usize) -> bool {
    if i + 17 > s.len() {
        return false;
    }
    if i > 0 && (is_hex(s[i - 1]) || s[i - 1] == ':') {
        return false;
    }
    for k in 0..6 {
        let p = i + k * 3;
        if !(is_hex(s[p]) && is_hex(s[p + 1])) {
            return false;
        }
        if k < 5 && s[p + 2] != ':' {
            return false;
        }
    }
    !(i + 17 < s.len() && (is_hex(s[i + 17]) || s[i + 17] == ':'))
}

/// Length of an ISO-8601 date-time at `s[i..]` (`YYYY-MM-DD[T ]hh:mm:ss[.f][Z|±hh[:]mm]`).
fn time_at(s: &[char], i: usize) -> Option<usize> {
    let digits = |p: usize, n: usize| p + n <= s.len() && s[p..p + n].iter().all(|c| c.is_ascii_digit());
    let ch = |p: usize, c: char| p < s.len() && s[p] == c;
    let mut p = i;
    if !(digits(p, 4) && ch(p + 4, '-') && digits(p + 5, 2) && ch(p + 7, '-') && digits(p + 8, 2)) {
        return None;
    }
    p += 10;
    if !(ch(p, 'T') || ch(p, ' ')) {
        return None;
    }
    p += 1;
    if !(digits(p, 2) && ch(p + 2, ':') && digits(p + 3, 2) && ch(p + 5, ':') && digits(p + 6, 2)) {
        return None;
    }
    p += 8;
    if ch(p, '.') && digits(p + 1, 1) {
        p += 1;
        while p < s.len() && s[p].is_ascii_digit() {
            p += 1;
        }
    }
    if ch(p, 'Z') {
        p += 1;
    } else if ch(p, '+') || ch(p, '-') {
        if digits(p + 1, 2) && ch(p + 3, ':') && digits(p + 4, 2) {
            p += 6;
        } else if digits(p + 1, 2) && digits(p + 3, 2) {
            p += 5;
        }
    }
    Some(p - i)
}

/// Sort key that orders "@ACL#10" after "@ACL#9" (digit runs compare as numbers).
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<(u8, String)> {
        // Python's re.split(r'(\d+)') yields text, digits, text, ..., text (possibly empty).
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut in_digits = false;
        for c in s.chars() {
            let d = c.is_ascii_digit();
            if d != in_digits {
                out.push((u8::from(!in_digits), std::mem::take(&mut cur)));
                in_digits = d;
            }
            cur.push(c);
        }
        out.push((u8::from(!in_digits), cur));
        // (0, number) for digit runs, (1, text) for text; the first element is always text.
        out.into_iter()
            .map(|(is_text, t)| if is_text == 1 { (1, t) } else { (0, t) })
            .collect()
    }
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let ord = match (x.0, y.0) {
            (0, 0) => {
                let xs = x.1.trim_start_matches('0');
                let ys = y.1.trim_start_matches('0');
                xs.len().cmp(&ys.len()).then_with(|| xs.cmp(ys))
            }
            _ => x.0.cmp(&y.0).then_with(|| x.1.cmp(&y.1)),
        };
        if ord != std::cmp::Ordering::Equal {
            return ord;
        }
    }
    pa.len().cmp(&pb.len())
}

// ------------------------------------------------------------------ the normalizer --

/// Turns the snapshots of one run, fed in step order, into stable text (see module docs).
#[derive(Default)]
pub struct Normalizer {
    tokens: HashMap<String, (String, usize)>,
    counters: HashMap<String, usize>,
    macs: HashMap<String, usize>,
    row_labels: HashMap<String, String>,
    row_counters: HashMap<String, usize>,
    hints: HashMap<String, String>,
    uuid_table: HashMap<String, String>,
    /// The MACs of the document being normalized (an EUI-64 address of one is rewritten).
    doc_macs: HashSet<String>,
}

impl Normalizer {
    pub fn new() -> Self {
        Self::default()
    }

    fn token(&mut self, uuid: &str, hint: Option<&str>) -> (String, usize) {
        let key = uuid.to_lowercase().replace('_', "-");
        if let Some(t) = self.tokens.get(&key) {
            return t.clone();
        }
        let typ = self
            .hints
            .get(&key)
            .cloned()
            .or_else(|| hint.map(str::to_owned))
            .unwrap_or_else(|| "id".to_owned());
        let n = self.counters.entry(typ.clone()).or_insert(0);
        *n += 1;
        let t = (typ, *n);
        self.tokens.insert(key, t.clone());
        t
    }

    fn mac(&mut self, mac: &str) -> usize {
        let key = mac.to_lowercase();
        let next = self.macs.len() + 1;
        *self.macs.entry(key).or_insert(next)
    }

    /// Replaces volatile substrings; with `assign == false` unknown values are masked (`<net:?>`).
    fn norm_str(&mut self, s: &str, hint: Option<&str>, assign: bool) -> String {
        // Times first, then UUIDs, then MACs, each pass over the previous one's output.
        let chars: Vec<char> = s.chars().collect();
        let mut pass1 = String::with_capacity(s.len());
        let mut i = 0;
        while i < chars.len() {
            if let Some(n) = time_at(&chars, i) {
                pass1.push_str("<time>");
                i += n;
            } else {
                pass1.push(chars[i]);
                i += 1;
            }
        }
        let chars: Vec<char> = pass1.chars().collect();
        let mut pass2 = String::with_capacity(pass1.len());
        let mut i = 0;
        while i < chars.len() {
            if let Some(sep) = uuid_at(&chars, i) {
                let text: String = chars[i..i + 36].iter().collect();
                let key = text.to_lowercase().replace('_', "-");
                if let Some(label) = self.row_labels.get(&text) {
                    let _ = write!(pass2, "@{label}");
                } else if !assign && !self.tokens.contains_key(&key) {
                    let typ = self.hints.get(&key).map(String::as_str).or(hint).unwrap_or("id");
                    let _ = write!(pass2, "<{typ}:?>");
                } else {
                    let (typ, n) = self.token(&text, hint);
                    let suffix = if sep == '_' { ":underscored" } else { "" };
                    let _ = write!(pass2, "<{typ}:{n}{suffix}>");
                }
                i += 36;
            } else {
                pass2.push(chars[i]);
                i += 1;
            }
        }
        // Maximal runs of hex digits and colons: each is a MAC, an EUI-64 IPv6 address of a
        // known MAC, or left alone (tools/neutron-oracle/README.md, "Normalization").
        let chars: Vec<char> = pass2.chars().collect();
        let mut out = String::with_capacity(pass2.len());
        let mut i = 0;
        while i < chars.len() {
            if is_hex(chars[i]) || chars[i] == ':' {
                let start = i;
                while i < chars.len() && (is_hex(chars[i]) || chars[i] == ':') {
                    i += 1;
                }
                let run: String = chars[start..i].iter().collect();
                let rendered = self.hexcolon(&run, assign);
                out.push_str(&rendered);
            } else {
                out.push(chars[i]);
                i += 1;
            }
        }
        out
    }

    fn mac_render(&mut self, mac: &str, assign: bool) -> String {
        let lower = mac.to_lowercase();
        if KEEP_MACS.contains(&lower.as_str()) {
            mac.to_owned()
        } else if !assign && !self.macs.contains_key(&lower) {
            "<mac:?>".to_owned()
        } else {
            format!("<mac:{}>", self.mac(mac))
        }
    }

    fn hexcolon(&mut self, run: &str, assign: bool) -> String {
        let chars: Vec<char> = run.chars().collect();
        if chars.len() == 17 && mac_at(&chars, 0) {
            return self.mac_render(run, assign);
        }
        if let Some((prefix, mac)) = eui64_mac(run) {
            if self.macs.contains_key(&mac) || self.doc_macs.contains(&mac) {
                let rendered = self.mac_render(&mac, assign);
                return format!("{prefix}eui64({rendered})");
            }
        }
        run.to_owned()
    }

    /// Every MAC that occurs as a whole hex-colon run in a string of `v` (keys included).
    fn learn_macs(&mut self, v: &Json) {
        fn walk(v: &Json, out: &mut HashSet<String>) {
            match v {
                Json::String(s) => {
                    let chars: Vec<char> = s.chars().collect();
                    let mut i = 0;
                    while i < chars.len() {
                        if is_hex(chars[i]) || chars[i] == ':' {
                            let start = i;
                            while i < chars.len() && (is_hex(chars[i]) || chars[i] == ':') {
                                i += 1;
                            }
                            if i - start == 17 && mac_at(&chars[start..i], 0) {
                                out.insert(chars[start..i].iter().collect::<String>().to_lowercase());
                            }
                        } else {
                            i += 1;
                        }
                    }
                }
                Json::Array(a) => a.iter().for_each(|x| walk(x, out)),
                Json::Object(o) => o.iter().for_each(|(k, x)| {
                    walk(&Json::String(k.clone()), out);
                    walk(x, out);
                }),
                _ => {}
            }
        }
        let mut macs = HashSet::new();
        walk(v, &mut macs);
        self.doc_macs = macs;
    }

    fn learn_hints(&mut self, tables: &BTreeMap<String, Vec<ParsedRow>>) {
        let mut hints: HashMap<String, String> = HashMap::new();
        let mut add = |u: &str, typ: &str| {
            hints
                .entry(u.to_lowercase().replace('_', "-"))
                .or_insert_with(|| typ.to_owned());
        };
        for (table, prefixes) in NAME_TYPES {
            for row in tables.get(table).into_iter().flatten() {
                let Some(Val::Str(name)) = row.columns.get("name") else {
                    continue;
                };
                for (prefix, typ) in prefixes {
                    if let Some(rest) = name.strip_prefix(prefix) {
                        if is_full_uuid(rest) {
                            add(rest, typ);
                            break;
                        }
                    }
                }
            }
        }
        for rows in tables.values() {
            for row in rows {
                for col in ["external_ids", "options"] {
                    let Some(Val::Map(pairs)) = row.columns.get(col) else {
                        continue;
                    };
                    for (k, v) in pairs {
                        let (Val::Str(k), Val::Str(v)) = (k, v) else { continue };
                        let base = k.split_once(':').map(|(_, b)| b).unwrap_or(k);
                        let Some(typ) = key_type(base) else { continue };
                        let chars: Vec<char> = v.chars().collect();
                        let mut i = 0;
                        while i < chars.len() {
                            if uuid_at(&chars, i).is_some() {
                                let text: String = chars[i..i + 36].iter().collect();
                                add(&text, typ);
                                i += 36;
                            } else {
                                i += 1;
                            }
                        }
                    }
                }
            }
        }
        self.hints = hints;
    }

    fn value_key(&mut self, v: &Val, col: &str, table: &str, assign: bool) -> String {
        match v {
            Val::Ref(u) => {
                if let Some(l) = self.row_labels.get(u) {
                    format!("@{l}")
                } else if let Some(t) = self.uuid_table.get(u) {
                    format!("@{t}#?")
                } else {
                    "@<dangling>".to_owned()
                }
            }
            Val::Bool(b) => b.to_string(),
            Val::Int(i) => {
                if col.ends_with("_timestamp") && *i != 0 {
                    "<timestamp>".to_owned()
                } else if table == "NB_Global" && CFG_COUNTERS.contains(&col) {
                    "<counter>".to_owned()
                } else {
                    i.to_string()
                }
            }
            Val::Real(r) => {
                if col.ends_with("_timestamp") && *r != 0.0 {
                    "<timestamp>".to_owned()
                } else if table == "NB_Global" && CFG_COUNTERS.contains(&col) {
                    "<counter>".to_owned()
                } else {
                    format!("{r:?}")
                }
            }
            Val::Str(s) => python_string(&self.norm_str(s, None, assign)),
            Val::Set(_) | Val::Map(_) => "[]".to_owned(),
            Val::Other(j) => j.to_string(),
        }
    }

    fn render_row(&mut self, table: &str, row: &ParsedRow, assign: bool) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (col, v) in &row.columns {
            match v {
                Val::Map(pairs) => {
                    let mut items = Vec::new();
                    for (k, x) in pairs {
                        let kstr = if let Val::Str(k) = k { Some(k.as_str()) } else { None };
                        if table == "NB_Global"
                            && col == "external_ids"
                            && kstr.is_some_and(|k| LIVENESS_KEYS.contains(&k))
                        {
                            continue;
                        }
                        if table == "NB_Global" && col == "options" && kstr == Some("mac_prefix") {
                            items.push((self.value_key(k, col, table, assign), "\"<mac_prefix>\"".to_owned()));
                            continue;
                        }
                        let hint = kstr.and_then(|k| key_type(k.split_once(':').map(|(_, b)| b).unwrap_or(k)));
                        let xs = match x {
                            // Neutron lists a port's groups sorted by their (random) ids: only
                            // the set means something once the ids are tokens.
                            Val::Str(s) if kstr == Some("neutron:security_group_ids") => {
                                let normalized = self.norm_str(s, hint, assign);
                                let mut ids: Vec<&str> = normalized.split_whitespace().collect();
                                ids.sort_by(|a, b| natural_cmp(a, b));
                                python_string(&ids.join(" "))
                            }
                            Val::Str(s) => python_string(&self.norm_str(s, hint, assign)),
                            other => self.value_key(other, col, table, assign),
                        };
                        items.push((self.value_key(k, col, table, assign), xs));
                    }
                    items.sort();
                    for (ks, xs) in items {
                        out.push((format!("{col}[{ks}]"), xs));
                    }
                }
                Val::Set(items) => {
                    if items.is_empty() {
                        continue;
                    }
                    let mut vals: Vec<String> = items.iter().map(|x| self.value_key(x, col, table, assign)).collect();
                    vals.sort_by(|a, b| natural_cmp(a, b));
                    out.push((col.clone(), format!("[{}]", vals.join(", "))));
                }
                other => {
                    let s = self.value_key(other, col, table, assign);
                    out.push((col.clone(), s));
                }
            }
        }
        out
    }

    /// Normalizes one snapshot document (the next one of the run) to text.
    pub fn normalize(&mut self, doc: &Json) -> Result<String, SnapshotError> {
        let raw = doc
            .get("tables")
            .and_then(Json::as_object)
            .ok_or_else(|| SnapshotError("no \"tables\" object".into()))?;
        self.learn_macs(&doc["tables"]);
        let mut tables: BTreeMap<String, Vec<ParsedRow>> = BTreeMap::new();
        self.uuid_table.clear();
        for (table, rows) in raw {
            let rows = rows
                .as_array()
                .ok_or_else(|| SnapshotError(format!("table {table} is not a list of rows")))?;
            if rows.is_empty() {
                continue;
            }
            let mut parsed = Vec::new();
            for row in rows {
                let obj = row
                    .as_object()
                    .ok_or_else(|| SnapshotError(format!("a row of {table} is not an object")))?;
                let uuid = match obj.get("_uuid").map(parse) {
                    Some(Val::Ref(u)) => u,
                    _ => return Err(SnapshotError(format!("a row of {table} has no _uuid"))),
                };
                let columns = obj
                    .iter()
                    .filter(|(c, _)| c.as_str() != "_version" && c.as_str() != "_uuid")
                    .map(|(c, v)| (c.clone(), parse(v)))
                    .collect();
                self.uuid_table.insert(uuid.clone(), table.clone());
                parsed.push(ParsedRow { uuid, columns });
            }
            tables.insert(table.clone(), parsed);
        }
        self.learn_hints(&tables);

        // New rows are labelled in the order of their masked content, not of their UUIDs.
        for (table, rows) in &tables {
            let mut keyed = Vec::new();
            for r in rows {
                if self.row_labels.contains_key(&r.uuid) {
                    continue;
                }
                let rendered = self.render_row(table, r, false);
                let key = format!(
                    "[{}]",
                    rendered
                        .iter()
                        .map(|(c, v)| format!("[{}, {}]", python_string(c), python_string(v)))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                keyed.push((key, r.uuid.clone()));
            }
            keyed.sort_by(|a, b| a.0.cmp(&b.0));
            for (_, uuid) in keyed {
                let n = self.row_counters.entry(table.clone()).or_insert(0);
                *n += 1;
                self.row_labels.insert(uuid, format!("{table}#{n}"));
            }
        }

        let mut body = Vec::new();
        let mut summary = Vec::new();
        for (table, rows) in &tables {
            let mut order: Vec<(usize, &ParsedRow)> = rows
                .iter()
                .map(|r| {
                    let label = &self.row_labels[&r.uuid];
                    let n = label.rsplit('#').next().and_then(|n| n.parse().ok()).unwrap_or(0);
                    (n, r)
                })
                .collect();
            order.sort_by_key(|(n, _)| *n);
            summary.push(format!("{table}({})", rows.len()));
            body.push(String::new());
            body.push(format!("== {table} ({} rows)", rows.len()));
            for (_, r) in order {
                body.push(self.row_labels[&r.uuid].clone());
                for (col, val) in self.render_row(table, r, true) {
                    body.push(format!("  {col} = {val}"));
                }
            }
        }
        let step = doc.get("step").and_then(Json::as_str).unwrap_or("");
        let cmd = doc.get("command").and_then(Json::as_str).unwrap_or("");
        let version = match doc.get("schema_version") {
            Some(Json::String(s)) => s.clone(),
            Some(Json::Null) | None => "None".to_owned(),
            Some(other) => other.to_string(),
        };
        let mut lines = vec![format!("# {}", self.norm_str(cmd, None, true))];
        lines.push(format!(
            "# step: {step}   (normalized OVN_Northbound {version} dump; see normalize.py)"
        ));
        lines.push(format!("# tables: {}", summary.join(" ")));
        lines.extend(body);
        Ok(lines.join("\n") + "\n")
    }
}

/// Normalizes the snapshots of one run, in order, with shared names.
pub fn normalize_run<'a>(docs: impl IntoIterator<Item = &'a Json>) -> Result<Vec<String>, SnapshotError> {
    let mut n = Normalizer::new();
    docs.into_iter().map(|d| n.normalize(d)).collect()
}

// ------------------------------------------------------------------ diff --

/// One normalized row: its label and its `column = value` lines.
#[derive(Clone, Debug, PartialEq)]
struct TextRow {
    label: String,
    lines: Vec<String>,
}

/// Splits normalized text into table → rows (the header lines are dropped).
fn parse_text(text: &str) -> BTreeMap<String, Vec<TextRow>> {
    let mut out: BTreeMap<String, Vec<TextRow>> = BTreeMap::new();
    let mut table = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("== ") {
            table = rest.split(" (").next().unwrap_or(rest).to_owned();
            out.entry(table.clone()).or_default();
        } else if let Some(l) = line.strip_prefix("  ") {
            if let Some(row) = out.get_mut(&table).and_then(|rows| rows.last_mut()) {
                row.lines.push(l.to_owned());
            }
        } else if !line.is_empty() && !line.starts_with('#') {
            out.entry(table.clone()).or_default().push(TextRow {
                label: line.to_owned(),
                lines: Vec::new(),
            });
        }
    }
    out
}

/// The columns that identify a row of `table` across two databases (labels differ between
/// unrelated dumps, so rows are paired by what they are, not by their label).
fn identity(table: &str, row: &TextRow) -> String {
    let pick = |cols: &[&str]| -> String {
        let mut id = Vec::new();
        for c in cols {
            let prefix = format!("{c} = ");
            if let Some(l) = row.lines.iter().find(|l| l.starts_with(&prefix)) {
                id.push(l.clone());
            }
        }
        id.join("; ")
    };
    let id = match table {
        "ACL" => pick(&["direction", "priority", "match"]),
        "NAT" => pick(&["type", "logical_ip", "external_ip"]),
        "DHCP_Options" => pick(&["cidr", "external_ids[\"subnet_id\"]"]),
        "Logical_Router_Static_Route" => pick(&["ip_prefix", "nexthop", "route_table"]),
        "NB_Global" => "NB_Global".to_owned(),
        _ => pick(&["name"]),
    };
    if id.is_empty() {
        row.lines.join("; ")
    } else {
        id
    }
}

/// Replaces the numbers of tokens and labels (`<sg:2>` → `<sg:#>`, `@ACL#4` → `@ACL#`).
fn mask_numbers(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        out.push(chars[i]);
        let after_token = chars[i] == ':' && out[..out.len() - 1].rfind('<').is_some_and(|p| !out[p..].contains('>'));
        if (chars[i] == '#' || after_token) && i + 1 < chars.len() && chars[i + 1].is_ascii_digit() {
            if after_token {
                out.push('#');
            }
            i += 1;
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    out
}

/// The differences of two normalized snapshots, table by table (only tables that differ).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct SnapshotDiff {
    pub tables: Vec<TableDiff>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct TableDiff {
    pub table: String,
    /// In the order [`SnapshotDiff::to_text`] prints them: rows of A (changed or only in A),
    /// then rows only in B.
    pub rows: Vec<RowDifference>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RowDifference {
    /// Only in A: its label and `column = value` lines.
    Removed { label: String, lines: Vec<String> },
    /// Only in B.
    Added { label: String, lines: Vec<String> },
    /// In both (paired by `identity`, e.g. `name = "x"`), with the columns that differ.
    Changed {
        label: String,
        identity: String,
        columns: Vec<ColumnChange>,
    },
}

/// A column's value in A and in B (`None`: the column is not in that row).
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ColumnChange {
    pub column: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

impl SnapshotDiff {
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The readable form: per table, rows only in A (`-`), only in B (`+`), and changed
    /// columns of rows present in both (`~`).
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for t in &self.tables {
            let _ = writeln!(out, "== {}", t.table);
            for row in &t.rows {
                match row {
                    RowDifference::Removed { label, lines } | RowDifference::Added { label, lines } => {
                        let sign = if matches!(row, RowDifference::Removed { .. }) {
                            '-'
                        } else {
                            '+'
                        };
                        let _ = writeln!(out, "{sign} {label}");
                        for l in lines {
                            let _ = writeln!(out, "{sign}   {l}");
                        }
                    }
                    RowDifference::Changed {
                        label,
                        identity,
                        columns,
                    } => {
                        let _ = writeln!(out, "~ {label} ({identity})");
                        for c in columns {
                            let _ = match (&c.a, &c.b) {
                                (Some(x), Some(y)) => writeln!(out, "    {}: {x} -> {y}", c.column),
                                (Some(x), None) => writeln!(out, "    - {} = {x}", c.column),
                                (None, Some(y)) => writeln!(out, "    + {} = {y}", c.column),
                                (None, None) => Ok(()),
                            };
                        }
                    }
                }
            }
        }
        out
    }
}

/// Like [`diff`], but token and label numbers are ignored: for two snapshots normalized
/// separately (two NB writers), where symmetric objects (two projects' default groups) may
/// get their numbers in either order.
pub fn diff_ignoring_numbers(a: &str, b: &str) -> SnapshotDiff {
    let mask = |t: &str| t.lines().map(mask_numbers).collect::<Vec<_>>().join("\n");
    diff(&mask(a), &mask(b))
}

/// [`diff_ignoring_numbers`] as text.
pub fn diff_text_ignoring_numbers(a: &str, b: &str) -> String {
    diff_ignoring_numbers(a, b).to_text()
}

/// [`diff`] as text; empty when the snapshots are equal (header lines aside).
pub fn diff_text(a: &str, b: &str) -> String {
    diff(a, b).to_text()
}

/// The per-table, per-row differences of two normalized snapshots.
pub fn diff(a: &str, b: &str) -> SnapshotDiff {
    let (ta, tb) = (parse_text(a), parse_text(b));
    let mut out = SnapshotDiff::default();
    let tables: std::collections::BTreeSet<&String> = ta.keys().chain(tb.keys()).collect();
    let empty = Vec::new();
    for table in tables {
        let ra = ta.get(table).unwrap_or(&empty);
        let rb = tb.get(table).unwrap_or(&empty);
        let mut rows = Vec::new();
        let mut used_b = vec![false; rb.len()];
        for row_a in ra {
            let ida = identity(table, row_a);
            // Among rows with the same identity, pair with the most similar one.
            let found = rb
                .iter()
                .enumerate()
                .filter(|(i, r)| !used_b[*i] && identity(table, r) == ida)
                .max_by_key(|(i, r)| {
                    let common = r.lines.iter().filter(|l| row_a.lines.contains(l)).count();
                    (common, usize::MAX - i)
                })
                .map(|(i, _)| i);
            match found {
                Some(i) => {
                    used_b[i] = true;
                    let row_b = &rb[i];
                    let cols = |r: &TextRow| -> BTreeMap<String, String> {
                        r.lines
                            .iter()
                            .map(|l| match l.split_once(" = ") {
                                Some((c, v)) => (c.to_owned(), v.to_owned()),
                                None => (l.clone(), String::new()),
                            })
                            .collect()
                    };
                    let (ca, cb) = (cols(row_a), cols(row_b));
                    let keys: std::collections::BTreeSet<&String> = ca.keys().chain(cb.keys()).collect();
                    let columns: Vec<ColumnChange> = keys
                        .into_iter()
                        .filter(|k| ca.get(*k) != cb.get(*k))
                        .map(|k| ColumnChange {
                            column: k.clone(),
                            a: ca.get(k).cloned(),
                            b: cb.get(k).cloned(),
                        })
                        .collect();
                    if !columns.is_empty() {
                        let label = if row_a.label == row_b.label {
                            row_a.label.clone()
                        } else {
                            format!("{} / {}", row_a.label, row_b.label)
                        };
                        rows.push(RowDifference::Changed {
                            label,
                            identity: ida,
                            columns,
                        });
                    }
                }
                None => rows.push(RowDifference::Removed {
                    label: row_a.label.clone(),
                    lines: row_a.lines.clone(),
                }),
            }
        }
        for (i, row_b) in rb.iter().enumerate() {
            if !used_b[i] {
                rows.push(RowDifference::Added {
                    label: row_b.label.clone(),
                    lines: row_b.lines.clone(),
                });
            }
        }
        if !rows.is_empty() {
            out.tables.push(TableDiff {
                table: table.clone(),
                rows,
            });
        }
    }
    out
}

/// Strips what `ovn-heater snapshot` leaves out of a raw dump: empty tables and Neutron's
/// NB_Global liveness keys.
pub fn strip_for_snapshot(doc: &mut Json) {
    let Some(tables) = doc.get_mut("tables").and_then(Json::as_object_mut) else {
        return;
    };
    tables.retain(|_, rows| rows.as_array().is_some_and(|r| !r.is_empty()));
    if let Some(rows) = tables.get_mut("NB_Global").and_then(Json::as_array_mut) {
        for row in rows {
            let Some(ext) = row.get_mut("external_ids") else {
                continue;
            };
            if let Some(pairs) = ext.get_mut(1).and_then(Json::as_array_mut) {
                pairs.retain(|p| {
                    !p.get(0)
                        .and_then(Json::as_str)
                        .is_some_and(|k| LIVENESS_KEYS.contains(&k))
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scanners_follow_normalize_py() {
        let s: Vec<char> = "pg_0a1b2c3d_0a1b_0a1b_0a1b_0a1b2c3d4e5f".chars().collect();
        assert_eq!(uuid_at(&s, 3), Some('_'));
        assert_eq!(uuid_at(&s, 0), None);
        let m: Vec<char> = "fa:16:3e:00:00:01 x".chars().collect();
        assert!(mac_at(&m, 0));
        let glued: Vec<char> = "1fa:16:3e:00:00:01".chars().collect();
        assert!(!mac_at(&glued, 1));
        let t: Vec<char> = "2024-05-01 10:00:00.123456+00:00".chars().collect();
        assert_eq!(time_at(&t, 0), Some(t.len()));
        assert_eq!(natural_cmp("@ACL#10", "@ACL#9"), std::cmp::Ordering::Greater);
        assert_eq!(python_string("a\"é"), "\"a\\\"\\u00e9\"");
    }

    #[test]
    fn diff_reports_changed_columns() {
        let a = "# x\n\n== T (1 rows)\nT#1\n  name = \"a\"\n  v = 1\n";
        let b = "# y\n\n== T (1 rows)\nT#1\n  name = \"a\"\n  v = 2\n";
        assert_eq!(diff_text(a, b), "== T\n~ T#1 (name = \"a\")\n    v: 1 -> 2\n");
        assert_eq!(diff_text(a, a), "");
        assert_eq!(
            mask_numbers("x = [@ACL#10, <sg:2:underscored>] \"a:1\""),
            "x = [@ACL#, <sg:#:underscored>] \"a:1\""
        );
    }

    #[test]
    fn eui64_addresses_are_written_with_their_mac_token() {
        let doc = serde_json::json!({"tables": {"Logical_Switch_Port": [{
            "_uuid": ["uuid", "0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"],
            "addresses": "fa:16:3e:12:34:56 10.0.0.5 2001:db8::f816:3eff:fe12:3456",
            "external_ids": ["map", [["neutron:cidrs", "2001:db8::f816:3eff:fe12:3456/64 fd00:1:2:3:f816:3eff:fe12:3456/64"],
                                      ["x", "2001:db8::fa16:3eff:fe12:3456 2001:db8::1 ::/0"]]]
        }]}});
        let text = Normalizer::new().normalize(&doc).unwrap();
        assert!(text.contains("<mac:1> 10.0.0.5 2001:db8::eui64(<mac:1>)"), "{text}");
        assert!(
            text.contains("2001:db8::eui64(<mac:1>)/64 fd00:1:2:3::eui64(<mac:1>)/64"),
            "{text}"
        );
        assert!(
            text.contains("2001:db8::fa16:3eff:fe12:3456 2001:db8::1 ::/0"),
            "{text}"
        );
    }
}
