use anyhow::{anyhow, Result};
use std::path::Path;

/// A signal by number, name or full name (see [`hcs::process::parse_signal`]).
pub fn parse_signal(s: &str) -> Result<i32> {
    if s.parse::<i32>().is_ok() {
        return hcs::process::parse_signal(s)
            .ok_or_else(|| anyhow!("invalid signal {s:?}: out of range"));
    }
    hcs::process::parse_signal(s).ok_or_else(|| anyhow!("unknown signal {s:?}"))
}

pub fn run(root: &Path, id: &str, signal: &str, all: bool) -> Result<i32> {
    let sig = parse_signal(signal)?;
    hcs::ComputeSystem::open(root, id)?.signal(sig, all)?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::parse_signal;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("hup").unwrap(), 1);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
    }
}
