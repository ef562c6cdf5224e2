//! Text search that both back ends run alike: `lower(column) LIKE pattern ESCAPE '\\'`.
//!
//! PostgreSQL's `lower()` folds every letter its UTF-8 locale knows (`Ñ` to `ñ`, `Б` to `б`);
//! SQLite's own folds ASCII only, so SQLite connections replace it with [`sqlite_lower`] (Rust's
//! `to_lowercase`, the same folding as the pattern's), and `q=élok` finds "Kedai ÉLOK" on both.

diesel::define_sql_function! {
    /// SQL `lower(text)`.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// Replaces SQLite's ASCII-only `lower()` on `conn` with a Unicode one.
pub fn sqlite_lower(conn: &mut diesel::sqlite::SqliteConnection) -> diesel::QueryResult<()> {
    lower_utils::register_impl(conn, |text: String| {
        if text.is_ascii() { text.to_ascii_lowercase() } else { text.to_lowercase() }
    })
}

/// The LIKE pattern that finds `text` anywhere, case-insensitively: lower-cased, with `%`, `_`
/// and `\` escaped by `\`.
pub fn like_pattern(text: &str) -> String {
    let mut pattern = String::from("%");
    for c in text.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern("50%_A\\"), "%50\\%\\_a\\\\%");
    }
}
