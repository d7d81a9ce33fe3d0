//! repro-report's tests, without libtorch: verdicts on contrived observations, report.html's
//! structure, the figures in a real browser, and what the report's code version covers.

mod claims;
mod code_version;
mod html;
mod report_screenshot;
