//! CONFIG on the proxy: it answers with its own settings and changes its live ones; nothing is forwarded
//! to the shards (each shard has its own CONFIG; send it there directly).
//!
//! Live: `slowlog-log-slower-than`, `slowlog-max-len`, `latency-monitor-threshold` (the proxy's own slow
//! log, timed from request read to reply ready), `loglevel`, and `timeout` (for connections opened after
//! the change). The rest is fixed at start. The proxy keeps no data: its `maxmemory` is 0.

use std::sync::atomic::Ordering::Relaxed;

use ringcache_common::runtime_config::{self as rc, parse_int_in, toml_seconds, Param, RuntimeConfig};

use crate::session::ProxyShared;

/// The proxy's CONFIG table; `file` is its `--config` file.
pub fn runtime_config(file: Option<std::path::PathBuf>) -> RuntimeConfig<ProxyShared> {
    RuntimeConfig::new(PARAMS.as_slice(), file)
}

/// The proxy's parameters, with Redis's names and value formats.
pub static PARAMS: std::sync::LazyLock<Vec<Param<ProxyShared>>> = std::sync::LazyLock::new(|| {
    let own_first: [Param<ProxyShared>; _] = [Param {
        name: "timeout",
        alias: None,
        get: |s| s.idle_timeout().as_secs().to_string(),
        set: Some(|s, v| {
            let secs = parse_int_in(v, 0, i64::from(i32::MAX))?;
            s.idle_timeout_ms.store(secs as u64 * 1000, Relaxed);
            Ok(())
        }),
        toml: Some(("idle_timeout", toml_seconds)),
    }];
    let own_rest: [Param<ProxyShared>; _] = [
        Param { name: "port", alias: None, get: |s| s.port.to_string(), set: None, toml: None },
        Param {
            name: "client-output-buffer-limit",
            alias: None,
            get: |s| s.output_limits.describe(),
            set: None,
            toml: None,
        },
        Param { name: "maxclients", alias: None, get: |s| s.maxclients.to_string(), set: None, toml: None },
        Param {
            name: "proto-max-bulk-len",
            alias: None,
            get: |s| s.limits.max_bulk_len.to_string(),
            set: None,
            toml: None,
        },
        Param { name: "databases", alias: None, get: |_| "1".into(), set: None, toml: None },
        Param { name: "save", alias: None, get: |_| String::new(), set: None, toml: None },
        Param { name: "appendonly", alias: None, get: |_| "no".into(), set: None, toml: None },
        Param { name: "io-threads", alias: None, get: |_| "1".into(), set: None, toml: None },
        Param { name: "maxmemory", alias: None, get: |_| "0".into(), set: None, toml: None },
        Param { name: "maxmemory-policy", alias: None, get: |_| "allkeys-lru".into(), set: None, toml: None },
    ];
    own_first.into_iter().chain(rc::common_params()).chain(own_rest).collect()
});

impl rc::HasDiagnostics for ProxyShared {
    fn diagnostics(&self) -> &ringcache_common::diagnostics::Diagnostics {
        &self.diagnostics
    }
}
