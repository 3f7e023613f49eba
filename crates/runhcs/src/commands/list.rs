use anyhow::Result;
use hcs::process::{ops, state};
use std::path::Path;

pub fn run(root: &Path, format: &str, quiet: bool) -> Result<i32> {
    let recs = ops::list(root)?;
    if quiet {
        for r in &recs {
            println!("{}", r.id);
        }
        return Ok(0);
    }
    let states: Vec<_> = recs.iter().map(|r| state::oci_state(root, r)).collect();
    if format == "json" {
        println!("{}", serde_json::to_string(&states)?);
        return Ok(0);
    }
    let rows: Vec<[String; 6]> =
        std::iter::once(["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from))
            .chain(states.iter().map(|s| {
                [
                    s.id.clone(),
                    s.pid.to_string(),
                    s.status.to_string(),
                    s.bundle.display().to_string(),
                    s.created.clone(),
                    s.owner.clone(),
                ]
            }))
            .collect();
    let mut widths = [0usize; 6];
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i == 5 {
                    c.clone()
                } else {
                    format!("{c:<w$}", w = w.max(9) + 3)
                }
            })
            .collect();
        println!("{}", line.concat().trim_end());
    }
    Ok(0)
}
