//! The spreadsheet's own syntax: RFC 4180 records, as spreadsheets write
//! them (separators in quoted cells, `""` for a quote, any line ending).

/// A CSV syntax problem: its record and cell (both 1-based).
#[derive(Debug)]
pub(super) struct CsvError {
    pub(super) row: usize,
    pub(super) column: usize,
    pub(super) message: &'static str,
}

/// RFC 4180 records: cells separated by `sep`, records by CRLF, LF or CR;
/// a quoted cell may hold separators, line breaks and `""` for a quote.
pub(super) fn read_csv(text: &str, sep: char) -> Result<Vec<Vec<String>>, CsvError> {
    let mut records = Vec::new();
    let mut record: Vec<String> = Vec::new();
    let mut cell = String::new();
    let mut in_quotes = false;
    let mut was_quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quotes {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    cell.push('"');
                } else {
                    in_quotes = false;
                    was_quoted = true;
                }
            } else {
                cell.push(c);
            }
            continue;
        }
        match c {
            c if c == sep => {
                record.push(std::mem::take(&mut cell));
                was_quoted = false;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                record.push(std::mem::take(&mut cell));
                records.push(std::mem::take(&mut record));
                was_quoted = false;
            }
            '"' if cell.is_empty() && !was_quoted => in_quotes = true,
            ' ' | '\t' if was_quoted => {}
            _ if was_quoted => {
                return Err(CsvError {
                    row: records.len() + 1,
                    column: record.len() + 1,
                    message: "text after a quoted cell's closing `\"`; write a quote inside a quoted cell as `\"\"`",
                });
            }
            c => cell.push(c),
        }
    }
    if in_quotes {
        return Err(CsvError {
            row: records.len() + 1,
            column: record.len() + 1,
            message: "a quoted cell is never closed: its closing `\"` is missing",
        });
    }
    if !cell.is_empty() || !record.is_empty() || was_quoted {
        record.push(cell);
        records.push(record);
    }
    Ok(records)
}

/// One record, quoted where a cell needs it, ended with CRLF.
pub(super) fn write_row(out: &mut String, cells: &[&str], sep: char) {
    for (n, cell) in cells.iter().enumerate() {
        if n > 0 {
            out.push(sep);
        }
        let quote = cell.contains([',', ';', '"', '\n', '\r'])
            || cell.starts_with(char::is_whitespace)
            || cell.ends_with(char::is_whitespace);
        if quote {
            out.push('"');
            out.push_str(&cell.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(cell);
        }
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_quote_and_unquote() {
        let mut out = String::new();
        write_row(
            &mut out,
            &[
                "plain",
                "a,b",
                "a;b",
                "say \"hi\"",
                "two\nlines",
                " pad",
                "",
            ],
            ',',
        );
        let back = read_csv(&out, ',').expect("reads");
        assert_eq!(
            back,
            vec![vec![
                "plain",
                "a,b",
                "a;b",
                "say \"hi\"",
                "two\nlines",
                " pad",
                ""
            ]]
        );
        assert!(read_csv("\"open", ',').is_err());
        let e = read_csv("a,b\n\"x\"y,z", ',').expect_err("text after the quote");
        assert_eq!((e.row, e.column), (2, 1));
    }
}
