//! Share-of-total gauges for the per-pod tables of `spread` and `logs`: a
//! bar [`WIDTH`] columns wide and a percentage, drawn as
//! `kubectl view-allocations` draws its gauges (full blocks, then one of
//! `▏▎▍▌▋▊▉` for the last eighth-steps) on a terminal, and in plain ASCII
//! (`#` filled, `.` empty) otherwise. Pure: the caller says which.

/// Columns a bar takes: short enough to keep a table row within
/// [`crate::render::table::WIDTH`] next to a long pod name.
pub const WIDTH: usize = 20;

/// Partial blocks, one to seven eighths of a column.
const EIGHTHS: [char; 7] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉'];
const FULL: char = '█';

/// `part` of `total` as a bar `width` columns wide, always exactly `width`
/// characters. Rounded to the nearest step (a column in ASCII, an eighth of
/// one in Unicode), except that a share above 0 is never drawn empty and a
/// share below the whole is never drawn full. A `total` of 0 draws an empty
/// bar; a `part` above `total` a full one.
pub fn bar(part: u64, total: u64, width: usize, unicode: bool) -> String {
    let per_column: u64 = if unicode { 8 } else { 1 };
    let steps = width as u64 * per_column;
    let filled = filled_steps(part, total, steps);
    if unicode {
        let full = (filled / 8) as usize;
        let rest = (filled % 8) as usize;
        let mut s: String = std::iter::repeat_n(FULL, full).collect();
        if rest > 0 {
            s.push(EIGHTHS[rest - 1]);
        }
        let drawn = full + usize::from(rest > 0);
        s.extend(std::iter::repeat_n(' ', width - drawn));
        s
    } else {
        let full = filled as usize;
        let mut s = "#".repeat(full);
        s.push_str(&".".repeat(width - full));
        s
    }
}

/// The steps of `steps` to fill for `part` of `total` (see [`bar`]).
fn filled_steps(part: u64, total: u64, steps: u64) -> u64 {
    if total == 0 || part == 0 || steps == 0 {
        return 0;
    }
    if part >= total {
        return steps;
    }
    // Round half up, in integers (no float error, no overflow).
    let exact = u128::from(part) * u128::from(steps);
    let rounded = ((2 * exact + u128::from(total)) / (2 * u128::from(total))) as u64;
    rounded.clamp(1, steps - 1)
}

/// `part` of `total` as a whole percentage, right-aligned to four columns:
/// `100%`, ` 53%`, `  0%`; `<1%` and `>99%` where rounding would claim none
/// or all. `None` when `total` is 0 (no share to speak of).
pub fn percent(part: u64, total: u64) -> Option<String> {
    if total == 0 {
        return None;
    }
    let text = match filled_steps(part, total, 100) {
        0 => "0%".to_string(),
        100 => "100%".to_string(),
        1 if u128::from(part) * 100 < u128::from(total) => "<1%".to_string(),
        99 if u128::from(part) * 100 > u128::from(total) * 99 => ">99%".to_string(),
        p => format!("{p}%"),
    };
    Some(format!("{text:>4}"))
}

/// A table cell: the bar and the percentage (`##########..........   50%`),
/// or `-` when `total` is 0.
pub fn cell(part: u64, total: u64, unicode: bool) -> String {
    match percent(part, total) {
        Some(p) => format!("{} {p}", bar(part, total, WIDTH, unicode)),
        None => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn width_of(s: &str) -> usize {
        s.chars().count()
    }

    #[test]
    fn empty_and_full() {
        assert_eq!(bar(0, 10, 10, false), "..........");
        assert_eq!(bar(10, 10, 10, false), "##########");
        assert_eq!(bar(0, 10, 4, true), "    ");
        assert_eq!(bar(10, 10, 4, true), "████");
        assert_eq!(percent(0, 10).as_deref(), Some("  0%"));
        assert_eq!(percent(10, 10).as_deref(), Some("100%"));
    }

    #[test]
    fn total_zero_is_an_empty_bar_and_no_percentage() {
        assert_eq!(bar(0, 0, 5, false), ".....");
        assert_eq!(bar(3, 0, 5, true), "     ");
        assert_eq!(percent(0, 0), None);
        assert_eq!(cell(0, 0, false), "-");
        assert_eq!(cell(0, 0, true), "-");
    }

    #[test]
    fn fractions_round_to_the_nearest_step() {
        // 5 of 6 of 20 columns = 16.67 -> 17; 1 of 6 = 3.33 -> 3.
        assert_eq!(
            bar(5, 6, 20, false),
            format!("{}{}", "#".repeat(17), ".".repeat(3))
        );
        assert_eq!(
            bar(1, 6, 20, false),
            format!("{}{}", "#".repeat(3), ".".repeat(17))
        );
        // Half a column rounds up: 1 of 4 of 10 = 2.5 -> 3.
        assert_eq!(bar(1, 4, 10, false), "###.......");
        // Unicode in eighths: 1 of 3 of 4 columns = 10.67 eighths -> 11 = █ + ▍.
        assert_eq!(bar(1, 3, 4, true), "█▍  ");
        // 1 of 2 of 3 columns = 12 eighths = █ + ▌.
        assert_eq!(bar(1, 2, 3, true), "█▌ ");
        assert_eq!(percent(5, 6).as_deref(), Some(" 83%"));
        assert_eq!(percent(1, 6).as_deref(), Some(" 17%"));
        assert_eq!(percent(1, 2).as_deref(), Some(" 50%"));
    }

    #[test]
    fn a_share_is_never_drawn_as_none_or_all_when_it_is_not() {
        assert_eq!(bar(1, 1000, 10, false), "#.........");
        assert_eq!(bar(999, 1000, 10, false), "#########.");
        assert_eq!(bar(1, 1000, 2, true), "▏ ");
        assert_eq!(bar(999, 1000, 2, true), "█▉");
        assert_eq!(percent(1, 1000).as_deref(), Some(" <1%"));
        assert_eq!(percent(999, 1000).as_deref(), Some(">99%"));
        // Exactly 1% and 99% are not hedged.
        assert_eq!(percent(1, 100).as_deref(), Some("  1%"));
        assert_eq!(percent(99, 100).as_deref(), Some(" 99%"));
    }

    #[test]
    fn bars_are_always_width_columns() {
        for unicode in [false, true] {
            for total in [0u64, 1, 3, 7, 1000, u64::MAX] {
                for part in [0, 1, total / 3, total / 2, total.saturating_sub(1), total] {
                    let b = bar(part, total, WIDTH, unicode);
                    assert_eq!(width_of(&b), WIDTH, "{part}/{total} {unicode}: {b:?}");
                }
            }
        }
        assert_eq!(bar(5, 1, 3, false), "###", "more than the total is full");
        assert_eq!(bar(1, 2, 0, true), "");
    }

    #[test]
    fn ascii_is_plain_and_unicode_uses_blocks() {
        let ascii = cell(1, 3, false);
        assert!(ascii.is_ascii(), "{ascii:?}");
        assert_eq!(ascii, format!("{}{}  33%", "#".repeat(7), ".".repeat(13)));
        let blocks = cell(1, 3, true);
        assert!(!blocks.is_ascii(), "{blocks:?}");
        assert!(blocks.starts_with("██████▋"), "{blocks:?}");
        assert!(blocks.ends_with("  33%"), "{blocks:?}");
        assert_eq!(width_of(&blocks), WIDTH + 5);
    }
}
