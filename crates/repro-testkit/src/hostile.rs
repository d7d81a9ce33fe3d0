//! Hostile pipeline files the YAML guard must refuse quickly (shared with
//! repro-core's `examples/bench_spec_parse.rs`, which times their refusal).

/// "Billion laughs" with one large anchor: `a: &big [x, …]` of 2,000 items, then rows of ten
/// aliases of it under `b:` until the text is `bytes` long (~130 KB of text → ~260 M nodes).
pub fn alias_bomb(bytes: usize) -> String {
    let mut s = format!("a: &big [{}]\nb:\n", vec!["x"; 2000].join(","));
    while s.len() < bytes {
        s.push_str(&format!("  - [{}]\n", ["*big"; 10].join(",")));
    }
    s
}

/// `a: [[[…]]]` nested `depth` deep (flow style: libyaml is quadratic in this depth).
pub fn deep_flow(depth: usize) -> String {
    format!("a: {}{}\n", "[".repeat(depth), "]".repeat(depth))
}

/// `- - - … x`: block sequences nested `depth` deep on one line.
pub fn deep_block(depth: usize) -> String {
    format!("{}x\n", "- ".repeat(depth))
}
