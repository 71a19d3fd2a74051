//! Many emulated chassis in one process: naming, encap addresses, a staggered start so a
//! thousand connections do not hit the SB at once, aggregate status, and a clean stop.
//!
//! Must not know: processes, signals, how the farm is reported.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use ovsdb::{Client, ClientOptions, TlsConfig, UpdateCache, UpdateCacheStats};

use crate::chassis::{ChassisStatus, ConnectPolicy, EmulatedChassis};
use crate::error::{Error, Result};
use crate::keep::any_chassis_keeps_table;
use crate::sb::{MonitorPlan, SB_DB};
use crate::spec::ChassisSpec;

/// How a farm's chassis look and behave. Chassis `i` (1-based) is named `<prefix>-<i>`, its
/// hostname is the same, and its encap IP is `first_encap_ip + i - 1`.
#[derive(Clone, Debug)]
pub struct FarmOptions {
    pub monitor_all: bool,
    pub bridge_mappings: String,
    pub cms_options: String,
    /// The first `gateways` chassis are gateway chassis.
    pub gateways: usize,
    pub processing_delay: Duration,
    /// Claim ports whose `requested-chassis` names a chassis of the farm (see
    /// [`ChassisSpec::bind_requested`]).
    pub bind_requested: bool,
    /// New connections per second at start (0: all at once). Reconnects are each chassis's own.
    pub connect_rate: f64,
    /// Encap IPs are only written to the SB; the default is in 198.18.0.0/15 (RFC 2544, never
    /// routed). Two farms on one SB need ranges that do not overlap.
    pub first_encap_ip: Ipv4Addr,
    pub encap_type: String,
    pub datapath_type: String,
    pub inactivity_probe: Option<Duration>,
    /// Each chassis's key and certificate for `ssl:` remotes, by chassis name.
    pub tls: Option<ChassisTls>,
    /// Decode each SB update once for every chassis that received the same bytes (see
    /// [`ovsdb::UpdateCache`]); off, each chassis decodes its own copy.
    pub shared_decode: bool,
}

/// Gives each chassis of a farm its own TLS identity (SB RBAC lets a chassis write only the
/// rows of the name in its certificate's CN), e.g. files named after the chassis, or
/// certificates made in memory.
#[derive(Clone)]
pub struct ChassisTls(Arc<IdentityOf>);

/// Chassis name → its TLS identity.
type IdentityOf = dyn Fn(&str) -> ovsdb::Result<TlsConfig> + Send + Sync;

impl ChassisTls {
    pub fn new(identity: impl Fn(&str) -> ovsdb::Result<TlsConfig> + Send + Sync + 'static) -> Self {
        ChassisTls(Arc::new(identity))
    }
    /// The identity of chassis `name`.
    pub fn for_chassis(&self, name: &str) -> ovsdb::Result<TlsConfig> {
        (self.0)(name)
    }
}

impl std::fmt::Debug for ChassisTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChassisTls(per chassis)")
    }
}

impl Default for FarmOptions {
    fn default() -> Self {
        FarmOptions {
            monitor_all: false,
            bridge_mappings: String::new(),
            cms_options: String::new(),
            gateways: 0,
            processing_delay: Duration::ZERO,
            bind_requested: false,
            connect_rate: 100.0,
            first_encap_ip: Ipv4Addr::new(198, 18, 0, 1),
            encap_type: "geneve".into(),
            datapath_type: "system".into(),
            inactivity_probe: Some(Duration::from_secs(5)),
            tls: None,
            shared_decode: true,
        }
    }
}

impl FarmOptions {
    /// The spec of chassis `index` (1-based) of a farm named `prefix`.
    pub fn spec(&self, prefix: &str, index: usize) -> Result<ChassisSpec> {
        let name = format!("{prefix}-{index}");
        let offset = u32::try_from(index.saturating_sub(1)).unwrap_or(u32::MAX);
        let ip = u32::from(self.first_encap_ip)
            .checked_add(offset)
            .ok_or_else(|| Error::InvalidSpec {
                chassis: name.clone(),
                why: format!(
                    "encap IPs starting at {} run out before chassis {index}",
                    self.first_encap_ip
                ),
            })?;
        let mut spec = ChassisSpec::new(name, Ipv4Addr::from(ip).to_string());
        spec.monitor_all = self.monitor_all;
        spec.bridge_mappings = self.bridge_mappings.clone();
        spec.cms_options = self.cms_options.clone();
        spec.is_gateway = index <= self.gateways;
        spec.processing_delay = self.processing_delay;
        spec.bind_requested = self.bind_requested;
        spec.encap_type = self.encap_type.clone();
        spec.datapath_type = self.datapath_type.clone();
        spec.validate()?;
        Ok(spec)
    }
}

/// The farm's chassis added up.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FarmStatus {
    pub chassis: usize,
    pub connected: usize,
    pub registered: usize,
    pub ports_bound: usize,
    pub ports_claimed: usize,
    pub ports_up: usize,
    pub reconnects: u64,
    pub errors: u64,
    /// The lowest `nb_cfg` acked by any chassis (what northd's `hv_cfg` follows).
    pub min_nb_cfg: Option<i64>,
    /// SB rows held in memory by all chassis together.
    pub rows_held: usize,
    pub last_error: Option<String>,
    /// What the farm's shared decoding did (`None` when each chassis decodes its own updates).
    pub shared_decode: Option<UpdateCacheStats>,
}

impl FarmStatus {
    pub fn add(&mut self, s: &ChassisStatus) {
        self.chassis += 1;
        self.connected += usize::from(s.connected);
        self.registered += usize::from(s.chassis_uuid.is_some());
        self.ports_bound += s.ports_bound;
        self.ports_claimed += s.ports_claimed;
        self.ports_up += s.ports_up;
        self.reconnects += s.reconnects;
        self.errors += s.errors;
        self.min_nb_cfg = match (self.min_nb_cfg, s.nb_cfg_acked) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.rows_held += s.rows_held.values().sum::<usize>();
        if s.last_error.is_some() {
            self.last_error.clone_from(&s.last_error);
        }
    }
}

/// N emulated chassis as tokio tasks of this process, each with its own SB connection.
pub struct Farm {
    chassis: Vec<EmulatedChassis>,
    update_cache: Option<Arc<UpdateCache>>,
}

impl Farm {
    /// Starts `count` chassis against `sb_remotes`. Connects once first to read the SB schema
    /// (so an unreachable SB or a wrong database fails here, with its cause), then starts the
    /// chassis at `options.connect_rate` per second. Returns once all are started, not
    /// registered: see [`Farm::wait_registered`].
    pub async fn start(sb_remotes: &str, count: usize, prefix: &str, options: FarmOptions) -> Result<Farm> {
        let southbound = |source| Error::Southbound {
            remote: sb_remotes.to_owned(),
            source: Box::new(source),
        };
        let specs = (1..=count)
            .map(|i| options.spec(prefix, i))
            .collect::<Result<Vec<_>>>()?;
        let identity = |name: &str| match &options.tls {
            Some(tls) => tls.for_chassis(name).map(Some).map_err(|source| Error::Ovsdb {
                chassis: name.to_owned(),
                source: Box::new(source),
            }),
            None => Ok(None),
        };
        let mut probe_options = ClientOptions::new(sb_remotes).map_err(southbound)?;
        // The schema is read as the first chassis: under RBAC every chassis may read.
        if let Some(tls) = identity(&specs.first().map(|s| s.name.clone()).unwrap_or_default())? {
            probe_options = probe_options.tls(tls);
        }
        let probe = Client::connect(probe_options).await.map_err(southbound)?;
        let schema = probe.get_schema(SB_DB).await.map_err(southbound);
        probe.close().await;
        let plan = Arc::new(MonitorPlan::for_schema(&schema?));
        let interval = if options.connect_rate > 0.0 {
            Duration::from_secs_f64(1.0 / options.connect_rate)
        } else {
            Duration::ZERO
        };
        let update_cache = options
            .shared_decode
            .then(|| Arc::new(UpdateCache::new().tables(any_chassis_keeps_table)));
        let chassis = specs
            .into_iter()
            .enumerate()
            .map(|(i, spec)| {
                let policy = ConnectPolicy {
                    plan: Some(plan.clone()),
                    start_delay: interval * u32::try_from(i).unwrap_or(u32::MAX),
                    inactivity_probe: options.inactivity_probe,
                    tls: identity(&spec.name)?,
                    update_cache: update_cache.clone(),
                };
                EmulatedChassis::start(sb_remotes, spec, policy)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Farm { chassis, update_cache })
    }

    pub fn chassis(&self) -> &[EmulatedChassis] {
        &self.chassis
    }

    /// The chassis named `name`.
    pub fn get(&self, name: &str) -> Result<&EmulatedChassis> {
        self.chassis
            .iter()
            .find(|c| c.name() == name)
            .ok_or_else(|| Error::UnknownChassis(name.to_owned()))
    }

    pub fn status(&self) -> FarmStatus {
        let mut total = FarmStatus::default();
        for c in &self.chassis {
            total.add(&c.status());
        }
        total.shared_decode = self.update_cache.as_ref().map(|c| c.stats());
        total
    }

    /// Waits until every chassis has registered.
    pub async fn wait_registered(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        for c in &self.chassis {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            c.wait_registered(left).await.map_err(|e| match e {
                Error::Timeout { .. } => Error::Timeout {
                    what: format!(
                        "all {} chassis to register ({} did)",
                        self.chassis.len(),
                        self.status().registered
                    ),
                    after: timeout,
                },
                other => other,
            })?;
        }
        Ok(())
    }

    /// Stops every chassis; with `cleanup` each removes its rows first (see
    /// [`EmulatedChassis::stop`]). Returns the first cleanup error, after stopping all.
    pub async fn stop(self, cleanup: bool) -> Result<()> {
        let mut tasks = tokio::task::JoinSet::new();
        for c in self.chassis {
            tasks.spawn(async move { c.stop(cleanup).await });
        }
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            if let Ok(Err(e)) = joined {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_numbered_from_one_with_consecutive_ips() {
        let options = FarmOptions {
            gateways: 1,
            ..FarmOptions::default()
        };
        let first = options.spec("emu", 1).unwrap();
        let second = options.spec("emu", 2).unwrap();
        assert_eq!((first.name.as_str(), first.encap_ip.as_str()), ("emu-1", "198.18.0.1"));
        assert_eq!(
            (second.name.as_str(), second.encap_ip.as_str()),
            ("emu-2", "198.18.0.2")
        );
        assert!(first.is_gateway && !second.is_gateway);
    }

    #[test]
    fn encap_range_overflow_is_an_error() {
        let options = FarmOptions {
            first_encap_ip: Ipv4Addr::new(255, 255, 255, 255),
            ..FarmOptions::default()
        };
        assert!(options.spec("emu", 2).is_err());
    }
}
