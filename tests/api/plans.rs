//! The list pages read with generic plans (`Pool::generic_plans`) are index ranges for any
//! values. PostgreSQL only: SQLite has no plan cache, every statement is planned for its values.
//!
//! For every business list with one or two filters, the statement the server ran is prepared
//! again and explained with `plan_cache_mode = force_generic_plan`, as the server's generic
//! connections run it. Where `BusinessFilter::index_exact` says a page is index-exact, the
//! plan must read businesses through an index whose conditions hold every filter: no row
//! filtered after it is read. Declaring a shape exact without an index fails here.

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::Text;
use umkm_api::businesses::{BusinessFilter, BusinessStatus, ScaleFilter};
use umkm_api::db::Backend;
use umkm_api::domain::role::Role;
use umkm_api::seed::{self, Options};

use crate::helpers::{spawn_app, test_keys};

/// The prefix of the page query of the business list.
const PAGE_SQL: &str = "SELECT \"businesses\".\"id\", \"businesses\".\"name\"";

#[derive(QueryableByName)]
struct Line {
    #[diesel(sql_type = Text)]
    line: String,
}

/// One filter: its query parameter and its part of the [`BusinessFilter`].
struct Given {
    param: &'static str,
    set: fn(&mut BusinessFilter),
}

fn filters() -> Vec<Given> {
    vec![
        Given { param: "district=35.24.05", set: |f| f.district = Some("35.24.05".into()) },
        Given { param: "status=active", set: |f| f.status = Some(BusinessStatus::Active) },
        Given { param: "kbli=10792", set: |f| f.kbli = Some("10792".into()) },
        Given { param: "kbli=10", set: |f| f.kbli = Some("10".into()) },
        Given { param: "scale=mikro", set: |f| f.scale = Some(ScaleFilter::Mikro) },
        Given { param: "scale=unknown", set: |f| f.scale = Some(ScaleFilter::Unknown) },
        Given { param: "is_ikm=true", set: |f| f.is_ikm = Some(true) },
        Given { param: "q=sari", set: |f| f.q = Some("sari".into()) },
        Given {
            param: "established_from=2015-01-01",
            set: |f| f.established_from = chrono::NaiveDate::from_ymd_opt(2015, 1, 1),
        },
    ]
}

/// The generic plan of `sql` (diesel's text: the SQL, then ` -- binds: …`), one line per row.
fn generic_plan(conn: &mut PgConnection, sql: &str) -> Vec<String> {
    let sql = sql.split(" -- binds:").next().unwrap();
    let params = (1..=20).rev().find(|n| sql.contains(&format!("${n}"))).unwrap_or(0);
    conn.batch_execute(&format!("DEALLOCATE ALL; PREPARE shape AS {sql}")).unwrap();
    let nulls = vec!["NULL"; params].join(", ");
    let explain = format!("EXPLAIN EXECUTE shape({nulls})");
    diesel::sql_query(format!("SELECT line FROM pg_temp.plan_lines('{explain}') AS line"))
        .load::<Line>(conn)
        .unwrap()
        .into_iter()
        .map(|l| l.line)
        .collect()
}

/// Rows read and then dropped by a condition: a `Filter:` line (a one-time filter on a
/// parameter, as `WHERE $1` of the unfiltered list, reads nothing).
fn filters_rows(plan: &[String]) -> bool {
    plan.iter().any(|l| l.contains("Filter:") && !l.contains("One-Time Filter:"))
}

#[actix_rt::test]
async fn index_exact_pages_plan_as_index_ranges() {
    let app = spawn_app().await;
    if Backend::of_url(&app.database_url) != Backend::Postgres {
        return;
    }
    // Enough rows for the planner's statistics to tell an index range from a filtered scan.
    let options = Options { businesses: 6_000, seed: 11, force: false };
    app.db(|conn| seed::generate(conn, &test_keys(), &options, |_| ())).unwrap();
    let mut conn = PgConnection::establish(&app.database_url).unwrap();
    conn.batch_execute(
        "ANALYZE businesses; SET plan_cache_mode = force_generic_plan;
         CREATE FUNCTION pg_temp.plan_lines(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
         DECLARE l text; BEGIN FOR l IN EXECUTE q LOOP RETURN NEXT l; END LOOP; END $$;",
    )
    .unwrap();
    app.watch_sql(PAGE_SQL);
    let admin = app.token_for(Role::Admin).await;
    let all = filters();
    let mut shapes: Vec<Vec<&Given>> = vec![vec![]];
    shapes.extend(all.iter().map(|g| vec![g]));
    for (i, a) in all.iter().enumerate() {
        let key = |g: &Given| g.param.split('=').next().unwrap();
        shapes.extend(all[i + 1..].iter().filter(|b| key(b) != key(a)).map(|b| vec![a, b]));
    }
    let (mut exact, mut filtered_elsewhere, mut wrong) = (0, 0, Vec::new());
    for shape in shapes {
        let mut filter = BusinessFilter::default();
        shape.iter().for_each(|g| (g.set)(&mut filter));
        let params: Vec<&str> = shape.iter().map(|g| g.param).collect();
        let first = format!("/api/v1/businesses?limit=5&{}", params.join("&"));
        let page = app.get(&first).token(&admin).send().await;
        assert_eq!(page.status, 200, "{first}: {}", String::from_utf8_lossy(&page.body));
        let mut paths = vec![first.clone()];
        if let Some(cursor) = page.json()["next_cursor"].as_str() {
            paths.push(format!("{first}&cursor={cursor}"));
        }
        for path in paths {
            if path != first {
                assert_eq!(app.get(&path).token(&admin).send().await.status, 200, "{path}");
            }
            let sql = app.last_sql(PAGE_SQL);
            assert!(sql.contains("LIMIT"), "{path}: the page query was seen ({sql})");
            let plan = generic_plan(&mut conn, &sql);
            if filter.index_exact() {
                exact += 1;
                if filters_rows(&plan) || !plan.iter().any(|l| l.contains("Index")) {
                    wrong.push(format!("{path}:\n{}", plan.join("\n")));
                }
            } else if filters_rows(&plan) {
                filtered_elsewhere += 1;
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "declared index-exact, but their generic plans filter rows:\n{}",
        wrong.join("\n")
    );
    // The shapes declared exact, and the check itself: shapes outside the list do filter rows
    // in their generic plans, which is why they keep plans made for their values.
    assert_eq!(
        exact, 4,
        "the unfiltered list and district with status, each on its first page and after a cursor"
    );
    assert!(filtered_elsewhere > 0, "no shape outside the list filters rows: the check sees nothing");
}
