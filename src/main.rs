#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    let cli = iam_tailor::cli::Cli::parse();
    std::process::exit(iam_tailor::cli::run(cli));
}
