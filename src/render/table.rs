//! Lays out and word-wraps plain-text tables and paragraphs to [`WIDTH`]:
//! one module because the findings and the tables share that one width.

use tabled::builder::Builder;
use tabled::grid::util::string::get_line_width;
use tabled::settings::{Padding, Style};

/// Width that paragraphs (the verdict, a finding's detail) are wrapped to,
/// and that `table_fit` fits a table to outside `-o wide`.
pub const WIDTH: usize = 100;

/// A kubectl-style table: no borders, upper-case header, three spaces between
/// columns, each line after `indent`, no trailing spaces.
pub(crate) fn table(
    s: &mut String,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
    indent: &str,
) {
    table_with(s, header, rows, indent, 2);
}

/// A borderless table, each line after `indent`, `gap` spaces of padding and
/// the blank style's one-space separator after each column, newlines in
/// cells as spaces, no trailing spaces.
pub(crate) fn table_with(
    s: &mut String,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
    indent: &str,
    gap: usize,
) {
    let rows = rows.map(|r| r.into_iter().map(|c| c.replace('\n', " ")));
    for line in grid(header, rows, gap).lines() {
        s.push_str(indent);
        s.push_str(line.trim_end());
        s.push('\n');
    }
}

/// Like [`table`], but unless `wide` a table wider than [`WIDTH`] (with its
/// `indent`) is made to fit: the columns in `wrap_cols` are word-wrapped
/// inside their cells (continuation lines stay in the column, a blank line
/// between rows). `wide` (`-o wide`) keeps one line per row, like kubectl.
pub(crate) fn table_fit(
    s: &mut String,
    header: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
    wrap_cols: &[usize],
    indent: &str,
    wide: bool,
) {
    if wide {
        table(s, header, rows, indent);
        return;
    }
    let rows: Vec<Vec<String>> = rows
        .map(|r| r.into_iter().map(|c| c.replace('\n', " ")).collect())
        .collect();
    // Two spaces of padding and the blank style's one-space separator.
    let widths = fitted_widths(header, &rows, wrap_cols, WIDTH - indent.len(), 3);
    let Some(widths) = widths else {
        table(s, header, rows.into_iter(), indent);
        return;
    };
    let cells: Vec<Vec<Vec<String>>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .map(|(i, c)| {
                    if wrap_cols.contains(&i) {
                        wrap_cell(c, widths[i])
                    } else {
                        vec![c.clone()]
                    }
                })
                .collect()
        })
        .collect();
    let multi_line = cells.iter().flatten().any(|c| c.len() > 1);
    let rendered = grid(
        header,
        cells.iter().map(|r| r.iter().map(|lines| lines.join("\n"))),
        2,
    );
    let mut lines = rendered.lines();
    // The header, then each row's lines: as many as its tallest cell.
    let heights = std::iter::once(1).chain(
        cells
            .iter()
            .map(|r| r.iter().map(Vec::len).max().unwrap_or(1)),
    );
    for (i, height) in heights.enumerate() {
        if multi_line && i > 1 {
            s.push('\n');
        }
        for line in lines.by_ref().take(height) {
            s.push_str(indent);
            s.push_str(line.trim_end());
            s.push('\n');
        }
    }
}

/// The borderless grid under [`table_with`] and [`table_fit`]: `gap` spaces
/// of padding and the blank style's one-space separator after each column.
fn grid<R: IntoIterator<Item = String>>(
    header: &[&str],
    rows: impl Iterator<Item = R>,
    gap: usize,
) -> String {
    let mut b = Builder::default();
    b.push_record(header.iter().map(|h| h.to_string()));
    for r in rows {
        b.push_record(r);
    }
    let mut t = b.build();
    t.with(Style::blank()).with(Padding::new(0, gap, 0, 0));
    t.to_string()
}

/// The width of each column when the table must fit `budget` (after the
/// indent, `gap` spaces between columns), or `None` when it already fits.
/// Columns not in `wrap_cols` keep their width; the wrapping ones share the
/// rest, none narrower than its header or its longest word: equal shares
/// (a column narrower than its share keeps its width), then the layout that
/// makes the table fewest lines tall ([`fewest_lines`]).
fn fitted_widths(
    header: &[&str],
    rows: &[Vec<String>],
    wrap_cols: &[usize],
    budget: usize,
    gap: usize,
) -> Option<Vec<usize>> {
    let mut natural: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| get_line_width(c))
                .chain(std::iter::once(get_line_width(header[i])))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let total = natural.iter().sum::<usize>() + gap * header.len().saturating_sub(1);
    if total <= budget {
        return None;
    }
    // The least each wrapping column can take without breaking a word.
    let least: Vec<usize> = (0..header.len())
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .flat_map(|c| cell_words(c))
                .map(get_line_width)
                .chain(std::iter::once(get_line_width(header[i])))
                .max()
                .unwrap_or(0)
        })
        .collect();
    for (n, l) in natural.iter_mut().zip(&least) {
        *n = (*n).max(*l);
    }
    let fixed: usize = (0..header.len())
        .filter(|i| !wrap_cols.contains(i))
        .map(|i| natural[i])
        .sum();
    let share = budget.saturating_sub(fixed + gap * header.len().saturating_sub(1));
    let at = |level: usize, i: usize| level.clamp(least[i], natural[i]);
    let used = |level: usize| wrap_cols.iter().map(|&i| at(level, i)).sum::<usize>();
    // The highest level at which the wrapping columns fit, then the spare
    // columns of width handed out left to right.
    let level = (0..=budget).rev().find(|&l| used(l) <= share).unwrap_or(0);
    let mut widths = natural.clone();
    for &i in wrap_cols {
        widths[i] = at(level, i);
    }
    let mut spare = share.saturating_sub(used(level));
    for &i in wrap_cols {
        if spare > 0 && widths[i] == level && level < natural[i] {
            widths[i] += 1;
            spare -= 1;
        }
    }
    if let Some(better) = fewest_lines(rows, wrap_cols, &least, &natural, share, &widths) {
        widths = better;
    }
    Some(widths)
}

/// Most layouts the width search in [`fewest_lines`] tries before it settles
/// for the equal shares.
const MAX_LAYOUTS: usize = 20_000;

/// The widths for the wrapping columns that make the table fewest lines tall
/// within `share`; among equals, the one that wraps fewest cell lines, then
/// the one closest to `equal` (the equal shares). `None` when there are too
/// many layouts to try.
fn fewest_lines(
    rows: &[Vec<String>],
    wrap_cols: &[usize],
    least: &[usize],
    natural: &[usize],
    share: usize,
    equal: &[usize],
) -> Option<Vec<usize>> {
    let (&last, free) = wrap_cols.split_last()?;
    let layouts = free
        .iter()
        .try_fold(1usize, |n, &i| n.checked_mul(natural[i] - least[i] + 1))?;
    if layouts > MAX_LAYOUTS {
        return None;
    }
    // lines[row][j][w - least]: how many lines the row's cell in the j-th
    // wrapping column takes at width w.
    let lines: Vec<Vec<Vec<usize>>> = rows
        .iter()
        .map(|r| {
            wrap_cols
                .iter()
                .map(|&i| {
                    (least[i]..=natural[i])
                        .map(|w| r.get(i).map_or(1, |c| wrap_cell(c, w).len()))
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut best: Option<((usize, usize, usize), Vec<usize>)> = None;
    let mut try_widths = vec![0; free.len()];
    for n in 0..layouts {
        // The n-th combination of widths for all but the last column; the
        // last one takes what is left (more width never costs a line).
        let mut k = n;
        for (j, &i) in free.iter().enumerate() {
            let span = natural[i] - least[i] + 1;
            try_widths[j] = least[i] + k % span;
            k /= span;
        }
        let used: usize = try_widths.iter().sum();
        let Some(left) = share.checked_sub(used) else {
            continue;
        };
        if left < least[last] {
            continue;
        }
        let mut widths = try_widths.clone();
        widths.push(left.min(natural[last]));
        let (mut height, mut wrapped) = (0, 0);
        for row in &lines {
            let cells = row
                .iter()
                .zip(wrap_cols.iter().zip(&widths))
                .map(|(by_width, (&i, &w))| by_width[w - least[i]]);
            height += cells.clone().max().unwrap_or(1);
            wrapped += cells.sum::<usize>();
        }
        let distance: usize = wrap_cols
            .iter()
            .zip(&widths)
            .map(|(&i, &w)| w.abs_diff(equal[i]))
            .sum();
        let score = (height, wrapped, distance);
        if best.as_ref().is_none_or(|(b, _)| score < *b) {
            best = Some((score, widths));
        }
    }
    let (_, chosen) = best?;
    let mut widths = equal.to_vec();
    for (&i, w) in wrap_cols.iter().zip(chosen) {
        widths[i] = w;
    }
    Some(widths)
}

/// The pieces a cell may be broken into: words, and a word too long to fit
/// split after its commas (`a.example.com,b.example.com`).
fn cell_words(text: &str) -> impl Iterator<Item = &str> {
    text.split_whitespace().flat_map(|w| w.split_inclusive(','))
}

/// Wraps a cell at word boundaries to `width`; a comma-separated word that
/// does not fit is broken after a comma, and a piece longer than `width`
/// stays whole on its own line.
fn wrap_cell(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let pieces: Vec<&str> = if get_line_width(word) > width {
            word.split_inclusive(',').collect()
        } else {
            vec![word]
        };
        for (j, piece) in pieces.into_iter().enumerate() {
            // Pieces of one word join without a space.
            let sep = if j == 0 && !line.is_empty() { " " } else { "" };
            if !line.is_empty() && get_line_width(&line) + sep.len() + get_line_width(piece) > width
            {
                lines.push(std::mem::take(&mut line));
            } else {
                line.push_str(sep);
            }
            line.push_str(piece);
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Greedy word wrap; a word longer than `width` stays whole on its own line.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_wrap_at_words_then_after_commas() {
        assert_eq!(
            wrap_cell("kube-proxy, per connection, ClientIP", 16),
            vec!["kube-proxy, per", "connection,", "ClientIP"]
        );
        assert_eq!(
            wrap_cell("a.example.com,b.example.com cookie", 15),
            vec!["a.example.com,", "b.example.com", "cookie"]
        );
        assert_eq!(wrap_cell("", 5), vec![""]);
        assert_eq!(
            wrap_cell("unbreakable-word x", 4),
            vec!["unbreakable-word", "x"]
        );
    }

    #[test]
    fn wrap_keeps_words() {
        assert_eq!(wrap("a bb ccc dddd", 6), vec!["a bb", "ccc", "dddd"]);
        assert_eq!(wrap("", 10), vec![""]);
        assert_eq!(wrap("toolongword x", 4), vec!["toolongword", "x"]);
    }
}
