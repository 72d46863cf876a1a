//! Sections of `bench/RESULTS.md` that a partial run writes (`scripts/bench --only-sessions`)
//! without replacing the last full run's table, and that a full run keeps: each sits between
//! `<!-- section NAME -->` and `<!-- end of section NAME -->`.

/// `document` with section `name` replaced by `section`, or with it appended.
pub fn splice(document: &str, name: &str, section: &str) -> String {
    let (start, end) = markers(name);
    let block = format!("{start}\n{}\n{end}\n", section.trim_end());
    match bounds(document, name) {
        Some((from, to)) => format!("{}{block}{}", &document[..from], &document[to..]),
        None => format!("{}\n\n{block}", document.trim_end()),
    }
}

/// `new` with every marked section of `old` that `new` lacks appended.
pub fn carry_over(old: &str, new: &str) -> String {
    let mut out = new.to_owned();
    for name in names(old) {
        if bounds(&out, &name).is_none() {
            if let Some((from, to)) = bounds(old, &name) {
                let block = &old[from..to];
                out = format!("{}\n\n{}", out.trim_end(), block.trim_end());
                out.push('\n');
            }
        }
    }
    out
}

fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- section {name} -->"),
        format!("<!-- end of section {name} -->"),
    )
}

/// Where section `name` starts and ends (past its end marker and newline) in `document`.
fn bounds(document: &str, name: &str) -> Option<(usize, usize)> {
    let (start, end) = markers(name);
    let from = document.find(&start)?;
    let to = from + document[from..].find(&end)? + end.len();
    let to = if document[to..].starts_with('\n') {
        to + 1
    } else {
        to
    };
    Some((from, to))
}

/// The names of the sections in `document`.
fn names(document: &str) -> Vec<String> {
    document
        .lines()
        .filter_map(|line| line.strip_prefix("<!-- section ")?.strip_suffix(" -->"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_appended_then_replaced_and_survives_a_full_rewrite() {
        let first = splice("# Results\n\ntable\n", "sessions", "## Sessions\n\nold\n");
        assert!(first.starts_with("# Results\n\ntable\n\n<!-- section sessions -->\n## Sessions"));
        let second = splice(&first, "sessions", "## Sessions\n\nnew\n");
        assert!(
            second.contains("new") && !second.contains("old"),
            "{second}"
        );
        assert_eq!(second.matches("<!-- section sessions -->").count(), 1);
        let rewritten = carry_over(&second, "# Results\n\nanother table\n");
        assert!(rewritten.contains("another table") && rewritten.contains("new"));
        assert_eq!(carry_over(&rewritten, &rewritten), rewritten);
    }
}
