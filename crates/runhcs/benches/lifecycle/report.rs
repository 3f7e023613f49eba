#![allow(clippy::expect_used, clippy::unwrap_used)]
//! Medians, ratio and goal lines, and the raw-sample JSON.

use super::{Mode, Runtime, Sample};
use serde_json::{json, Value};

#[derive(Default)]
pub struct Series {
    pub samples: Vec<Sample>,
    pub hung: usize,
    pub failed: usize,
    pub first_error: Option<String>,
}

pub fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return f64::NAN;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    }
}

pub struct Stats {
    wall: f64,
    cpu: f64,
}

impl Series {
    fn stats(&self) -> Stats {
        Stats {
            wall: median(self.samples.iter().map(|s| s.wall_ms).collect()),
            cpu: median(self.samples.iter().map(|s| s.cpu_ms).collect()),
        }
    }

    fn phase_medians(&self) -> Option<[f64; 4]> {
        let phases: Vec<[f64; 4]> = self.samples.iter().filter_map(|s| s.phases).collect();
        if phases.is_empty() {
            return None;
        }
        Some([0, 1, 2, 3].map(|i| median(phases.iter().map(|p| p[i]).collect())))
    }
}

pub fn print_table(bundle: &str, mode: Mode, runtimes: &[Runtime], series: &[Series]) {
    println!(
        "\n== bundle {bundle}, mode {} (medians, ms) ==",
        mode.name()
    );
    let cycle = mode == Mode::Cycle;
    print!("{:<8} {:>4} {:>9} {:>9}", "runtime", "n", "wall", "cpu");
    if cycle {
        print!(
            " {:>8} {:>8} {:>8} {:>8}",
            "create", "start", "wait", "delete"
        );
    }
    println!(" {:>5} {:>6}", "hung", "failed");
    for (rt, s) in runtimes.iter().zip(series) {
        let st = s.stats();
        print!(
            "{:<8} {:>4} {:>9.1} {:>9.1}",
            rt.name,
            s.samples.len(),
            st.wall,
            st.cpu
        );
        if cycle {
            let p = s.phase_medians().unwrap_or([f64::NAN; 4]);
            print!(" {:>8.1} {:>8.1} {:>8.1} {:>8.1}", p[0], p[1], p[2], p[3]);
        }
        println!(" {:>5} {:>6}", s.hung, s.failed);
        if let Some(e) = &s.first_error {
            println!("         first error: {e}");
        }
    }
    let by_name = |name: &str| {
        runtimes
            .iter()
            .position(|r| r.name == name)
            .map(|i| series[i].stats())
    };
    if let Some(ours) = by_name("runhcs") {
        for peer in ["crun", "runc"] {
            if let Some(p) = by_name(peer) {
                println!(
                    "ratio runhcs/{peer}: cpu {:.2}x  wall {:.2}x",
                    ours.cpu / p.cpu,
                    ours.wall / p.wall
                );
            }
        }
    }
}

pub fn goal_line(
    results: &[(String, Mode, Vec<Series>)],
    runtimes: &[Runtime],
    bundle: &str,
    limit: f64,
) -> String {
    let what = format!("{bundle} run CPU runhcs <= {limit:.1}x crun");
    let idx = |name: &str| runtimes.iter().position(|r| r.name == name);
    let row = results
        .iter()
        .find(|(b, m, _)| b == bundle && *m == Mode::Run);
    match (row, idx("runhcs"), idx("crun")) {
        (Some((_, _, series)), Some(ours), Some(crun)) => {
            let ratio = series[ours].stats().cpu / series[crun].stats().cpu;
            let verdict = if ratio.is_nan() { "n/a" } else if ratio <= limit { "MET" } else { "NOT MET" };
            format!("goal: {what}: {ratio:.2}x {verdict}")
        }
        _ => format!("goal: {what}: n/a (needs runhcs and crun in --runtimes and the {bundle} bundle, mode run)"),
    }
}

pub fn samples_json(s: &Series) -> Value {
    json!({
        "hung": s.hung,
        "failed": s.failed,
        "first_error": s.first_error,
        "samples": s.samples.iter().map(|x| {
            let mut v = json!({ "wall_ms": x.wall_ms, "cpu_ms": x.cpu_ms });
            if let Some(p) = x.phases {
                v["create_ms"] = p[0].into();
                v["start_ms"] = p[1].into();
                v["wait_ms"] = p[2].into();
                v["delete_ms"] = p[3].into();
            }
            v
        }).collect::<Vec<_>>(),
    })
}
