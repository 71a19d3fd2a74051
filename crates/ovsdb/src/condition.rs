//! `where` clauses and monitor conditions: `[column, function, value]`.

use serde_json::Value as Json;

use crate::datum::{Str, Uuid, Value};

/// A comparison function of RFC 7047 §5.1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Lt,
    Le,
    Eq,
    Ne,
    Ge,
    Gt,
    Includes,
    Excludes,
}

impl Function {
    pub fn as_str(self) -> &'static str {
        match self {
            Function::Lt => "<",
            Function::Le => "<=",
            Function::Eq => "==",
            Function::Ne => "!=",
            Function::Ge => ">=",
            Function::Gt => ">",
            Function::Includes => "includes",
            Function::Excludes => "excludes",
        }
    }
}

/// One condition. A monitor condition may also be the constant `true` or `false`.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    Compare {
        column: Str,
        function: Function,
        value: Value,
    },
    /// Only in monitor_cond conditions: match every row (`true`) or none (`false`).
    Constant(bool),
}

impl Condition {
    pub fn new(column: impl Into<Str>, function: Function, value: impl Into<Value>) -> Self {
        Condition::Compare {
            column: column.into(),
            function,
            value: value.into(),
        }
    }
    /// `column == value`
    pub fn eq(column: impl Into<Str>, value: impl Into<Value>) -> Self {
        Self::new(column, Function::Eq, value)
    }
    /// `column != value`
    pub fn ne(column: impl Into<Str>, value: impl Into<Value>) -> Self {
        Self::new(column, Function::Ne, value)
    }
    /// `column includes value`
    pub fn includes(column: impl Into<Str>, value: impl Into<Value>) -> Self {
        Self::new(column, Function::Includes, value)
    }
    /// `_uuid == uuid`
    pub fn uuid(uuid: Uuid) -> Self {
        Self::eq("_uuid", Value::uuid(uuid))
    }
    /// The condition as a JSON value (the wire form, via its `Serialize` impl).
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).expect("a condition always serializes")
    }
}

impl serde::Serialize for Condition {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Condition::Compare {
                column,
                function,
                value,
            } => (column, function.as_str(), value).serialize(s),
            Condition::Constant(b) => s.serialize_bool(*b),
        }
    }
}
