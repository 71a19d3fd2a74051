//! OVSDB values in RFC 7047 notation: atoms, sets, maps, rows.
//!
//! A [`Value`] keeps the shape the wire gave it (a bare atom, a `["set", …]` or a
//! `["map", …]`), so a row read from the server serializes back byte-for-byte equal.
//! Helpers ([`Value::atoms`], [`Value::map_get`], …) treat a bare atom as a one-element
//! set, which is how OVSDB itself sees it.
//!
//! Must not know: any schema's table or column names.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

use crate::error::{Error, Result};

/// The string of atoms, column, table and database names: up to 24 bytes are stored inline,
/// so the short strings OVSDB is made of (names, keys, most values) cost no allocation.
/// It derefs to `str`; build one with `Str::from("…")`, from a `String`, or with
/// [`format_str!`](crate::format_str).
pub type Str = compact_str::CompactString;

/// A row UUID.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(pub uuid::Uuid);

impl Uuid {
    /// A fresh random (v4) UUID.
    pub fn new_v4() -> Self {
        Uuid(uuid::Uuid::new_v4())
    }
    /// Parses the canonical 36-character form.
    pub fn parse(s: &str) -> Result<Self> {
        uuid::Uuid::parse_str(s)
            .map(Uuid)
            .map_err(|_| Error::Decode(format!("{s:?} is not a UUID")))
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}
impl Serialize for Uuid {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.0.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()))
    }
}
/// A bare UUID string (as in update keys), not the `["uuid", …]` atom notation.
impl<'de> Deserialize<'de> for Uuid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = CowStr::deserialize(d)?;
        Uuid::parse(&s.0).map_err(de::Error::custom)
    }
}
impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// One scalar OVSDB value.
#[derive(Clone, Debug, PartialEq)]
pub enum Atom {
    Integer(i64),
    Real(f64),
    Boolean(bool),
    String(Str),
    Uuid(Uuid),
    /// A `["named-uuid", NAME]` reference to a row inserted earlier in the same transaction.
    NamedUuid(Str),
}

impl Atom {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Atom::String(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Atom::Integer(i) => Some(*i),
            _ => None,
        }
    }
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Atom::Boolean(b) => Some(*b),
            _ => None,
        }
    }
    pub fn as_uuid(&self) -> Option<Uuid> {
        match self {
            Atom::Uuid(u) => Some(*u),
            _ => None,
        }
    }
    /// As a JSON value in RFC 7047 notation (via the `Serialize` impl, the one wire form).
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).expect("an atom always serializes")
    }
    pub fn from_json(j: &Json) -> Result<Self> {
        match j {
            Json::Bool(b) => Ok(Atom::Boolean(*b)),
            Json::String(s) => Ok(Atom::String(Str::from(s.as_str()))),
            Json::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Atom::Integer(i))
                } else if let Some(f) = n.as_f64() {
                    Ok(Atom::Real(f))
                } else {
                    Err(Error::Decode(format!("number {n} out of range")))
                }
            }
            Json::Array(a) if a.len() == 2 => match (&a[0], &a[1]) {
                (Json::String(tag), Json::String(s)) if tag == "uuid" => Ok(Atom::Uuid(Uuid::parse(s)?)),
                (Json::String(tag), Json::String(s)) if tag == "named-uuid" => {
                    Ok(Atom::NamedUuid(Str::from(s.as_str())))
                }
                _ => Err(Error::Decode(format!("not an atom: {j}"))),
            },
            _ => Err(Error::Decode(format!("not an atom: {j}"))),
        }
    }
    /// Like [`Atom::from_json`], but takes ownership so strings are moved, not copied.
    pub fn from_json_owned(j: Json) -> Result<Self> {
        match j {
            Json::String(s) => Ok(Atom::String(Str::from(s))),
            Json::Array(mut a) if a.len() == 2 => {
                let second = a.pop();
                match (a[0].as_str(), second) {
                    (Some("uuid"), Some(Json::String(s))) => Ok(Atom::Uuid(Uuid::parse(&s)?)),
                    (Some("named-uuid"), Some(Json::String(s))) => Ok(Atom::NamedUuid(Str::from(s))),
                    (_, second) => {
                        a.extend(second);
                        Err(Error::Decode(format!("not an atom: {}", Json::Array(a))))
                    }
                }
            }
            other => Atom::from_json(&other),
        }
    }
}

impl From<&str> for Atom {
    fn from(s: &str) -> Self {
        Atom::String(Str::from(s))
    }
}
impl From<String> for Atom {
    fn from(s: String) -> Self {
        Atom::String(Str::from(s))
    }
}
impl From<Str> for Atom {
    fn from(s: Str) -> Self {
        Atom::String(s)
    }
}
impl From<i64> for Atom {
    fn from(i: i64) -> Self {
        Atom::Integer(i)
    }
}
impl From<bool> for Atom {
    fn from(b: bool) -> Self {
        Atom::Boolean(b)
    }
}
impl From<Uuid> for Atom {
    fn from(u: Uuid) -> Self {
        Atom::Uuid(u)
    }
}

/// A column value: an atom, a set or a map, in the shape the wire used.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Atom(Atom),
    Set(Vec<Atom>),
    Map(Vec<(Atom, Atom)>),
}

impl Value {
    /// The empty set (`["set", []]`): how an optional column says "no value".
    pub fn empty_set() -> Self {
        Value::Set(Vec::new())
    }
    pub fn empty_map() -> Self {
        Value::Map(Vec::new())
    }
    /// A set of atoms.
    pub fn set<I: IntoIterator<Item = A>, A: Into<Atom>>(items: I) -> Self {
        Value::Set(items.into_iter().map(Into::into).collect())
    }
    /// A map from string pairs, e.g. `external_ids`.
    pub fn string_map<I, K, V>(items: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<Str>,
        V: Into<Str>,
    {
        Value::Map(
            items
                .into_iter()
                .map(|(k, v)| (Atom::String(k.into()), Atom::String(v.into())))
                .collect(),
        )
    }
    /// A reference to one row.
    pub fn uuid(u: Uuid) -> Self {
        Value::Atom(Atom::Uuid(u))
    }
    /// A reference to a row inserted earlier in the same transaction.
    pub fn named_uuid(name: impl Into<Str>) -> Self {
        Value::Atom(Atom::NamedUuid(name.into()))
    }

    /// The atoms of a set (a bare atom is a one-element set; a map yields nothing).
    pub fn atoms(&self) -> &[Atom] {
        match self {
            Value::Atom(a) => std::slice::from_ref(a),
            Value::Set(s) => s,
            Value::Map(_) => &[],
        }
    }
    /// The only atom, when the value holds exactly one.
    pub fn atom(&self) -> Option<&Atom> {
        match self.atoms() {
            [a] => Some(a),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        self.atom().and_then(Atom::as_str)
    }
    pub fn as_i64(&self) -> Option<i64> {
        self.atom().and_then(Atom::as_i64)
    }
    pub fn as_bool(&self) -> Option<bool> {
        self.atom().and_then(Atom::as_bool)
    }
    pub fn as_uuid(&self) -> Option<Uuid> {
        self.atom().and_then(Atom::as_uuid)
    }
    /// Pairs of a map (empty for atoms and sets).
    pub fn pairs(&self) -> &[(Atom, Atom)] {
        match self {
            Value::Map(m) => m,
            _ => &[],
        }
    }
    /// Looks up a string key in a map.
    pub fn map_get(&self, key: &str) -> Option<&Atom> {
        self.pairs()
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }
    /// Looks up a string key in a string→string map.
    pub fn map_get_str(&self, key: &str) -> Option<&str> {
        self.map_get(key).and_then(Atom::as_str)
    }
    /// A string→string map as a sorted map.
    pub fn to_string_map(&self) -> BTreeMap<String, String> {
        self.pairs()
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
            .collect()
    }
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Atom(_) => false,
            Value::Set(s) => s.is_empty(),
            Value::Map(m) => m.is_empty(),
        }
    }

    /// As a JSON value in RFC 7047 notation (via the `Serialize` impl, the one wire form).
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).expect("a value always serializes")
    }
    pub fn from_json(j: &Json) -> Result<Self> {
        if let Json::Array(a) = j {
            if a.len() == 2 {
                match (a[0].as_str(), &a[1]) {
                    (Some("set"), Json::Array(items)) => {
                        return items.iter().map(Atom::from_json).collect::<Result<_>>().map(Value::Set)
                    }
                    (Some("map"), Json::Array(items)) => {
                        return items
                            .iter()
                            .map(|p| match p {
                                Json::Array(kv) if kv.len() == 2 => {
                                    Ok((Atom::from_json(&kv[0])?, Atom::from_json(&kv[1])?))
                                }
                                _ => Err(Error::Decode(format!("not a map pair: {p}"))),
                            })
                            .collect::<Result<_>>()
                            .map(Value::Map)
                    }
                    _ => {}
                }
            }
        }
        Atom::from_json(j).map(Value::Atom)
    }
    /// Like [`Value::from_json`], but takes ownership so strings are moved, not copied
    /// (decoding large monitor updates is dominated by this).
    pub fn from_json_owned(j: Json) -> Result<Self> {
        let Json::Array(mut a) = j else {
            return Atom::from_json_owned(j).map(Value::Atom);
        };
        if a.len() == 2 && matches!(&a[1], Json::Array(_)) {
            match a[0].as_str() {
                Some("set") => {
                    let Some(Json::Array(items)) = a.pop() else {
                        unreachable!()
                    };
                    return items
                        .into_iter()
                        .map(Atom::from_json_owned)
                        .collect::<Result<_>>()
                        .map(Value::Set);
                }
                Some("map") => {
                    let Some(Json::Array(items)) = a.pop() else {
                        unreachable!()
                    };
                    return items
                        .into_iter()
                        .map(|p| match p {
                            Json::Array(mut kv) if kv.len() == 2 => {
                                let v = kv.pop().unwrap_or_default();
                                let k = kv.pop().unwrap_or_default();
                                Ok((Atom::from_json_owned(k)?, Atom::from_json_owned(v)?))
                            }
                            _ => Err(Error::Decode(format!("not a map pair: {p}"))),
                        })
                        .collect::<Result<_>>()
                        .map(Value::Map);
                }
                _ => {}
            }
        }
        Atom::from_json_owned(Json::Array(a)).map(Value::Atom)
    }
}

impl<A: Into<Atom>> From<A> for Value {
    fn from(a: A) -> Self {
        Value::Atom(a.into())
    }
}

// The serde impls below read and write the wire notation directly, without building a
// `serde_json::Value` first: decoding big monitor updates and encoding many small
// transactions is most of this crate's CPU time.

impl Serialize for Atom {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Atom::Integer(i) => s.serialize_i64(*i),
            Atom::Real(r) => s.serialize_f64(*r),
            Atom::Boolean(b) => s.serialize_bool(*b),
            Atom::String(v) => s.serialize_str(v),
            Atom::Uuid(u) => (
                "uuid",
                u.0.hyphenated().encode_lower(&mut uuid::Uuid::encode_buffer()) as &str,
            )
                .serialize(s),
            Atom::NamedUuid(n) => ("named-uuid", n.as_str()).serialize(s),
        }
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Atom(a) => a.serialize(s),
            Value::Set(items) => ("set", items).serialize(s),
            Value::Map(pairs) => ("map", pairs).serialize(s),
        }
    }
}

/// A JSON array `[tag, ...]` seen while decoding an atom or value: what the tag announced.
enum Tagged {
    Atom(Atom),
    Set(Vec<Atom>),
    Map(Vec<(Atom, Atom)>),
}

struct TaggedVisitor;

impl<'de> Visitor<'de> for TaggedVisitor {
    type Value = Tagged;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an OVSDB atom, set or map")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> std::result::Result<Tagged, E> {
        Ok(Tagged::Atom(Atom::Boolean(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Tagged, E> {
        Ok(Tagged::Atom(Atom::Integer(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Tagged, E> {
        i64::try_from(v)
            .map(|i| Tagged::Atom(Atom::Integer(i)))
            .map_err(|_| E::custom(format!("number {v} out of range")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Tagged, E> {
        Ok(Tagged::Atom(Atom::Real(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Tagged, E> {
        Ok(Tagged::Atom(Atom::String(Str::from(v))))
    }
    fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Tagged, E> {
        Ok(Tagged::Atom(Atom::String(Str::from(v))))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Tagged, A::Error> {
        let tag: std::borrow::Cow<'de, str> = seq
            .next_element::<CowStr<'de>>()?
            .ok_or_else(|| de::Error::custom("empty array is not an OVSDB value"))?
            .0;
        let out = match &*tag {
            "uuid" => {
                let s: CowStr<'de> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("uuid without value"))?;
                Tagged::Atom(Atom::Uuid(Uuid::parse(&s.0).map_err(de::Error::custom)?))
            }
            "named-uuid" => {
                let s: Str = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("named-uuid without value"))?;
                Tagged::Atom(Atom::NamedUuid(s))
            }
            "set" => {
                let items: Vec<AtomDe> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("set without elements"))?;
                Tagged::Set(items.into_iter().map(|a| a.0).collect())
            }
            "map" => {
                let items: Vec<(AtomDe, AtomDe)> = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::custom("map without pairs"))?;
                Tagged::Map(items.into_iter().map(|(k, v)| (k.0, v.0)).collect())
            }
            other => return Err(de::Error::custom(format!("unknown OVSDB value tag {other:?}"))),
        };
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::custom(format!("{tag} array with more than 2 elements")));
        }
        Ok(out)
    }
}

/// A string that borrows from the input when it can (tags, UUIDs).
struct CowStr<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> std::result::Result<CowStr<'de>, E> {
                Ok(CowStr(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<CowStr<'de>, E> {
                Ok(CowStr(std::borrow::Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<CowStr<'de>, E> {
                Ok(CowStr(std::borrow::Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// An atom, refusing sets and maps.
struct AtomDe(Atom);

impl<'de> Deserialize<'de> for AtomDe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        match d.deserialize_any(TaggedVisitor)? {
            Tagged::Atom(a) => Ok(AtomDe(a)),
            _ => Err(de::Error::custom("expected an atom, got a set or map")),
        }
    }
}

impl<'de> Deserialize<'de> for Atom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        AtomDe::deserialize(d).map(|a| a.0)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Ok(match d.deserialize_any(TaggedVisitor)? {
            Tagged::Atom(a) => Value::Atom(a),
            Tagged::Set(s) => Value::Set(s),
            Tagged::Map(m) => Value::Map(m),
        })
    }
}

/// A row: column name → value. Rows from the server may carry `_uuid` and `_version`.
///
/// The columns are kept sorted by name in one vector: a row has a handful to a few dozen
/// columns, so a binary search beats a tree or a hash, and building, copying and dropping
/// a row is one allocation. Iteration is in name order.
///
/// ```
/// use ovsdb::{Row, Value};
///
/// let mut row = Row::new().with("name", "sw0").with("external_ids", Value::string_map([("k", "v")]));
/// row.set("name", "sw1");
/// assert_eq!(row.get("name").and_then(Value::as_str), Some("sw1"));
/// assert_eq!(row.column_names().collect::<Vec<_>>(), ["external_ids", "name"]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// Sorted by name, no name twice.
    columns: Vec<(Str, Value)>,
}

impl Row {
    pub fn new() -> Self {
        Row::default()
    }
    /// An empty row with room for `columns` columns.
    pub fn with_capacity(columns: usize) -> Self {
        Row {
            columns: Vec::with_capacity(columns),
        }
    }
    /// Builder-style [`Row::set`]: `Row::new().with("name", "sw0")`.
    pub fn with(mut self, column: impl Into<Str>, value: impl Into<Value>) -> Self {
        self.set(column, value);
        self
    }
    /// Sets `column` to `value`, returning the value it had.
    pub fn set(&mut self, column: impl Into<Str>, value: impl Into<Value>) -> Option<Value> {
        let (column, value) = (column.into(), value.into());
        // Rows are often built in name order: then the new column goes last, no search.
        if self.columns.last().is_none_or(|(last, _)| *last < column) {
            self.columns.push((column, value));
            return None;
        }
        match self.position(&column) {
            Ok(i) => Some(std::mem::replace(&mut self.columns[i].1, value)),
            Err(i) => {
                self.columns.insert(i, (column, value));
                None
            }
        }
    }
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.position(column).ok().map(|i| &self.columns[i].1)
    }
    pub fn get_mut(&mut self, column: &str) -> Option<&mut Value> {
        self.position(column).ok().map(|i| &mut self.columns[i].1)
    }
    pub fn contains(&self, column: &str) -> bool {
        self.position(column).is_ok()
    }
    /// Removes `column`, returning its value.
    pub fn remove(&mut self, column: &str) -> Option<Value> {
        self.position(column).ok().map(|i| self.columns.remove(i).1)
    }
    /// The row's own `_uuid`, when the server sent it.
    pub fn uuid(&self) -> Option<Uuid> {
        self.get("_uuid").and_then(Value::as_uuid)
    }
    /// Columns and values, in name order.
    pub fn columns(&self) -> impl ExactSizeIterator<Item = (&Str, &Value)> + DoubleEndedIterator + Clone {
        self.columns.iter().map(|(c, v)| (c, v))
    }
    /// Column names, in order.
    pub fn column_names(&self) -> impl ExactSizeIterator<Item = &str> + DoubleEndedIterator + Clone {
        self.columns.iter().map(|(c, _)| c.as_str())
    }
    /// How many columns the row has.
    pub fn len(&self) -> usize {
        self.columns.len()
    }
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }
    /// As a JSON value in RFC 7047 notation (via the `Serialize` impl, the one wire form).
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).expect("a row always serializes")
    }
    pub fn from_json(j: &Json) -> Result<Self> {
        let obj = j
            .as_object()
            .ok_or_else(|| Error::Decode(format!("a row must be a JSON object, got {j}")))?;
        obj.iter()
            .map(|(k, v)| Ok((Str::from(k.as_str()), Value::from_json(v)?)))
            .collect::<Result<_>>()
    }
    /// Like [`Row::from_json`], but takes ownership so strings are moved, not copied.
    pub fn from_json_owned(j: Json) -> Result<Self> {
        let Json::Object(obj) = j else {
            return Err(Error::Decode(format!("a row must be a JSON object, got {j}")));
        };
        obj.into_iter()
            .map(|(k, v)| Ok((Str::from(k), Value::from_json_owned(v)?)))
            .collect::<Result<_>>()
    }

    fn position(&self, column: &str) -> std::result::Result<usize, usize> {
        let key = column.as_bytes();
        // The same order as comparing the names, but most probes differ in their first byte
        // and are decided without a call to memcmp (a farm's filters look columns up per row
        // per chassis: this was a quarter of its CPU).
        self.columns.binary_search_by(|(c, _)| {
            let c = c.as_bytes();
            match (c.first(), key.first()) {
                (Some(a), Some(b)) if a != b => a.cmp(b),
                _ => compare_short(c, key),
            }
        })
    }
    /// Restores the invariant after columns were appended in any order: sorted, and of a
    /// name given twice the last value wins (as a JSON object's last key does).
    fn sort_columns(&mut self) {
        if self.columns.is_sorted_by(|(a, _), (b, _)| a < b) {
            return;
        }
        // Stable, so equal names keep their order and the last one can be kept.
        self.columns.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut kept: Vec<(Str, Value)> = Vec::with_capacity(self.columns.len());
        for (column, value) in self.columns.drain(..) {
            match kept.last_mut() {
                Some((last, last_value)) if *last == column => *last_value = value,
                _ => kept.push((column, value)),
            }
        }
        self.columns = kept;
    }
}

impl<C: Into<Str>, V: Into<Value>> FromIterator<(C, V)> for Row {
    fn from_iter<I: IntoIterator<Item = (C, V)>>(iter: I) -> Self {
        let mut row = Row {
            columns: iter.into_iter().map(|(c, v)| (c.into(), v.into())).collect(),
        };
        row.sort_columns();
        row
    }
}

impl<C: Into<Str>, V: Into<Value>> Extend<(C, V)> for Row {
    /// Sets each column in turn: later values replace earlier ones.
    fn extend<I: IntoIterator<Item = (C, V)>>(&mut self, iter: I) {
        for (column, value) in iter {
            self.set(column, value);
        }
    }
}

impl IntoIterator for Row {
    type Item = (Str, Value);
    type IntoIter = std::vec::IntoIter<(Str, Value)>;
    /// Columns and values, in name order.
    fn into_iter(self) -> Self::IntoIter {
        self.columns.into_iter()
    }
}

/// Byte-wise order of two column names, compared in line: names are short, and the call to
/// `memcmp` cost more than the comparison (a farm looks columns up per row per chassis).
fn compare_short(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

impl<'a> IntoIterator for &'a Row {
    type Item = (&'a Str, &'a Value);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, (Str, Value)>, fn(&'a (Str, Value)) -> (&'a Str, &'a Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.columns.iter().map(|(c, v)| (c, v))
    }
}

impl Serialize for Row {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_map(self.columns())
    }
}
impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct RowVisitor;
        impl<'de> Visitor<'de> for RowVisitor {
            type Value = Row;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a row (a JSON object of column values)")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Row, A::Error> {
                let mut row = Row::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((column, value)) = map.next_entry::<Str, Value>()? {
                    row.columns.push((column, value));
                }
                row.sort_columns();
                Ok(row)
            }
        }
        d.deserialize_map(RowVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_names_compare_as_bytes() {
        let names = [
            "",
            "a",
            "ab",
            "abc",
            "b",
            "chassis",
            "requested_additional_chassis",
            "requested_chassis",
            "up",
            "_uuid",
            "é",
        ];
        for a in names {
            for b in names {
                assert_eq!(
                    compare_short(a.as_bytes(), b.as_bytes()),
                    a.as_bytes().cmp(b.as_bytes()),
                    "{a:?} {b:?}"
                );
            }
        }
    }

    const SAMPLES: &[&str] = &[
        r#"1"#,
        r#"-7"#,
        r#"2.5"#,
        r#"true"#,
        r#""a\"b""#,
        r#"["uuid","11111111-2222-3333-4444-555555555555"]"#,
        r#"["named-uuid","row0"]"#,
        r#"["set",[]]"#,
        r#"["set",["a","b"]]"#,
        r#"["set",[["uuid","11111111-2222-3333-4444-555555555555"]]]"#,
        r#"["map",[]]"#,
        r#"["map",[["k","v"],[1,["uuid","11111111-2222-3333-4444-555555555555"]]]]"#,
    ];

    #[test]
    fn serde_matches_the_json_conversions() {
        for s in SAMPLES {
            let j: Json = serde_json::from_str(s).unwrap();
            let via_json = Value::from_json(&j).unwrap();
            let direct: Value = serde_json::from_str(s).unwrap();
            assert_eq!(direct, via_json, "{s}");
            assert_eq!(Value::from_json_owned(j.clone()).unwrap(), via_json, "{s}");
            assert_eq!(serde_json::to_value(&direct).unwrap(), j, "{s}");
            assert_eq!(serde_json::to_value(&direct).unwrap(), direct.to_json(), "{s}");
        }
        let row: Row = serde_json::from_str(r#"{"name":"x","tags":["set",["a"]],"n":3}"#).unwrap();
        assert_eq!(serde_json::to_value(&row).unwrap(), row.to_json());
        assert_eq!(Row::from_json(&row.to_json()).unwrap(), row);
    }

    #[test]
    fn malformed_values_are_errors() {
        for s in [
            r#"[]"#,
            r#"["set"]"#,
            r#"["set",[["set",[]]]]"#,
            r#"["uuid","nope"]"#,
            r#"["bogus",1]"#,
            r#"["map",[["k"]]]"#,
            r#"["set",[],1]"#,
            r#"{"a":1}"#,
            r#"null"#,
        ] {
            assert!(serde_json::from_str::<Value>(s).is_err(), "{s}");
        }
        assert!(serde_json::from_str::<Row>(r#"[1]"#).is_err());
    }

    #[test]
    fn rows_keep_their_columns_sorted_whatever_the_order_they_come_in() {
        let mut row = Row::new().with("m", 1).with("z", 2).with("a", 3);
        assert_eq!(row.column_names().collect::<Vec<_>>(), ["a", "m", "z"]);
        assert_eq!(row.set("m", 4), Some(Value::from(1)));
        assert_eq!(row.set("b", 5), None);
        assert_eq!(row.column_names().collect::<Vec<_>>(), ["a", "b", "m", "z"]);
        assert_eq!(row.get("m"), Some(&Value::from(4)));
        assert_eq!(row.remove("a"), Some(Value::from(3)));
        assert_eq!(row.remove("a"), None);
        assert!(!row.contains("a") && row.contains("z"));
        assert_eq!(row.len(), 3);

        // Built or parsed out of order, with a name twice: sorted, and the last value wins.
        let collected: Row = [("y", 1), ("x", 2), ("y", 3)].into_iter().collect();
        let parsed: Row = serde_json::from_str(r#"{"y":1,"x":2,"y":3}"#).unwrap();
        assert_eq!(collected, parsed);
        assert_eq!(
            parsed
                .columns()
                .map(|(c, v)| (c.as_str(), v.clone()))
                .collect::<Vec<_>>(),
            [("x", Value::from(2)), ("y", Value::from(3))]
        );
        assert_eq!(Row::new().with("x", 2).with("y", 3), parsed);

        let mut extended = Row::new().with("b", 1);
        extended.extend([("a", 2), ("b", 3)]);
        assert_eq!(extended, Row::new().with("a", 2).with("b", 3));
    }
}
