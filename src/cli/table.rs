//! Plain-text tables for the terminal: columns padded to their widest cell.

/// Pads every column to its widest cell, two spaces apart (the first row is the header);
/// trailing spaces are cut.
pub fn align_columns(cells: &[Vec<String>]) -> String {
    let columns = cells.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|col| {
            cells
                .iter()
                .map(|row| row.get(col).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    cells
        .iter()
        .map(|row| {
            let padded: Vec<String> = row
                .iter()
                .zip(&widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            padded.join("  ").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_padded_to_the_widest_cell() {
        let cells = [["A", "B"], ["long", "x"]].map(|row| row.map(String::from).to_vec());
        assert_eq!(align_columns(&cells), "A     B\nlong  x");
        assert_eq!(align_columns(&[]), "");
    }
}
