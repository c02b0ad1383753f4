//! The `earshot` command: the daemon and the tools a support team and a sysadmin use beside it.
//!
//! Exit codes: 0 success; 1 runtime failure; 2 wrong usage; 78 (EX_CONFIG) the config cannot be used.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
