//! Lists: `limit`, the `{data, next_cursor, total}` page, and keyset pagination — `sort` on a
//! whitelist of columns and an opaque cursor holding the last row's sort key, so a deep page
//! costs what the first page costs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use diesel::expression::BoxableExpression;
use diesel::prelude::*;
use diesel::sql_types::Bool;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use diesel::query_dsl::LoadQuery;
use diesel::query_dsl::methods::{FilterDsl, LimitDsl, ThenOrderDsl};

use crate::db::{Db, DbConnection, Pool};
use crate::disclosures::Discloser;
use crate::error::{AppError, AppResult};

/// A sort direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    /// Ascending.
    Asc,
    /// Descending (`-field`).
    Desc,
}

/// A comparison of a column with a cursor value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// Column after the value in ascending order.
    Gt,
    /// Column before the value.
    Lt,
    /// Equal.
    Eq,
}

/// One value of a sort key, as kept in a cursor (one-letter tags keep cursors short).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KeyValue {
    /// An integer column.
    #[serde(rename = "I")]
    Int(i64),
    /// A text column.
    #[serde(rename = "S")]
    Text(String),
    /// A timestamp column.
    #[serde(rename = "T")]
    Time(NaiveDateTime),
    /// A date column.
    #[serde(rename = "D")]
    Date(chrono::NaiveDate),
}

/// A boxed boolean condition on table `T`.
pub type Condition<T> = Box<dyn BoxableExpression<T, Db, SqlType = Bool>>;

/// A boxed `ORDER BY` term on table `T`.
pub type Order<T> =
    Box<dyn BoxableExpression<T, Db, SqlType = diesel::expression::expression_types::NotSelectable>>;

/// A column a list can be sorted by. Every sortable column is NOT NULL, so that keyset
/// comparisons need no NULL ordering rules (which differ between the back ends).
pub trait SortField: Copy + Eq + Sized + 'static {
    /// The table sorted.
    type Table;
    /// The rows listed.
    type Row;
    /// The primary key, the last key of every sort.
    const ID: Self;
    /// The whitelist, by parameter name.
    const ALL: &'static [(&'static str, Self)];
    /// `column <cmp> value`; `None` when the value has another type (a forged cursor).
    fn compare(self, cmp: Cmp, value: &KeyValue) -> Option<Condition<Self::Table>>;
    /// The `ORDER BY` term for this column.
    fn order(self, dir: Dir) -> Order<Self::Table>;
    /// This column's value in `row`, for the next cursor.
    fn key(self, row: &Self::Row) -> KeyValue;
}

/// Implements [`SortField::compare`], [`SortField::order`] and [`SortField::key`] for the
/// columns given as `Variant => (column, KeyValue variant)`; the row type has a field of the
/// column's name.
#[macro_export]
macro_rules! sort_columns {
    ($table:ident; $($variant:path => ($col:ident, $kind:ident)),+ $(,)?) => {
        fn compare(
            self,
            cmp: $crate::http::list::Cmp,
            value: &$crate::http::list::KeyValue,
        ) -> Option<$crate::http::list::Condition<$table::table>> {
            use $crate::http::list::{Cmp, KeyValue};
            match (self, value) {
                $(($variant, KeyValue::$kind(v)) => Some(match cmp {
                    Cmp::Gt => Box::new($table::$col.gt(v.clone())),
                    Cmp::Lt => Box::new($table::$col.lt(v.clone())),
                    Cmp::Eq => Box::new($table::$col.eq(v.clone())),
                }),)+
                _ => None,
            }
        }

        fn order(self, dir: $crate::http::list::Dir) -> $crate::http::list::Order<$table::table> {
            match (self, dir) {
                $(($variant, $crate::http::list::Dir::Asc) => Box::new($table::$col.asc()),
                  ($variant, $crate::http::list::Dir::Desc) => Box::new($table::$col.desc()),)+
            }
        }

        fn key(self, row: &Self::Row) -> $crate::http::list::KeyValue {
            match self {
                $($variant => $crate::http::list::KeyValue::$kind(row.$col.clone()),)+
            }
        }
    };
}

/// Declares the sort of a list that has one order only, by a unique column (`id`, a region's
/// `code`): `key_order!(UserOrder, users, UserRow, id, Int)`.
#[macro_export]
macro_rules! key_order {
    ($name:ident, $table:ident, $row:ty, $col:ident, $kind:ident) => {
        /// The one order of this list.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum $name {
            /// By the key column.
            Key,
        }

        impl $crate::http::list::SortField for $name {
            type Table = $table::table;
            type Row = $row;
            const ID: Self = $name::Key;
            const ALL: &'static [(&'static str, Self)] = &[(stringify!($col), $name::Key)];
            $crate::sort_columns!($table; $name::Key => ($col, $kind));
        }
    };
}

/// A parsed `sort` parameter: the keys in order, always ending with the id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort<F> {
    /// Keys and directions.
    pub keys: Vec<(F, Dir)>,
    spec: String,
}

impl<F: SortField> Sort<F> {
    /// Parses `-created_at,name`; an unknown field is 400, a repeated one keeps its first place
    /// and direction. Without `sort`, `default`.
    pub fn parse(raw: Option<&str>, default: &str) -> AppResult<Sort<F>> {
        let spec = raw.map(|s| s.trim_matches(sort_space)).filter(|s| !s.is_empty()).unwrap_or(default);
        let mut keys: Vec<(F, Dir)> = Vec::new();
        for part in spec.split(',').map(|s| s.trim_matches(sort_space)) {
            let (name, dir) = match part.strip_prefix('-') {
                Some(name) => (name, Dir::Desc),
                None => (part.strip_prefix('+').unwrap_or(part), Dir::Asc),
            };
            let field = F::ALL.iter().find(|(n, _)| *n == name).map(|(_, f)| *f).ok_or_else(|| {
                let names: Vec<&str> = F::ALL.iter().map(|(n, _)| *n).collect();
                AppError::BadRequest(format!("cannot sort by {name:?}; sort by {}", names.join(", ")))
            })?;
            if keys.iter().any(|(f, _)| *f == field) {
                continue;
            }
            keys.push((field, dir));
            if field == F::ID {
                break;
            }
        }
        if !keys.iter().any(|(f, _)| *f == F::ID) {
            let dir = keys.last().map_or(Dir::Asc, |(_, d)| *d);
            keys.push((F::ID, dir));
        }
        Ok(Sort { keys, spec: spec.to_owned() })
    }

    /// The condition selecting the rows after `cursor` in this order.
    pub fn after(&self, cursor: &str) -> AppResult<Condition<F::Table>> {
        let bad = || AppError::BadRequest("cursor is not one this API issued for this sort".into());
        let (spec, values): (String, Vec<KeyValue>) = decode_cursor(cursor)?;
        if spec != self.spec || values.len() != self.keys.len() {
            return Err(bad());
        }
        // (k1 > v1) OR (k1 = v1 AND k2 > v2) OR … with > as < for descending keys.
        let mut any: Option<Condition<F::Table>> = None;
        for i in 0..self.keys.len() {
            let (field, dir) = self.keys[i];
            let step = if dir == Dir::Asc { Cmp::Gt } else { Cmp::Lt };
            let mut term = field.compare(step, &values[i]).ok_or_else(bad)?;
            for j in (0..i).rev() {
                let equal = self.keys[j].0.compare(Cmp::Eq, &values[j]).ok_or_else(bad)?;
                term = Box::new(equal.and(term));
            }
            any = Some(match any {
                None => term,
                Some(previous) => Box::new(previous.or(term)),
            });
        }
        any.ok_or_else(bad)
    }

    /// Whether the order is by the id alone.
    pub fn by_id(&self) -> bool {
        matches!(self.keys.as_slice(), [(field, _)] if *field == F::ID)
    }

    /// The cursor of a row whose sort key is `values`.
    pub fn cursor(&self, values: Vec<KeyValue>) -> String {
        encode_cursor(&(&self.spec, values))
    }
}

/// Splits the `limit + 1` rows fetched into the page and the next cursor.
pub fn page_of<F: SortField>(
    mut rows: Vec<F::Row>,
    limit: i64,
    sort: &Sort<F>,
) -> (Vec<F::Row>, Option<String>) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() <= limit {
        return (rows, None);
    }
    rows.truncate(limit);
    let next = rows.last().map(|row| sort.cursor(sort.keys.iter().map(|(f, _)| f.key(row)).collect()));
    (rows, next)
}

/// One page of `query` (filtered and selected) after the cursor `after` in `sort` order: the
/// rows and the next page's cursor. Every keyset list reads its pages through this.
pub fn keyset<F, Q>(
    conn: &mut DbConnection,
    query: Q,
    sort: &Sort<F>,
    after: Option<&str>,
    limit: i64,
) -> AppResult<(Vec<F::Row>, Option<String>)>
where
    F: SortField,
    Q: FilterDsl<Condition<F::Table>, Output = Q>
        + ThenOrderDsl<Order<F::Table>, Output = Q>
        + LimitDsl<Output = Q>
        + RunQueryDsl<DbConnection>
        + for<'a> LoadQuery<'a, DbConnection, F::Row>,
{
    let rows = keyset_query(query, sort, after, limit)?.load(conn)?;
    Ok(page_of(rows, limit, sort))
}

/// The query [`keyset`] runs: `query` after the cursor, in `sort` order, `limit + 1` rows.
pub fn keyset_query<F, Q>(query: Q, sort: &Sort<F>, after: Option<&str>, limit: i64) -> AppResult<Q>
where
    F: SortField,
    Q: FilterDsl<Condition<F::Table>, Output = Q>
        + ThenOrderDsl<Order<F::Table>, Output = Q>
        + LimitDsl<Output = Q>,
{
    let mut query = query;
    if let Some(cursor) = after {
        query = FilterDsl::filter(query, sort.after(cursor)?);
    }
    for (field, dir) in &sort.keys {
        query = ThenOrderDsl::then_order_by(query, field.order(*dir));
    }
    Ok(LimitDsl::limit(query, limit + 1))
}

/// Answers a list request with a JSON page, `total` included when `count` is set.
/// `page(conn, after, limit)` reads one page after a cursor; `count(conn)` the total.
pub async fn json_page<R, P, C>(
    pool: &Pool,
    params: PageParams,
    page: P,
    count: C,
) -> AppResult<actix_web::HttpResponse>
where
    R: Serialize + Send + 'static,
    P: Fn(&mut DbConnection, Option<&str>, i64) -> AppResult<(Vec<R>, Option<String>)>
        + Send
        + Sync
        + 'static,
    C: Fn(&mut DbConnection) -> AppResult<i64> + Send + Sync + 'static,
{
    let limit = limit(params.limit)?;
    // A count is not among the queries proven index-exact: it keeps the plans of the values.
    let pool = if params.generic_plans && !params.count { pool.generic_plans() } else { pool.clone() };
    let disclosing = params.disclosing.clone();
    if let Some(disclosing) = &disclosing {
        disclosing.defer();
    }
    // A list tolerates lag: a replica serves it when one may (see `crate::db::replicas`).
    let result = crate::db::replicas::read(&pool, move |conn| {
        let total = if params.count { Some(count(conn)?) } else { None };
        let (data, next_cursor) = page(conn, params.cursor.as_deref(), limit)?;
        Ok(Page { data, next_cursor, total })
    })
    .await;
    // Waited for whatever the read came to: no page is answered before its entries are written.
    if let Some(disclosing) = &disclosing {
        disclosing.settle().await?;
    }
    let result = result?;
    // Sized for a page up front (a business row is about 700 bytes of JSON), so that a page
    // is not copied through a string doubling from 128 bytes.
    let mut body = Vec::with_capacity(256 + result.data.len() * 1024);
    serde_json::to_writer(&mut body, &result)
        .map_err(|e| AppError::internal(format!("a page did not serialize: {e}")))?;
    Ok(actix_web::HttpResponse::Ok().content_type(actix_web::http::header::ContentType::json()).body(body))
}

/// Answers a list request: a JSON page (see [`json_page`]), or with `Accept: text/csv` /
/// `application/x-ndjson` every row streamed from the cursor on.
pub async fn respond<R, P, C>(
    req: &actix_web::HttpRequest,
    pool: &Pool,
    params: PageParams,
    csv_header: &'static str,
    page: P,
    count: C,
) -> AppResult<actix_web::HttpResponse>
where
    R: Serialize + Send + 'static,
    P: Fn(&mut DbConnection, Option<&str>, i64) -> AppResult<(Vec<R>, Option<String>)>
        + Send
        + Sync
        + 'static,
    C: Fn(&mut DbConnection) -> AppResult<i64> + Send + Sync + 'static,
{
    use crate::http::export::{self, Format};
    let format = Format::of(req);
    if format != Format::Page {
        let start = params.cursor;
        return export::stream(req, pool, format, csv_header, move |conn, after: Option<&String>| {
            page(conn, after.or(start.as_ref()).map(String::as_str), export::CHUNK)
        })
        .await;
    }
    json_page(pool, params, page, count).await
}

/// The paging part of a list query.
#[derive(Debug, Clone, Default)]
pub struct PageParams {
    /// `limit`.
    pub limit: Option<i64>,
    /// `cursor`.
    pub cursor: Option<String>,
    /// `count=true`.
    pub count: bool,
    /// The page's query is index-exact: one plan serves every value (see
    /// [`Pool::generic_plans`]).
    pub generic_plans: bool,
    /// What records the page's disclosures: its entries are written while the page is
    /// serialized, and waited for once its connection is back ([`Discloser::defer`]).
    pub disclosing: Option<Discloser>,
}

impl PageParams {
    /// The query's `limit`, `cursor` and `count`.
    /// An empty `cursor=` is no cursor: the first page (as a form's empty field sends it).
    pub fn new(limit: Option<i64>, cursor: Option<&str>, count: Option<bool>) -> Self {
        PageParams {
            limit,
            cursor: cursor.filter(|c| !c.is_empty()).map(str::to_owned),
            count: count == Some(true),
            generic_plans: false,
            disclosing: None,
        }
    }

    /// A page whose disclosures `disclosing` records: its page function calls
    /// [`Discloser::disclose_blocking`], and the page is answered once they are written.
    pub fn recorded_by(self, disclosing: &Discloser) -> Self {
        PageParams { disclosing: Some(disclosing.clone()), ..self }
    }

    /// Reads the page through [`Pool::generic_plans`] when `index_exact`.
    pub fn with_generic_plans(self, index_exact: bool) -> Self {
        PageParams { generic_plans: index_exact, ..self }
    }
}

/// Rows per page when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 50;
/// The largest `limit` accepted.
pub const MAX_LIMIT: i64 = 500;

/// One page of a list.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    /// The rows of this page.
    pub data: Vec<T>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
    /// The number of rows matching the filters, when `count=true` was asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<i64>,
}

/// Checks `limit` (default 50, 1 to 500).
pub fn limit(requested: Option<i64>) -> AppResult<i64> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(AppError::BadRequest(format!("limit must be between 1 and {MAX_LIMIT}"))),
    }
}

/// A cursor that is a row's id (the last of the previous page), for lists ordered by id: `None`
/// for none; 400 for anything but a positive integer.
pub fn id_cursor(cursor: Option<&str>) -> AppResult<Option<i64>> {
    match cursor.filter(|c| !c.is_empty()) {
        None => Ok(None),
        Some(cursor) => cursor
            .parse::<i64>()
            .ok()
            .filter(|c| *c > 0)
            .map(Some)
            .ok_or_else(|| AppError::BadRequest("cursor is not one this API issued".into())),
    }
}

/// Cuts `rows`, read `limit + 1` at a time, to `limit`; the next page's cursor (the id of the
/// last row kept, by `id`) when there was one more.
pub fn trim_to<T>(rows: &mut Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Option<String> {
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    if more { rows.last().map(|r| id(r).to_string()) } else { None }
}

/// The longest `q` a list accepts, in characters.
pub const MAX_QUERY_TEXT: usize = 200;

/// Checks the filters several lists share: `q` at most [`MAX_QUERY_TEXT`] characters, a
/// `district` shaped as a district code ([`patterns::DISTRICT`](crate::domain::codes::patterns::DISTRICT)).
pub fn check_filters(q: Option<&str>, district: Option<&str>) -> AppResult<()> {
    if q.is_some_and(|q| q.chars().count() > MAX_QUERY_TEXT) {
        return Err(AppError::BadRequest(format!("q must be at most {MAX_QUERY_TEXT} characters")));
    }
    if let Some(district) = district {
        crate::domain::codes::DistrictCode::parse(district)
            .map_err(|e| AppError::BadRequest(format!("district {}", e.message)))?;
    }
    Ok(())
}

/// The shape of every cursor [`encode_cursor`] makes (unpadded base64url), as declared in the
/// OpenAPI document; only the server's own cursors decode, and an empty one is the first page.
pub const CURSOR_PATTERN: &str = "^[A-Za-z0-9_-]*$";

/// The shape of a `sort` over `F`'s columns, as declared in the OpenAPI document: keys
/// separated by commas, each with an optional `-` (descending) or `+`.
pub fn sort_pattern<F: SortField>() -> String {
    let names: Vec<&str> = F::ALL.iter().map(|(n, _)| *n).collect();
    let key = format!("[-+]?({})", names.join("|"));
    let space = r"[ \t\n\f\r]*";
    format!("^{space}({key}{space}(,{space}{key}{space})*)?$")
}

/// The spaces a `sort` may have around its keys ([`sort_pattern`] declares the same): ASCII's,
/// not every Unicode space (a regular expression's `\s` and Rust's `trim` differ beyond them).
fn sort_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0C' | '\r')
}

/// Encodes the sort key of the last row of a page as an opaque cursor.
pub fn encode_cursor<K: Serialize>(key: &K) -> String {
    // Serializing plain keys (numbers, strings, timestamps) cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is 400.
pub fn decode_cursor<K: DeserializeOwned>(cursor: &str) -> AppResult<K> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(|| AppError::BadRequest("cursor is not one this API issued".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_forgeries() {
        let cursor = encode_cursor(&(42_i64, "b"));
        assert_eq!(decode_cursor::<(i64, String)>(&cursor).unwrap(), (42, "b".to_owned()));
        assert!(decode_cursor::<(i64, String)>("not-a-cursor").is_err());
        assert!(decode_cursor::<i64>(&encode_cursor(&"text")).is_err());
    }

    #[test]
    fn id_cursors_are_positive_ids_and_pages_are_trimmed() {
        assert_eq!(id_cursor(None).ok(), Some(None));
        assert_eq!(id_cursor(Some("")).ok(), Some(None));
        assert_eq!(id_cursor(Some("42")).ok(), Some(Some(42)));
        for bad in ["0", "-5", "abc", "99999999999999999999"] {
            assert!(id_cursor(Some(bad)).is_err(), "{bad}");
        }
        let mut rows = vec![9, 8, 7];
        assert_eq!(trim_to(&mut rows, 2, |r| *r), Some("8".to_owned()));
        assert_eq!(rows, vec![9, 8]);
        assert_eq!(trim_to(&mut rows, 2, |r| *r), None);
    }

    #[test]
    fn limits_are_bounded() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some(500)).unwrap(), 500);
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(501)).is_err());
    }

    #[derive(Debug, Clone)]
    struct Row {
        id: i64,
        email: String,
    }

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum ByEmail {
        Id,
        Email,
    }

    use crate::db::schema::users;

    impl SortField for ByEmail {
        type Table = users::table;
        type Row = Row;
        const ID: Self = ByEmail::Id;
        const ALL: &'static [(&'static str, Self)] = &[("id", ByEmail::Id), ("email", ByEmail::Email)];
        crate::sort_columns!(users; ByEmail::Id => (id, Int), ByEmail::Email => (email, Text));
    }

    #[test]
    fn sorts_end_with_the_id_and_refuse_unknown_or_repeated_keys() {
        let sort = Sort::<ByEmail>::parse(Some("-email"), "id").unwrap();
        assert_eq!(sort.keys, vec![(ByEmail::Email, Dir::Desc), (ByEmail::Id, Dir::Desc)]);
        assert_eq!(Sort::<ByEmail>::parse(None, "id").unwrap().keys, vec![(ByEmail::Id, Dir::Asc)]);
        assert!(matches!(Sort::<ByEmail>::parse(Some("colour"), "id"), Err(AppError::BadRequest(_))));
        let repeated = Sort::<ByEmail>::parse(Some("email,-email"), "id").unwrap();
        assert_eq!(repeated.keys, vec![(ByEmail::Email, Dir::Asc), (ByEmail::Id, Dir::Asc)]);
        let pattern = regex_lite::Regex::new(&sort_pattern::<ByEmail>()).unwrap();
        for good in ["", "email", "-email,+id", "email,email"] {
            assert!(pattern.is_match(good), "{good}");
            assert!(Sort::<ByEmail>::parse(Some(good), "id").is_ok(), "{good}");
        }
        for bad in ["colour", "email,", ",email", "--email", "email id"] {
            assert!(!pattern.is_match(bad), "{bad}");
            assert!(Sort::<ByEmail>::parse(Some(bad), "id").is_err(), "{bad}");
        }
    }

    #[test]
    fn a_full_page_has_a_cursor_for_its_own_sort_only() {
        let sort = Sort::<ByEmail>::parse(Some("email"), "id").unwrap();
        let rows: Vec<Row> = (1..=3).map(|id| Row { id, email: format!("u{id}@x") }).collect();
        let (page, next) = page_of(rows.clone(), 2, &sort);
        assert_eq!(page.iter().map(|r| r.id).collect::<Vec<_>>(), [1, 2]);
        let next = next.expect("a next cursor");
        assert!(sort.after(&next).is_ok());
        let other = Sort::<ByEmail>::parse(Some("-email"), "id").unwrap();
        assert!(matches!(other.after(&next), Err(AppError::BadRequest(_))));
        assert!(page_of(rows, 3, &sort).1.is_none());
    }
}
