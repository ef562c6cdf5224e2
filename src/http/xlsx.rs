//! XLSX exports (issue 29): the rows of a list or a statistics table as one worksheet, for the
//! people who open exports in a spreadsheet. Every text is a text cell, so that a 16-digit NIK,
//! an NIB, an NPWP or a phone number keeps every digit (opened from CSV, Excel reads them as
//! numbers and keeps 15), and a text starting with `=` is shown, never run as a formula. Numbers
//! and booleans are numbers and booleans; `null` is an empty cell.
//!
//! The worksheet is written in rust_xlsxwriter's constant-memory mode (rows go to a temporary
//! file as they come), and a list's workbook is written to a temporary file and sent from it once
//! complete (a zip archive cannot be streamed before its end is known), so memory stays bounded;
//! [`MAX_AT_ONCE`] are built at a time.

use rust_xlsxwriter::{Format, Workbook, XlsxError};
use serde_json::Value;

use crate::error::{AppError, AppResult};

/// The media type of an XLSX workbook.
pub const MEDIA_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Workbooks of lists built at once; more wait their turn (each holds a connection, a blocking
/// thread and a temporary file while it is built).
pub const MAX_AT_ONCE: usize = 2;

/// Data rows a worksheet holds at most (Excel's 1,048,576 rows, one of them the header).
pub const MAX_ROWS: u32 = 1_048_575;

fn internal(e: XlsxError) -> AppError {
    AppError::internal(format!("the XLSX export failed: {e}"))
}

/// A workbook of one worksheet being written, row by row.
pub struct Sheet {
    workbook: Workbook,
    header: Vec<String>,
    rows: u32,
}

impl Sheet {
    /// A worksheet whose header row is `header`.
    pub fn new(header: Vec<String>) -> AppResult<Sheet> {
        let mut workbook = Workbook::new();
        let bold = Format::new().set_bold();
        let sheet = workbook.add_worksheet_with_constant_memory().map_err(internal)?;
        for (col, name) in header.iter().enumerate() {
            sheet.write_string_with_format(0, column(col)?, name, &bold).map_err(internal)?;
        }
        Ok(Sheet { workbook, header, rows: 0 })
    }

    /// A worksheet whose header is the CSV header line `line` (`id,name,…`).
    pub fn with_csv_header(line: &str) -> AppResult<Sheet> {
        Sheet::new(line.trim_end().split(',').map(str::to_owned).collect())
    }

    /// Appends a row: the values of `row` (a JSON object) under the header's names.
    pub fn push(&mut self, row: &Value) -> AppResult<()> {
        if self.rows >= MAX_ROWS {
            return Err(AppError::BadRequest(format!(
                "an XLSX worksheet holds at most {MAX_ROWS} rows and this export has more: narrow the \
                 filters, or ask for text/csv"
            )));
        }
        self.rows += 1;
        let at = self.rows;
        let sheet = self.workbook.worksheet_from_index(0).map_err(internal)?;
        for (col, name) in self.header.iter().enumerate() {
            let col = column(col)?;
            match &row[name.as_str()] {
                Value::Null => {}
                Value::Bool(b) => {
                    sheet.write_boolean(at, col, *b).map_err(internal)?;
                }
                // Whole rupiah up to 10^15 and ids are exact in a double (below 2^53).
                Value::Number(n) => {
                    sheet.write_number(at, col, n.as_f64().unwrap_or_default()).map_err(internal)?;
                }
                Value::String(text) => {
                    sheet.write_string(at, col, text).map_err(internal)?;
                }
                other => {
                    sheet.write_string(at, col, other.to_string()).map_err(internal)?;
                }
            }
        }
        Ok(())
    }

    /// The finished workbook's bytes (a small table's).
    pub fn finish(mut self) -> AppResult<Vec<u8>> {
        self.workbook.save_to_buffer().map_err(internal)
    }

    /// The finished workbook in an unnamed temporary file, read from its start: a list's export,
    /// sent from the file rather than held in memory.
    pub fn finish_to_file(mut self) -> AppResult<std::fs::File> {
        use std::io::{Seek, SeekFrom};
        let mut file = tempfile::tempfile().map_err(AppError::internal)?;
        self.workbook.save_to_writer(&mut file).map_err(internal)?;
        file.seek(SeekFrom::Start(0)).map_err(AppError::internal)?;
        Ok(file)
    }
}

fn column(index: usize) -> AppResult<u16> {
    u16::try_from(index).map_err(|_| AppError::internal("an export of more than 65,535 columns"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_workbook_is_a_zip_whose_texts_stay_texts() {
        let mut sheet = Sheet::with_csv_header("id,owner_nik,name,active,capital_idr\n").unwrap();
        sheet
            .push(&json!({"id": 1, "owner_nik": "3524012404970127", "name": "=HYPERLINK(1)", "active": true,
                          "capital_idr": null}))
            .unwrap();
        let bytes = sheet.finish().unwrap();
        assert_eq!(&bytes[..2], b"PK", "a zip archive");
        let sheet_xml = unzip(&bytes, "xl/worksheets/sheet1.xml");
        let strings = unzip(&bytes, "xl/sharedStrings.xml") + &sheet_xml;
        assert!(strings.contains("3524012404970127"), "the NIK whole, as text");
        assert!(!sheet_xml.contains("<f>"), "no formula: {sheet_xml}");
        assert!(sheet_xml.contains(r#"t="b""#), "a boolean cell");
    }

    /// The text of `name` in the zip `bytes` (stored or deflated), found by its local header.
    fn unzip(bytes: &[u8], name: &str) -> String {
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut file = match archive.by_name(name) {
            Ok(file) => file,
            Err(_) => return String::new(),
        };
        let mut text = String::new();
        std::io::Read::read_to_string(&mut file, &mut text).unwrap();
        text
    }
}
