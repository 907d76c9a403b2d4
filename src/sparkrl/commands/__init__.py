"""Command-line subcommands of `sparkrl`; see sparkrl.cli for the contract each module follows."""
