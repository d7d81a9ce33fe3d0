mod claims;
mod report_screenshot;
