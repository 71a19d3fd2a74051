//! Everything that can be wrong with a scenario file or a `--set` override, one variant per
//! kind of mistake so each gets its own message (and its own test).
//!
//! Must not know: how a scenario is run.

/// A scenario the runner must refuse, with the fix in the message.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ScenarioError {
    #[error("cannot read scenario file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{origin} is not valid YAML: {reason}")]
    Syntax { origin: String, reason: String },
    #[error("{what} must be a mapping of keys to values, got {found}")]
    NotAMapping { what: String, found: String },
    #[error("unknown section `{section}`{}", did_you_mean(.suggestion))]
    UnknownSection {
        section: String,
        suggestion: Option<String>,
    },
    #[error("unknown key `{key}` in section `{section}`{}", hint_for_key(.suggestion, .belongs_to))]
    UnknownKey {
        section: String,
        key: String,
        suggestion: Option<String>,
        /// The key is valid, but in another section.
        belongs_to: Option<String>,
    },
    #[error("`{section}.{key}` must be {expected}, got {found}")]
    WrongType {
        section: String,
        key: String,
        expected: String,
        found: String,
    },
    #[error("`{section}.{key}` = {value} is out of range: {allowed}")]
    OutOfRange {
        section: String,
        key: String,
        value: String,
        allowed: String,
    },
    #[error("`{section}.{key}` = {value:?} is not a valid {family} CIDR (expected e.g. {}): {reason}", cidr_example(.family))]
    BadCidr {
        section: String,
        key: String,
        value: String,
        family: &'static str,
        reason: String,
    },
    #[error("`{section}.{key}` = {value:?} is not one of {choices}")]
    BadChoice {
        section: String,
        key: String,
        value: String,
        choices: String,
    },
    /// Upstream ovn-heater knows the key (or value), ovn-heater here does not implement it.
    #[error("`{what}` is not supported by this ovn-heater: {why}")]
    Unsupported { what: String, why: String },
    #[error("the scenario has no workload: add a section `openstack_base` (the base test) or `base_openstack` (upstream's OpenStack test)")]
    NoWorkload,
    #[error("{0}")]
    Conflict(String),
    #[error("bad --set {arg:?}: {reason} (expected --set section.key=value, e.g. --set cluster.n_workers=4)")]
    BadOverride { arg: String, reason: String },
}

fn cidr_example(family: &str) -> &'static str {
    if family == "IPv6" {
        "16::/64"
    } else {
        "16.0.0.0/16"
    }
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_deref()
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}

fn hint_for_key(suggestion: &Option<String>, belongs_to: &Option<String>) -> String {
    match (belongs_to, suggestion) {
        (Some(section), _) => format!(" (it belongs in section `{section}`)"),
        (None, s) => did_you_mean(s),
    }
}

/// The closest candidate by edit distance, if it is close enough to be a plausible typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let limit = (word.len() / 3).clamp(1, 4);
    candidates
        .into_iter()
        .map(|c| (ovsdb::schema::edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits() {
        use ovsdb::schema::edit_distance;
        assert_eq!(edit_distance("n_hypervisor", "n_hypervisors"), 1);
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("", "ab"), 2);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_ignores_far_candidates() {
        assert_eq!(
            closest("n_hypervisor", ["n_hypervisors", "n_network_nodes"]),
            Some("n_hypervisors".into())
        );
        assert_eq!(closest("zzzzzz", ["n_hypervisors"]), None);
    }

    #[test]
    fn unknown_key_message_names_key_section_and_suggestion() {
        let e = ScenarioError::UnknownKey {
            section: "openstack_base".into(),
            key: "n_hypervisor".into(),
            suggestion: Some("n_hypervisors".into()),
            belongs_to: None,
        };
        assert_eq!(
            e.to_string(),
            "unknown key `n_hypervisor` in section `openstack_base` (did you mean `n_hypervisors`?)"
        );
    }
}
