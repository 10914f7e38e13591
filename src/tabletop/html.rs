//! The after-action report as a standalone HTML file: the same content as
//! its Markdown, with inline CSS and no external resource. Only the Markdown
//! the report writes is read (headings, lists, tables, paragraphs, code,
//! bold, italics and backslash escapes), and every text is escaped: scenario
//! and note texts are untrusted.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use crate::domain::Language;
use crate::t;

/// The HTML report beside a Markdown one: the same path, ending `.html`.
pub fn path_beside(markdown: &Path) -> PathBuf {
    markdown.with_extension("html")
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;line-height:1.45;\
max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b;background:#fff}\
h1{font-size:1.6rem;border-bottom:2px solid #1b1b1b;padding-bottom:.3rem}\
h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #bbb}\
h3{font-size:1.05rem;margin-top:1.4rem}\
table{border-collapse:collapse;width:100%;margin:.8rem 0}\
th,td{border:1px solid #999;padding:.3rem .5rem;text-align:left;vertical-align:top}\
th{background:#eee}\
td:empty::after{content:'\\00a0'}\
code{font-family:ui-monospace,Menlo,Consolas,monospace;background:#f2f2f2;padding:0 .2rem}\
@media print{body{margin:0;max-width:none}h2{break-after:avoid}tr{break-inside:avoid}}";

/// `text` with the characters HTML gives meaning escaped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

fn escape_into(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
}

/// A run of Markdown text as HTML: `code`, **bold**, *italics* and
/// backslash escapes; everything else is text, escaped. Markers with no
/// partner are text, and every element opened is closed.
fn inline(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut open: Vec<&str> = Vec::new();
    let rest = |from: usize| chars[from..].iter().collect::<String>();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if chars.get(i + 1).is_some_and(char::is_ascii_punctuation) => {
                escape_into(&mut out, &chars[i + 1].to_string());
                i += 2;
            }
            '`' => match chars[i + 1..].iter().position(|&x| x == '`') {
                Some(len) => {
                    let code: String = chars[i + 1..i + 1 + len].iter().collect();
                    out.push_str("<code>");
                    escape_into(&mut out, &code);
                    out.push_str("</code>");
                    i += len + 2;
                }
                None => {
                    out.push('`');
                    i += 1;
                }
            },
            '*' => {
                let (tag, marker) = if chars.get(i + 1) == Some(&'*') {
                    ("strong", "**")
                } else {
                    ("em", "*")
                };
                if open.last() == Some(&tag) {
                    open.pop();
                    let _ = write!(out, "</{tag}>");
                } else if !open.contains(&tag) && rest(i + marker.len()).contains(marker) {
                    open.push(tag);
                    let _ = write!(out, "<{tag}>");
                } else {
                    out.push_str(marker);
                }
                i += marker.len();
            }
            c => {
                escape_into(&mut out, &c.to_string());
                i += 1;
            }
        }
    }
    while let Some(tag) = open.pop() {
        let _ = write!(out, "</{tag}>");
    }
    out
}

/// A table row's cells: split at every `|` that is not escaped.
fn cells(row: &str) -> Vec<String> {
    let row = row.trim();
    let row = row.strip_prefix('|').unwrap_or(row);
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut escaped = false;
    for c in row.chars() {
        if c == '|' && !escaped {
            cells.push(cell.trim().to_string());
            cell.clear();
        } else {
            cell.push(c);
        }
        escaped = c == '\\' && !escaped;
    }
    if !cell.trim().is_empty() {
        cells.push(cell.trim().to_string());
    }
    cells
}

/// Whether a table row is the line under the header (`| --- | --- |`).
fn separator(row: &str) -> bool {
    cells(row)
        .iter()
        .all(|c| !c.is_empty() && c.chars().all(|x| matches!(x, '-' | ':')))
}

/// The block being written.
#[derive(PartialEq)]
enum Block {
    None,
    List,
    Table,
}

/// The report's Markdown as a standalone HTML document in `lang`.
pub fn report(markdown: &str, lang: Language) -> String {
    let title = markdown
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .unwrap_or(t!(lang, "evaluation.html_title"));
    let mut body = String::new();
    let mut block = Block::None;
    let close = |body: &mut String, block: &mut Block| {
        match block {
            Block::List => body.push_str("</ul>\n"),
            Block::Table => body.push_str("</tbody></table>\n"),
            Block::None => {}
        }
        *block = Block::None;
    };
    for line in markdown.lines() {
        if line.trim_start().starts_with('|') {
            if block != Block::Table {
                close(&mut body, &mut block);
                block = Block::Table;
                body.push_str("<table><thead><tr>");
                for c in cells(line) {
                    let _ = write!(body, "<th>{}</th>", inline(&c));
                }
                body.push_str("</tr></thead><tbody>\n");
            } else if !separator(line) {
                body.push_str("<tr>");
                for c in cells(line) {
                    let _ = write!(body, "<td>{}</td>", inline(&c));
                }
                body.push_str("</tr>\n");
            }
            continue;
        }
        if let Some(item) = line.strip_prefix("- ") {
            if block != Block::List {
                close(&mut body, &mut block);
                block = Block::List;
                body.push_str("<ul>\n");
            }
            let _ = writeln!(body, "<li>{}</li>", inline(item));
            continue;
        }
        close(&mut body, &mut block);
        let heading = [("### ", "h3"), ("## ", "h2"), ("# ", "h1")]
            .into_iter()
            .find_map(|(p, tag)| line.strip_prefix(p).map(|text| (tag, text)));
        match heading {
            Some((tag, text)) => {
                let _ = writeln!(body, "<{tag}>{}</{tag}>", inline(text));
            }
            None if line.trim().is_empty() => {}
            None => {
                let _ = writeln!(body, "<p>{}</p>", inline(line));
            }
        }
    }
    close(&mut body, &mut block);
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}</main>\n</body>\n</html>\n",
        escape(lang.code()),
        escape(&crate::sanitize::inert(&inline_text(title)))
    )
}

/// A run of Markdown text as plain text (for the document's title).
fn inline_text(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek().is_some_and(char::is_ascii_punctuation) => {
                out.extend(chars.next());
            }
            '`' | '*' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_markup_and_escapes() {
        assert_eq!(
            inline("reply with `response` <b>"),
            "reply with <code>response</code> &lt;b&gt;"
        );
        assert_eq!(
            inline("**bold** and *it*"),
            "<strong>bold</strong> and <em>it</em>"
        );
        assert_eq!(inline("a * b"), "a * b", "a lone star is text");
        assert_eq!(inline("\\<script\\> \\*x\\*"), "&lt;script&gt; *x*");
        assert_eq!(inline("**open *both"), "**open *both");
        assert_eq!(inline("`<i>`"), "<code>&lt;i&gt;</code>");
    }

    #[test]
    fn blocks() {
        let md = "# Title `t`\n\n*interim*\n\n- one\n- two\n\n| a | b |\n| --- | --- |\n| x \\| y |  |\n\nend\n";
        let html = report(md, Language::EN);
        assert!(html.contains("<title>Title t</title>"), "{html}");
        assert!(html.contains("<h1>Title <code>t</code></h1>"), "{html}");
        assert!(html.contains("<p><em>interim</em></p>"), "{html}");
        assert!(
            html.contains("<ul>\n<li>one</li>\n<li>two</li>\n</ul>"),
            "{html}"
        );
        assert!(html.contains("<tr><th>a</th><th>b</th></tr>"), "{html}");
        assert!(html.contains("<tr><td>x | y</td><td></td></tr>"), "{html}");
        assert!(!html.contains("---"), "{html}");
        assert!(html.contains("<p>end</p>"), "{html}");
        for external in ["src=", "href=", "url(", "@import"] {
            assert!(!html.contains(external), "no external resource: {html}");
        }
    }
}
