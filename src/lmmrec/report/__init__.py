"""Offline HTML report of training runs: `build_report(run_dirs)` / `write_report`."""
