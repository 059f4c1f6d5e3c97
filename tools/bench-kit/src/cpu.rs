//! CPU time as /proc counts it: what a process has used, and what the host
//! has taken from this virtual machine. On a shared machine these move far
//! less between runs than requests per second do.

use std::time::Duration;

/// The clock tick in which /proc counts CPU time (`USER_HZ`, 100 a second
/// on Linux).
pub const TICK: Duration = Duration::from_millis(10);

/// The CPU time (user and system) that process `pid` has used so far, in
/// seconds; `None` if it is gone.
pub fn of_process(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name, which may hold spaces and ends at the last
    // ')': the state, then 13 more fields, of which utime and stime are
    // the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 * TICK.as_secs_f64())
}

/// The CPU time the host has taken from this virtual machine since it
/// booted, over all its cores: the `steal` column of /proc/stat's `cpu`
/// line; `None` if it cannot be read.
pub fn stolen() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: u64 = stat.lines().next()?.split_whitespace().nth(8)?.parse().ok()?;
    Some(TICK.mul_f64(ticks as f64))
}
