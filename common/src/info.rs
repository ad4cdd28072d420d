//! INFO in Redis 7's layout, shared by the shard and the proxy.
//!
//! A server fills an [`Info`] with the fields it knows ([`Info::set`]) and renders the sections a request
//! asks for ([`Sections::parse`], [`Info::render`]). Every field Redis 7.0 prints in its fixed sections
//! (server, clients, memory, persistence, stats, replication, cpu, cluster) is printed, in Redis's order:
//! with the server's value where it has one, else with the neutral value of [`TEMPLATE`] (mostly 0). Tools
//! that read INFO (prometheus-redis-exporter, client libraries) therefore find every field they expect.
//! Fields a server adds of its own follow Redis's in their section. Commandstats, errorstats and
//! latencystats come from the common command statistics and error counts ([`Info::command_sections`]).
//! [`parse`] reads INFO text back (the proxy sums its shards' fields).

use std::fmt::Write as _;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::metrics;

/// Redis 7.0's sections, in its order.
pub const SECTIONS: [&str; 13] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "commandstats",
    "errorstats",
    "latencystats",
    "cluster",
    "keyspace",
];

/// Sections INFO without arguments (or `default`) prints: all but commandstats and latencystats.
const NOT_DEFAULT: [&str; 2] = ["commandstats", "latencystats"];

/// Every field of Redis 7.0's fixed sections, in order, with the value printed when a server sets none.
pub const TEMPLATE: &[(&str, &[(&str, &str)])] = &[
    (
        "server",
        &[
            ("redis_version", "7.4.0"),
            ("redis_git_sha1", "00000000"),
            ("redis_git_dirty", "0"),
            ("redis_build_id", "0"),
            ("redis_mode", "standalone"),
            ("os", "Linux"),
            ("arch_bits", "64"),
            ("monotonic_clock", "POSIX clock_gettime"),
            ("multiplexing_api", "epoll"),
            ("atomicvar_api", "c11-builtin"),
            ("gcc_version", "0.0.0"),
            ("process_id", "0"),
            ("process_supervised", "no"),
            ("run_id", "0000000000000000000000000000000000000000"),
            ("tcp_port", "0"),
            ("server_time_usec", "0"),
            ("uptime_in_seconds", "0"),
            ("uptime_in_days", "0"),
            ("hz", "10"),
            ("configured_hz", "10"),
            ("lru_clock", "0"),
            ("executable", ""),
            ("config_file", ""),
            ("io_threads_active", "0"),
        ],
    ),
    (
        "clients",
        &[
            ("connected_clients", "0"),
            ("cluster_connections", "0"),
            ("maxclients", "0"),
            ("client_recent_max_input_buffer", "0"),
            ("client_recent_max_output_buffer", "0"),
            ("blocked_clients", "0"),
            ("tracking_clients", "0"),
            ("clients_in_timeout_table", "0"),
        ],
    ),
    (
        "memory",
        &[
            ("used_memory", "0"),
            ("used_memory_human", "0B"),
            ("used_memory_rss", "0"),
            ("used_memory_rss_human", "0B"),
            ("used_memory_peak", "0"),
            ("used_memory_peak_human", "0B"),
            ("used_memory_peak_perc", "0.00%"),
            ("used_memory_overhead", "0"),
            ("used_memory_startup", "0"),
            ("used_memory_dataset", "0"),
            ("used_memory_dataset_perc", "0.00%"),
            ("allocator_allocated", "0"),
            ("allocator_active", "0"),
            ("allocator_resident", "0"),
            ("total_system_memory", "0"),
            ("total_system_memory_human", "0B"),
            ("used_memory_lua", "0"),
            ("used_memory_vm_eval", "0"),
            ("used_memory_lua_human", "0B"),
            ("used_memory_scripts_eval", "0"),
            ("number_of_cached_scripts", "0"),
            ("number_of_functions", "0"),
            ("number_of_libraries", "0"),
            ("used_memory_vm_functions", "0"),
            ("used_memory_vm_total", "0"),
            ("used_memory_vm_total_human", "0B"),
            ("used_memory_functions", "0"),
            ("used_memory_scripts", "0"),
            ("used_memory_scripts_human", "0B"),
            ("maxmemory", "0"),
            ("maxmemory_human", "0B"),
            ("maxmemory_policy", "allkeys-lru"),
            ("allocator_frag_ratio", "1.00"),
            ("allocator_frag_bytes", "0"),
            ("allocator_rss_ratio", "1.00"),
            ("allocator_rss_bytes", "0"),
            ("rss_overhead_ratio", "1.00"),
            ("rss_overhead_bytes", "0"),
            ("mem_fragmentation_ratio", "1.00"),
            ("mem_fragmentation_bytes", "0"),
            ("mem_not_counted_for_evict", "0"),
            ("mem_replication_backlog", "0"),
            ("mem_total_replication_buffers", "0"),
            ("mem_clients_slaves", "0"),
            ("mem_clients_normal", "0"),
            ("mem_cluster_links", "0"),
            ("mem_aof_buffer", "0"),
            ("mem_allocator", "libc"),
            ("active_defrag_running", "0"),
            ("lazyfree_pending_objects", "0"),
            ("lazyfreed_objects", "0"),
        ],
    ),
    (
        "persistence",
        &[
            ("loading", "0"),
            ("async_loading", "0"),
            ("current_cow_peak", "0"),
            ("current_cow_size", "0"),
            ("current_cow_size_age", "0"),
            ("current_fork_perc", "0.00"),
            ("current_save_keys_processed", "0"),
            ("current_save_keys_total", "0"),
            ("rdb_changes_since_last_save", "0"),
            ("rdb_bgsave_in_progress", "0"),
            ("rdb_last_save_time", "0"),
            ("rdb_last_bgsave_status", "ok"),
            ("rdb_last_bgsave_time_sec", "-1"),
            ("rdb_current_bgsave_time_sec", "-1"),
            ("rdb_saves", "0"),
            ("rdb_last_cow_size", "0"),
            ("rdb_last_load_keys_expired", "0"),
            ("rdb_last_load_keys_loaded", "0"),
            ("aof_enabled", "0"),
            ("aof_rewrite_in_progress", "0"),
            ("aof_rewrite_scheduled", "0"),
            ("aof_last_rewrite_time_sec", "-1"),
            ("aof_current_rewrite_time_sec", "-1"),
            ("aof_last_bgrewrite_status", "ok"),
            ("aof_rewrites", "0"),
            ("aof_rewrites_consecutive_failures", "0"),
            ("aof_last_write_status", "ok"),
            ("aof_last_cow_size", "0"),
            ("module_fork_in_progress", "0"),
            ("module_fork_last_cow_size", "0"),
        ],
    ),
    (
        "stats",
        &[
            ("total_connections_received", "0"),
            ("total_commands_processed", "0"),
            ("instantaneous_ops_per_sec", "0"),
            ("total_net_input_bytes", "0"),
            ("total_net_output_bytes", "0"),
            ("total_net_repl_input_bytes", "0"),
            ("total_net_repl_output_bytes", "0"),
            ("instantaneous_input_kbps", "0.00"),
            ("instantaneous_output_kbps", "0.00"),
            ("instantaneous_input_repl_kbps", "0.00"),
            ("instantaneous_output_repl_kbps", "0.00"),
            ("rejected_connections", "0"),
            ("sync_full", "0"),
            ("sync_partial_ok", "0"),
            ("sync_partial_err", "0"),
            ("expired_keys", "0"),
            ("expired_stale_perc", "0.00"),
            ("expired_time_cap_reached_count", "0"),
            ("expire_cycle_cpu_milliseconds", "0"),
            ("evicted_keys", "0"),
            ("evicted_clients", "0"),
            ("total_eviction_exceeded_time", "0"),
            ("current_eviction_exceeded_time", "0"),
            ("keyspace_hits", "0"),
            ("keyspace_misses", "0"),
            ("pubsub_channels", "0"),
            ("pubsub_patterns", "0"),
            ("pubsubshard_channels", "0"),
            ("latest_fork_usec", "0"),
            ("total_forks", "0"),
            ("migrate_cached_sockets", "0"),
            ("slave_expires_tracked_keys", "0"),
            ("active_defrag_hits", "0"),
            ("active_defrag_misses", "0"),
            ("active_defrag_key_hits", "0"),
            ("active_defrag_key_misses", "0"),
            ("total_active_defrag_time", "0"),
            ("current_active_defrag_time", "0"),
            ("tracking_total_keys", "0"),
            ("tracking_total_items", "0"),
            ("tracking_total_prefixes", "0"),
            ("unexpected_error_replies", "0"),
            ("total_error_replies", "0"),
            ("dump_payload_sanitizations", "0"),
            ("total_reads_processed", "0"),
            ("total_writes_processed", "0"),
            ("io_threaded_reads_processed", "0"),
            ("io_threaded_writes_processed", "0"),
            ("reply_buffer_shrinks", "0"),
            ("reply_buffer_expands", "0"),
        ],
    ),
    (
        "replication",
        &[
            ("role", "master"),
            ("connected_slaves", "0"),
            ("master_failover_state", "no-failover"),
            ("master_replid", "0000000000000000000000000000000000000000"),
            ("master_replid2", "0000000000000000000000000000000000000000"),
            ("master_repl_offset", "0"),
            ("second_repl_offset", "-1"),
            ("repl_backlog_active", "0"),
            ("repl_backlog_size", "1048576"),
            ("repl_backlog_first_byte_offset", "0"),
            ("repl_backlog_histlen", "0"),
        ],
    ),
    (
        "cpu",
        &[
            ("used_cpu_sys", "0.000000"),
            ("used_cpu_user", "0.000000"),
            ("used_cpu_sys_children", "0.000000"),
            ("used_cpu_user_children", "0.000000"),
            ("used_cpu_sys_main_thread", "0.000000"),
            ("used_cpu_user_main_thread", "0.000000"),
        ],
    ),
    ("cluster", &[("cluster_enabled", "0")]),
];

/// The sections one INFO request asks for, in the order they are printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sections(Vec<&'static str>);

impl Sections {
    /// Redis 7's rules: no argument or `default` gives the default sections, `all` every section,
    /// `everything` too, and names add their section (case-insensitively); unknown names are ignored.
    /// `extra` are the server's own sections, printed (and part of `default`) after Redis's, before
    /// keyspace.
    pub fn parse<'a>(args: impl Iterator<Item = &'a [u8]>, extra: &[&'static str]) -> Sections {
        let names: Vec<String> = args.map(|a| String::from_utf8_lossy(a).to_lowercase()).collect();
        let all = names.iter().any(|n| n == "all" || n == "everything");
        let default = names.is_empty() || names.iter().any(|n| n == "default");
        let order = SECTIONS[..SECTIONS.len() - 1].iter().chain(extra).chain(std::iter::once(&"keyspace"));
        Sections(
            order
                .filter(|s| all || (default && !NOT_DEFAULT.contains(s)) || names.iter().any(|n| n == *s))
                .copied()
                .collect(),
        )
    }

    pub fn contains(&self, section: &str) -> bool {
        self.0.contains(&section)
    }

    pub fn iter(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().copied()
    }
}

/// The fields of INFO, by section.
#[derive(Debug, Default, Clone)]
pub struct Info {
    sections: Vec<(String, Vec<(String, String)>)>,
}

impl Info {
    pub fn new() -> Self {
        Self::default()
    }

    fn section_mut(&mut self, section: &str) -> &mut Vec<(String, String)> {
        let i = match self.sections.iter().position(|(s, _)| s == section) {
            Some(i) => i,
            None => {
                self.sections.push((section.to_string(), Vec::new()));
                self.sections.len() - 1
            }
        };
        &mut self.sections[i].1
    }

    /// Sets a field (replacing an earlier value of it).
    pub fn set(&mut self, section: &str, name: &str, value: impl std::fmt::Display) {
        let fields = self.section_mut(section);
        let value = value.to_string();
        match fields.iter_mut().find(|(n, _)| n == name) {
            Some(f) => f.1 = value,
            None => fields.push((name.to_string(), value)),
        }
    }

    /// A field's value, if set.
    pub fn get(&self, section: &str, name: &str) -> Option<&str> {
        self.sections.iter().find(|(s, _)| s == section)?.1.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// The fields set in a section, in the order they were set.
    pub fn fields(&self, section: &str) -> &[(String, String)] {
        self.sections.iter().find(|(s, _)| s == section).map_or(&[], |(_, f)| f.as_slice())
    }

    /// The INFO text of `sections`: `# Title` then `name:value` lines, sections separated by an empty line.
    pub fn render(&self, sections: &Sections) -> String {
        let mut out = String::new();
        for section in sections.iter() {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            let _ = write!(out, "# {}\r\n", title(section));
            let set = self.fields(section);
            let template = TEMPLATE.iter().find(|(s, _)| *s == section).map_or(&[][..], |(_, f)| *f);
            for (name, default) in template {
                let value = set.iter().find(|(n, _)| n == name).map_or(*default, |(_, v)| v.as_str());
                let _ = write!(out, "{name}:{value}\r\n");
            }
            for (name, value) in set.iter().filter(|(n, _)| !template.iter().any(|(t, _)| t == n)) {
                let _ = write!(out, "{name}:{value}\r\n");
            }
        }
        out
    }

    /// Fields both servers compute the same way: server (version, process, port, uptime, clock), cpu, the
    /// error totals, and the commandstats, errorstats and latencystats sections from this process's
    /// command statistics and error counts.
    pub fn common_fields(&mut self, tcp_port: u16, started: Instant, config_file: Option<&str>) {
        let uptime = started.elapsed().as_secs();
        let now_us = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros());
        self.set("server", "redis_version", crate::connection::REDIS_COMPAT_VERSION);
        self.set("server", "os", os_name());
        self.set("server", "arch_bits", usize::BITS);
        self.set("server", "process_id", std::process::id());
        self.set("server", "run_id", run_id());
        self.set("server", "tcp_port", tcp_port);
        self.set("server", "server_time_usec", now_us);
        self.set("server", "uptime_in_seconds", uptime);
        self.set("server", "uptime_in_days", uptime / 86_400);
        self.set("server", "lru_clock", (now_us / 1_000_000) as u64 & ((1 << 24) - 1));
        let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default();
        self.set("server", "executable", exe);
        self.set("server", "config_file", config_file.unwrap_or(""));
        self.set("replication", "master_replid", run_id());
        let (user, sys) = cpu_seconds();
        self.set("cpu", "used_cpu_sys", format!("{sys:.6}"));
        self.set("cpu", "used_cpu_user", format!("{user:.6}"));
        self.set("cpu", "used_cpu_sys_main_thread", format!("{sys:.6}"));
        self.set("cpu", "used_cpu_user_main_thread", format!("{user:.6}"));
        self.set("stats", "total_error_replies", crate::diagnostics::total_error_replies());
        self.command_sections();
    }

    /// commandstats (`cmdstat_<name>:calls=..,usec=..,usec_per_call=..,rejected_calls=0,failed_calls=0`),
    /// errorstats (`errorstat_<KIND>:count=..`) and latencystats (`latency_percentiles_usec_<name>:p50=..,
    /// p99=..,p99.9=..`, each the upper bound of the duration bucket the percentile falls in).
    pub fn command_sections(&mut self) {
        for (name, calls, sum_ns) in metrics::command_stats() {
            let usec = sum_ns / 1000;
            let per_call = usec as f64 / calls as f64;
            self.set(
                "commandstats",
                &format!("cmdstat_{name}"),
                format!("calls={calls},usec={usec},usec_per_call={per_call:.2},rejected_calls=0,failed_calls=0"),
            );
        }
        for (kind, count) in crate::diagnostics::error_counts() {
            self.set("errorstats", &format!("errorstat_{kind}"), format!("count={count}"));
        }
        for h in metrics::command_histograms() {
            let percentile = |p: f64| {
                let rank = ((p / 100.0) * h.calls as f64).ceil().max(1.0) as u64;
                h.cumulative.iter().find(|(_, n)| *n >= rank).map_or(0, |(bound, _)| *bound)
            };
            self.set(
                "latencystats",
                &format!("latency_percentiles_usec_{}", h.name),
                format!("p50={:.3},p99={:.3},p99.9={:.3}", percentile(50.0), percentile(99.0), percentile(99.9)),
            );
        }
    }
}

fn title(section: &str) -> String {
    match section {
        "cpu" => "CPU".into(),
        other => {
            let mut t = other.to_string();
            if let Some(first) = t.get_mut(..1) {
                first.make_ascii_uppercase();
            }
            t
        }
    }
}

fn os_name() -> String {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("Linux {} {}", release.trim(), std::env::consts::ARCH)
}

/// A random 40-hex-digit id for this process's run (Redis's run_id), made once.
pub fn run_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        use md5::{Digest, Md5};
        let seed = format!("{:?}{}", SystemTime::now(), std::process::id());
        let a = Md5::digest(seed.as_bytes());
        let b = Md5::digest(a);
        let hex: String = a.iter().chain(b.iter()).map(|byte| format!("{byte:02x}")).collect();
        hex[..40].to_string()
    })
}

/// User and system CPU seconds of this process, from `/proc/self/stat` (0 where that does not exist).
pub fn cpu_seconds() -> (f64, f64) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return (0.0, 0.0) };
    // The command name in parentheses may hold spaces: fields are counted after its closing parenthesis.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else { return (0.0, 0.0) };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; in clock ticks (100/s).
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (ticks(11), ticks(12))
}

/// Resident set size of this process, from `/proc/self/statm` (0 where that does not exist).
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()))
        .map_or(0, |pages| pages * 4096)
}

/// `n` bytes the way Redis's `bytesToHuman` prints them (`512B`, `1.32M`).
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "K", "M", "G", "T", "P"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < units.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n}B")
    } else {
        format!("{v:.2}{}", units[u])
    }
}

/// INFO text read back: (section in lower case, its `name:value` fields), in order.
pub fn parse(text: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for line in text.lines().map(str::trim_end) {
        if let Some(title) = line.strip_prefix("# ") {
            out.push((title.to_lowercase(), Vec::new()));
        } else if let Some((name, value)) = line.split_once(':') {
            if let Some((_, fields)) = out.last_mut() {
                fields.push((name.to_string(), value.to_string()));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sections(args: &[&str]) -> Vec<&'static str> {
        Sections::parse(args.iter().map(|a| a.as_bytes()), &["membership"]).iter().collect()
    }

    #[test]
    fn sections_follow_redis_rules() {
        let default = sections(&[]);
        assert_eq!(
            default,
            [
                "server",
                "clients",
                "memory",
                "persistence",
                "stats",
                "replication",
                "cpu",
                "modules",
                "errorstats",
                "cluster",
                "membership",
                "keyspace"
            ]
        );
        assert_eq!(sections(&["default"]), default);
        assert_eq!(sections(&["ALL"]).len(), 14);
        assert_eq!(sections(&["everything"]).len(), 14);
        assert_eq!(sections(&["keyspace", "CPU", "nosuch"]), ["cpu", "keyspace"]);
        assert_eq!(sections(&["default", "commandstats"]).len(), 13);
        assert!(sections(&["nosuch"]).is_empty());
    }

    #[test]
    fn render_prints_every_template_field_in_order_then_own_fields() {
        let mut info = Info::new();
        info.set("clients", "ringcache_own", 7);
        info.set("clients", "connected_clients", 3);
        let text = info.render(&Sections::parse(["clients".as_bytes()].into_iter(), &[]));
        assert!(text.starts_with("# Clients\r\nconnected_clients:3\r\ncluster_connections:0\r\n"), "{text}");
        assert!(text.ends_with("clients_in_timeout_table:0\r\nringcache_own:7\r\n"), "{text}");
        let two = info.render(&Sections::parse(["cpu".as_bytes(), b"cluster"].into_iter(), &[]));
        assert!(two.contains("used_cpu_user_main_thread:0.000000\r\n\r\n# Cluster\r\ncluster_enabled:0\r\n"), "{two}");
        let parsed = parse(&two);
        assert_eq!(parsed[0].0, "cpu");
        assert_eq!(parsed[1].1, [("cluster_enabled".to_string(), "0".to_string())]);
    }
}
