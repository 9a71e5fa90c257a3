use harness::{driver, subject, workload::Workload};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = &args[1];
    let mut w = Workload { threads: args[2].parse().unwrap(), ops_per_thread: args[3].parse().unwrap(), ..Workload::default() };
    for kv in &args[4..] { let (k, v) = kv.split_once('=').unwrap(); w.set(k, v).unwrap(); }
    let s = subject::lookup(name, allocator::Geometry::CLASSIC).unwrap();
    let clock = harness::clock::Clock::calibrate();
    eprintln!("{:?}", clock.info());
    let m = driver::run_cell_with_clock(&s, &w, clock).unwrap();
    let mut v = serde_json::to_value(&m).unwrap();
    for l in v["latency"].as_object_mut().unwrap().values_mut() { l["distribution"] = serde_json::json!("..."); l["hdr_v2"] = serde_json::json!("..."); }
    v["memory"]["rss_timeline"] = serde_json::json!(m.memory.rss_timeline.len());
    println!("{}", serde_json::to_string_pretty(&v).unwrap());
}
