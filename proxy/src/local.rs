//! Commands the proxy answers itself: connection commands (shared with the shard through
//! `ringcache_common::connection`), COMMAND, CONFIG GET, and its INFO.

use std::fmt::Write as _;

use ringcache_common::command::{self, CommandSpec};
use ringcache_common::connection;
use ringcache_common::glob::glob_match;
use ringcache_common::resp::{ReplyBuf, ReplyWriter, Request};

use crate::session::{ProxyShared, ReplyFut, Session};

pub use ringcache_common::connection::REDIS_COMPAT_VERSION;

fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Replies to a keyless command that does not need the shards.
pub fn reply(session: &mut Session, shared: &ProxyShared, req: &Request, spec: &CommandSpec) -> ReplyFut {
    let mut out = ReplyBuf::new(session.proto);
    let result = match spec.name {
        "client" => match tracking_probe(req, &mut out) {
            Some(result) => result,
            None => {
                connection::execute("client", req, session, &shared.clients, shared.requirepass.as_deref(), &mut out)
            }
        },
        name if connection::is_connection_command(name) => {
            connection::execute(name, req, session, &shared.clients, shared.requirepass.as_deref(), &mut out)
        }
        "command" => command::reply_command(req, &mut out),
        "config" => config(shared, req, &mut out),
        other => Err(format!("ERR {} is not supported by ringcache-proxy", other.to_uppercase())),
    };
    if let Err(e) = result {
        out.clear();
        out.error(&e);
    }
    ReplyFut::ready(out.take())
}

/// The client-tracking subcommands a client may send to find out whether tracking is on, answered for a
/// connection without tracking (as redis-server answers them before CLIENT TRACKING ON). Turning tracking
/// on through the proxy is refused. `None` for the other CLIENT subcommands.
fn tracking_probe(req: &Request, out: &mut ReplyBuf) -> Option<Result<(), String>> {
    let sub = req.get(1)?;
    let lower = String::from_utf8_lossy(sub).to_lowercase();
    let arity = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(format!("ERR wrong number of arguments for 'client|{lower}' command"))
        }
    };
    Some(match lower.as_str() {
        "tracking" => arity(req.argc() >= 3).and_then(|()| {
            if is(req.arg(2), "OFF") {
                out.ok();
                Ok(())
            } else if is(req.arg(2), "ON") {
                Err("ERR CLIENT TRACKING ON is not supported by ringcache-proxy".into())
            } else {
                Err("ERR syntax error".into())
            }
        }),
        "getredir" => arity(req.argc() == 2).map(|()| out.integer(-1)),
        "trackinginfo" => arity(req.argc() == 2).map(|()| {
            out.map_len(3);
            out.bulk(b"flags");
            out.set_len(1);
            out.bulk(b"off");
            out.bulk(b"redirect");
            out.integer(-1);
            out.bulk(b"prefixes");
            out.array_len(0);
        }),
        "caching" => arity(req.argc() == 3).and_then(|()| {
            Err("ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled".into())
        }),
        _ => return None,
    })
}

fn config(shared: &ProxyShared, req: &Request, out: &mut ReplyBuf) -> Result<(), String> {
    if !is(req.arg(1), "GET") {
        if is(req.arg(1), "SET") || is(req.arg(1), "RESETSTAT") || is(req.arg(1), "REWRITE") {
            return Err(format!(
                "ERR CONFIG {} is not supported by ringcache-proxy: configure it with flags, environment or --config",
                String::from_utf8_lossy(req.arg(1)).to_uppercase()
            ));
        }
        return Err(format!("ERR unknown subcommand '{}'. Try CONFIG HELP.", String::from_utf8_lossy(req.arg(1))));
    }
    if req.argc() < 3 {
        return Err("ERR wrong number of arguments for 'config|get' command".into());
    }
    let params: [(&str, String); 8] = [
        ("port", shared.port.to_string()),
        ("client-output-buffer-limit", shared.output_limits.describe()),
        ("maxclients", shared.maxclients.to_string()),
        ("timeout", shared.idle_timeout.as_secs().to_string()),
        ("proto-max-bulk-len", shared.limits.max_bulk_len.to_string()),
        ("databases", "1".into()),
        ("save", String::new()),
        ("appendonly", "no".into()),
    ];
    let patterns: Vec<Vec<u8>> = req.args_from(2).map(|p| p.to_ascii_lowercase()).collect();
    let matched: Vec<_> = params.iter().filter(|(n, _)| patterns.iter().any(|p| glob_match(p, n.as_bytes()))).collect();
    out.map_len(matched.len());
    for (n, v) in matched {
        out.bulk(n.as_bytes());
        out.bulk(v.as_bytes());
    }
    Ok(())
}

const SECTIONS: [&str; 6] = ["server", "clients", "memory", "stats", "membership", "keyspace"];

/// The INFO sections a request asks for.
pub fn info_sections(req: &Request) -> Vec<String> {
    let wanted: Vec<String> = req.args_from(1).map(|a| String::from_utf8_lossy(a).to_lowercase()).collect();
    if wanted.is_empty() || wanted.iter().any(|w| w == "all" || w == "everything" || w == "default") {
        SECTIONS.iter().map(|s| s.to_string()).collect()
    } else {
        wanted
    }
}

/// The proxy's own fields, per section (shard totals are added by [`merge_info`]).
pub fn proxy_info(shared: &ProxyShared, sections: &[String]) -> String {
    let uptime = shared.started.elapsed().as_secs();
    let topo = shared.cluster.topology();
    let mut out = String::new();
    if sections.iter().any(|s| s == "server") {
        let _ = write!(
            out,
            "redis_version:{REDIS_COMPAT_VERSION}\r\nringcache_version:{}\r\nringcache_mode:proxy\r\nredis_mode:standalone\r\nprocess_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{uptime}\r\nshards:{}\r\nshards_up:{}\r\n",
            env!("CARGO_PKG_VERSION"),
            std::process::id(),
            shared.port,
            topo.shards.len(),
            topo.view().live().count()
        );
    }
    if sections.iter().any(|s| s == "clients") {
        let output = &shared.output_stats;
        let _ = write!(
            out,
            "connected_clients:{}\r\nmaxclients:{}\r\nclient_recent_max_output_buffer:{}\r\noutput_limited_clients:{}\r\n",
            shared.connections.connected(),
            shared.maxclients,
            output.recent_max(uptime),
            output.limited_clients()
        );
    }
    if sections.iter().any(|s| s == "stats") {
        let _ = write!(
            out,
            "total_connections_received:{}\r\nrejected_connections:{}\r\nclient_output_buffer_limit_disconnections:{}\r\n",
            shared.connections.total(),
            shared.connections.rejected(),
            shared.output_stats.disconnections()
        );
    }
    if sections.iter().any(|s| s == "membership") {
        membership_info(shared, &topo, &mut out);
    }
    out
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

/// Shard fields that INFO sums across shards, by section.
const SUMMED: [(&str, &str); 9] = [
    ("memory", "used_memory"),
    ("memory", "maxmemory"),
    ("stats", "total_commands_processed"),
    ("stats", "keyspace_hits"),
    ("stats", "keyspace_misses"),
    ("stats", "expired_keys"),
    ("stats", "evicted_keys"),
    ("keyspace", "keys"),
    ("keyspace", "expires"),
];

/// Combines the proxy's INFO fields with sums of the shards' fields, in Redis's section layout.
pub fn merge_info(proxy_text: &str, sections: &[String], shard_infos: &[String]) -> String {
    let mut sums = [0u64; SUMMED.len()];
    for info in shard_infos {
        for line in info.lines() {
            let Some((k, v)) = line.trim_end().split_once(':') else { continue };
            if k == "db0" {
                for part in v.split(',') {
                    if let Some((name, n)) = part.split_once('=') {
                        if let Some(i) = SUMMED.iter().position(|(s, f)| *s == "keyspace" && *f == name) {
                            sums[i] += n.parse::<u64>().unwrap_or(0);
                        }
                    }
                }
            } else if let Some(i) = SUMMED.iter().position(|(s, f)| *s != "keyspace" && *f == k) {
                sums[i] += v.parse::<u64>().unwrap_or(0);
            }
        }
    }
    let proxy_lines: Vec<&str> = proxy_text.split("\r\n").filter(|l| !l.is_empty()).collect();
    let mut out = String::new();
    for section in SECTIONS.iter().filter(|s| sections.iter().any(|w| w == *s)) {
        if !out.is_empty() {
            out.push_str("\r\n");
        }
        let mut title = section.to_string();
        title[..1].make_ascii_uppercase();
        let _ = write!(out, "# {title}\r\n");
        let own: &[&str] = match *section {
            "server" => &[
                "redis_version",
                "ringcache_version",
                "ringcache_mode",
                "redis_mode",
                "process_id",
                "tcp_port",
                "uptime_in_seconds",
                "shards",
                "shards_up",
            ],
            "clients" => {
                &["connected_clients", "maxclients", "client_recent_max_output_buffer", "output_limited_clients"]
            }
            "stats" => {
                &["total_connections_received", "rejected_connections", "client_output_buffer_limit_disconnections"]
            }
            "membership" => &["membership_source", "zookeeper_connected", "ring_version", "ring_shards"],
            _ => &[],
        };
        for l in &proxy_lines {
            let ring_shard = *section == "membership" && l.starts_with("ring_shard") && !l.starts_with("ring_shards:");
            if ring_shard || own.iter().any(|f| l.starts_with(&format!("{f}:"))) {
                let _ = write!(out, "{l}\r\n");
            }
        }
        if *section == "keyspace" {
            let keys = sums[SUMMED.iter().position(|(_, f)| *f == "keys").unwrap_or(0)];
            let expires = sums[SUMMED.iter().position(|(_, f)| *f == "expires").unwrap_or(0)];
            if keys > 0 {
                let _ = write!(out, "db0:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        } else {
            for (i, (s, f)) in SUMMED.iter().enumerate() {
                if s == section {
                    let _ = write!(out, "{f}:{}\r\n", sums[i]);
                }
            }
            if *section == "memory" {
                out.push_str("maxmemory_policy:allkeys-lru\r\n");
            }
        }
    }
    out
}
