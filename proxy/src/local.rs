//! Commands the proxy answers itself: connection commands (shared with the shard through
//! `ringcache_common::connection`), COMMAND, CONFIG GET, and its INFO.

use std::fmt::Write as _;

use ringcache_common::command::{self, CommandSpec};
use ringcache_common::connection;
use ringcache_common::info::{human_bytes, Info, Sections};
use ringcache_common::resp::{ReplyBuf, ReplyWriter, Request};

use crate::session::{ProxyShared, ReplyFut, Session};

pub use ringcache_common::connection::REDIS_COMPAT_VERSION;

/// Replies to a keyless command that does not need the shards.
pub fn reply(session: &mut Session, shared: &ProxyShared, req: &Request, spec: &CommandSpec) -> ReplyFut {
    let mut out = ReplyBuf::new(session.proto);
    let result = match spec.name {
        name if connection::is_connection_command(name) => {
            connection::execute(name, req, session, &shared.clients, &shared.acl, &mut out)
        }
        "command" => command::reply_command(req, &mut out),
        "config" => shared
            .runtime_config
            .command(shared, req, &mut out, ringcache_common::metrics::reset_stats)
            .map_err(|e| e.to_string()),
        "slowlog" => shared.diagnostics.slowlog_command(req, &mut out),
        "memory" => memory(req, &mut out),
        "latency" => shared.diagnostics.latency_command(req, &mut out, &ringcache_common::metrics::command_histograms),
        other => Err(format!("ERR {} is not supported by ringcache-proxy", other.to_uppercase())),
    };
    if let Err(e) = result {
        out.clear();
        out.error(&e);
    }
    ReplyFut::ready(out.take())
}

/// MEMORY on the proxy, which keeps no keys: USAGE is routed to the key's shard, HELP and PURGE are
/// answered here, and the memory of the data is each shard's (STATS, DOCTOR and MALLOC-STATS there).
fn memory(req: &Request, out: &mut ReplyBuf) -> Result<(), String> {
    let sub = String::from_utf8_lossy(req.arg(1)).to_ascii_uppercase();
    match sub.as_str() {
        "HELP" => {
            out.array_len(MEMORY_HELP.len());
            for line in MEMORY_HELP {
                out.simple(line);
            }
            Ok(())
        }
        "PURGE" => {
            out.simple("OK");
            Ok(())
        }
        "STATS" | "DOCTOR" | "MALLOC-STATS" => Err(format!(
            "ERR MEMORY {sub} is per shard: send it to a shard (ringcache-proxy keeps no keys; INFO memory through \
             the proxy has the shards' totals)"
        )),
        _ => Err(format!("ERR unknown subcommand '{}'. Try MEMORY HELP.", String::from_utf8_lossy(req.arg(1)))),
    }
}

const MEMORY_HELP: [&str; 14] = [
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];

/// The proxy's own INFO section, after Redis's.
const OWN_SECTIONS: [&str; 1] = ["membership"];

/// The INFO sections a request asks for.
pub fn info_sections(req: &Request) -> Sections {
    Sections::parse(req.args_from(1), &OWN_SECTIONS)
}

/// The proxy's own INFO fields (shard totals are added by [`merge_info`]). Commandstats, errorstats and
/// latencystats are the proxy's: commands as clients sent them, timed from request read to reply ready.
pub fn proxy_info(shared: &ProxyShared) -> Info {
    let uptime = shared.started.elapsed().as_secs();
    let topo = shared.cluster.topology();
    let mut info = Info::new();
    info.common_fields(shared.port, shared.started, shared.config_file.as_deref());
    info.set("server", "ringcache_version", env!("CARGO_PKG_VERSION"));
    info.set("server", "ringcache_mode", "proxy");
    info.set("server", "shards", topo.shards.len());
    info.set("server", "shards_up", topo.view().live().count());
    let output = &shared.output_stats;
    info.set("clients", "connected_clients", shared.connections.connected());
    info.set("clients", "maxclients", shared.maxclients);
    info.set("clients", "client_recent_max_output_buffer", output.recent_max(uptime));
    info.set("clients", "output_limited_clients", output.limited_clients());
    info.set("stats", "total_connections_received", shared.connections.total());
    info.set("stats", "rejected_connections", shared.connections.rejected());
    info.set("stats", "client_output_buffer_limit_disconnections", output.disconnections());
    let rss = ringcache_common::info::rss_bytes();
    info.set("memory", "used_memory_rss", rss);
    info.set("memory", "used_memory_rss_human", human_bytes(rss));
    let mut membership = String::new();
    membership_info(shared, &topo, &mut membership);
    for line in membership.split("\r\n").filter(|l| !l.is_empty()) {
        if let Some((name, value)) = line.split_once(':') {
            info.set("membership", name, value);
        }
    }
    info
}

/// This proxy's view of the membership: where it comes from, the ring version it routes on, and each
/// shard's health here and registration (`unknown` without ZooKeeper).
fn membership_info(shared: &ProxyShared, topo: &crate::cluster::Topology, out: &mut String) {
    use crate::membership::Registration;
    let control = shared.cluster.control();
    let _ = write!(
        out,
        "membership_source:{}\r\nzookeeper_connected:{}\r\nring_version:{}\r\nring_shards:{}\r\n",
        control.source(),
        u8::from(control.connected()),
        shared.cluster.ring_version(),
        topo.shards.len()
    );
    for (i, shard) in topo.shards.iter().enumerate() {
        let registered = match control.registration(&shard.spec.name) {
            Registration::Unknown => "unknown".to_string(),
            Registration::Absent => "no".to_string(),
            Registration::Present(state) => state,
        };
        let _ = write!(
            out,
            "ring_shard{i}:name={},addr={},weight={},up={},registered={registered}\r\n",
            shard.spec.name,
            shard.spec.addr,
            shard.spec.weight,
            u8::from(shard.is_up())
        );
    }
}

/// Shard fields that INFO sums across shards, by section (the proxy has no value of its own for them,
/// except `total_error_replies`, to which the shards' are added).
const SUMMED: [(&str, &str); 13] = [
    ("memory", "used_memory"),
    ("memory", "used_memory_peak"),
    ("memory", "used_memory_dataset"),
    ("memory", "maxmemory"),
    ("memory", "number_of_cached_scripts"),
    ("stats", "total_commands_processed"),
    ("stats", "keyspace_hits"),
    ("stats", "keyspace_misses"),
    ("stats", "expired_keys"),
    ("stats", "evicted_keys"),
    ("stats", "pubsub_channels"),
    ("stats", "pubsub_patterns"),
    ("stats", "total_error_replies"),
];

/// Combines the proxy's own INFO fields with the shards' (`shard_infos`, their `INFO all` texts): the
/// fields of [`SUMMED`], the key counts and the error counts are summed (the proxy's own errors added).
pub fn merge_info(own: &Info, sections: &Sections, shard_infos: &[String]) -> String {
    let mut info = own.clone();
    let mut sums = [0u64; SUMMED.len()];
    let (mut keys, mut expires) = (0u64, 0u64);
    let mut errors: Vec<(String, u64)> = Vec::new();
    for text in shard_infos {
        for (section, fields) in ringcache_common::info::parse(text) {
            for (name, value) in fields {
                if section == "keyspace" && name == "db0" {
                    for part in value.split(',') {
                        match part.split_once('=') {
                            Some(("keys", n)) => keys += n.parse::<u64>().unwrap_or(0),
                            Some(("expires", n)) => expires += n.parse::<u64>().unwrap_or(0),
                            _ => {}
                        }
                    }
                } else if section == "errorstats" {
                    let n = value.strip_prefix("count=").and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
                    match errors.iter_mut().find(|(k, _)| *k == name) {
                        Some(e) => e.1 += n,
                        None => errors.push((name, n)),
                    }
                } else if let Some(i) = SUMMED.iter().position(|(s, f)| *s == section && *f == name) {
                    sums[i] += value.parse::<u64>().unwrap_or(0);
                }
            }
        }
    }
    for (i, (section, name)) in SUMMED.iter().enumerate() {
        let own_value = own.get(section, name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        info.set(section, name, sums[i] + own_value);
    }
    let used = sums[0];
    info.set("memory", "used_memory_human", human_bytes(used));
    info.set("memory", "used_memory_peak_human", human_bytes(sums[1]));
    info.set("memory", "maxmemory_human", human_bytes(sums[3]));
    info.set("memory", "used_memory_peak_perc", format!("{:.2}%", used as f64 * 100.0 / sums[1].max(1) as f64));
    info.set("memory", "used_memory_dataset_perc", if used > 0 { "100.00%" } else { "0.00%" });
    for (name, n) in errors {
        let own_value =
            own.get("errorstats", &name).and_then(|v| v.strip_prefix("count=")?.parse::<u64>().ok()).unwrap_or(0);
        info.set("errorstats", &name, format!("count={}", n + own_value));
    }
    if keys > 0 {
        info.set("keyspace", "db0", format!("keys={keys},expires={expires},avg_ttl=0"));
    }
    info.render(sections)
}
