//! The command line as users run it: the commands, `generate` on trails, the linter on its
//! fixtures, and README's command block.

mod commands;
mod generate;
mod generate_passrole;
mod lint_fixtures;
mod readme;
