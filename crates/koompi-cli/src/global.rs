//! The options every KOOMPI command takes (`--json`, `-v`), defined once and flattened
//! into each binary's command line.

use clap::Args;
use koompi_core::output::Format;

/// `--json` and `-v`, the same on every binary.
#[derive(Debug, Clone, Copy, Default, Args)]
pub struct GlobalArgs {
    /// Print JSON for scripts instead of text and tables.
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl GlobalArgs {
    /// How results are printed.
    pub fn format(&self) -> Format {
        Format::from_flag(self.json)
    }

    /// Sends log output to stderr at the chosen level.
    pub fn init_logging(&self) {
        koompi_core::logging::init(self.verbose);
    }
}
