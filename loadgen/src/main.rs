//! `ringcache-loadgen`: parse flags, run, exit with the verdict's status (see `--help`).

use anyhow::Context;
use ringcache_common::config::parse_args_or_exit;
use ringcache_loadgen::config::{Args, Config};

fn main() -> anyhow::Result<()> {
    let args: Args = parse_args_or_exit()?;
    let cfg = Config::from_args(&args)?;
    let report = ringcache_loadgen::run(&cfg).with_context(|| format!("load against {} failed", cfg.target()))?;
    std::process::exit(report.verdict.exit_code());
}
