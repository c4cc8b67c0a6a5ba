//! Load time of the embedded IAM catalog: `cargo bench --bench catalog_load`.
//! Prints milliseconds; a plain program (harness = false) so it needs no bench framework.

use std::hint::black_box;
use std::time::{Duration, Instant};

use iam_tailor::catalog::{CATALOG_TEXT, Catalog, catalog};

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let start = Instant::now();
    let shared = catalog();
    let first = start.elapsed();

    let start = Instant::now();
    black_box(shared.resource_type_of_arn("arn:aws:s3:::bucket/key"));
    let arn_index = start.elapsed();

    let mut runs: Vec<Duration> = (0..20)
        .map(|_| {
            let start = Instant::now();
            black_box(Catalog::parse(CATALOG_TEXT).expect("catalog parses"));
            start.elapsed()
        })
        .collect();
    runs.sort();

    let start = Instant::now();
    let lookups = 100_000;
    for i in 0..lookups {
        let name = if i % 2 == 0 {
            "s3:getobject"
        } else {
            "ec2:DescribeInstances"
        };
        black_box(shared.action(black_box(name)));
    }
    let lookup = start.elapsed();

    println!(
        "catalog: {} services, {} actions, {} bytes of text",
        shared.service_prefixes().count(),
        shared.action_count(),
        CATALOG_TEXT.len()
    );
    println!("first catalog() call:      {:8.3} ms", ms(first));
    println!(
        "Catalog::parse (20 runs):  {:8.3} ms min, {:8.3} ms median",
        ms(runs[0]),
        ms(runs[runs.len() / 2])
    );
    println!("ARN index, first build:    {:8.3} ms", ms(arn_index));
    println!(
        "action() lookup:           {:8.3} us",
        ms(lookup) * 1e3 / f64::from(lookups)
    );
}
