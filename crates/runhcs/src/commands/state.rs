use anyhow::Result;
use hcs::process::state;
use std::path::Path;

pub fn run(root: &Path, id: &str) -> Result<i32> {
    let rec = state::load(root, id)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&state::oci_state(root, &rec))?
    );
    Ok(0)
}
