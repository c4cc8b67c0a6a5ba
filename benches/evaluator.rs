//! In-memory evaluator throughput on AWS managed policies, one core: prints decisions/s.
//! A benchmark, not a test: `cargo bench --bench evaluator`.

use iam_tailor::policy::Policy;
use iam_tailor::policy::{Context, PolicySet, Request};
use std::hint::black_box;
use std::time::Instant;

/// A small deterministic generator so every run measures the same requests.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn main() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/iam-reference/aws_managed_policies.jsonl"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let policies: Vec<(Policy, Vec<String>)> = text
        .lines()
        .filter_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let doc = v.get("document")?;
            let policy = Policy::from_value(doc).ok()?;
            let actions = policy
                .statements
                .iter()
                .filter_map(|s| match &s.action {
                    Some(iam_tailor::policy::ActionBlock::Action(a)) => Some(a.clone()),
                    _ => None,
                })
                .flatten()
                .filter(|a| a.contains(':'))
                .map(|a| a.replace('*', "Example"))
                .collect();
            Some((policy, actions))
        })
        .collect();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let all_actions: Vec<String> = policies.iter().flat_map(|(_, a)| a.clone()).collect();

    // 300 roles of one to three managed policies, a third with a permissions boundary.
    let roles: Vec<(PolicySet, Vec<String>)> = (0..300)
        .map(|_| {
            let mut builder = PolicySet::builder();
            let mut own = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let (p, a) = &policies[rng.below(policies.len())];
                builder = builder.identity(p.clone());
                own.extend(a.iter().cloned());
            }
            if rng.below(3) == 0 {
                builder = builder.boundary(policies[rng.below(policies.len())].0.clone());
            }
            (builder.build(), own)
        })
        .collect();

    let mut with_context = Context::new();
    with_context.insert("aws:SourceIp", "10.0.3.4");
    with_context.insert("aws:SecureTransport", "true");
    with_context.insert_all("aws:TagKeys", vec!["team".into(), "env".into()]);
    let empty = Context::new();

    struct Req {
        role: usize,
        action: String,
        resource: String,
        context: bool,
    }
    let requests: Vec<Req> = (0..200_000)
        .map(|_| {
            let role = rng.below(roles.len());
            let own = &roles[role].1;
            let action = if !own.is_empty() && rng.below(2) == 0 {
                own[rng.below(own.len())].clone()
            } else {
                all_actions[rng.below(all_actions.len())].clone()
            };
            let service = action.split(':').next().unwrap_or("s3").to_string();
            let resource = if service == "s3" {
                format!(
                    "arn:aws:s3:::bucket-{}/obj-{}",
                    rng.below(50),
                    rng.below(1000)
                )
            } else {
                format!(
                    "arn:aws:{service}:us-east-1:111122223333:resource/r-{}",
                    rng.below(50)
                )
            };
            Req {
                role,
                action,
                resource,
                context: rng.below(3) == 0,
            }
        })
        .collect();

    let run = |rounds: usize| {
        let mut counts = [0usize; 3];
        let start = Instant::now();
        for _ in 0..rounds {
            for r in &requests {
                let e = roles[r.role].0.evaluate(&Request {
                    action: &r.action,
                    resource: &r.resource,
                    principal: Some("arn:aws:iam::111122223333:role/bench"),
                    context: if r.context { &with_context } else { &empty },
                });
                counts[black_box(e.decision) as usize] += 1;
            }
        }
        (start.elapsed(), counts)
    };
    run(1); // warm up
    let rounds = 10;
    let (elapsed, counts) = run(rounds);
    let n = rounds * requests.len();
    println!(
        "evaluator: {n} decisions over {} managed policies in {:.2} s = {:.0} decisions/s on one core \
         (Allowed {}, ExplicitlyDenied {}, ImplicitlyDenied {})",
        policies.len(),
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        counts[0],
        counts[1],
        counts[2]
    );
}
