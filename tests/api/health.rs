use crate::helpers::spawn_app;

#[actix_rt::test]
async fn probes_are_public_and_report_readiness() {
    let app = spawn_app().await;
    let health = app.get("/healthz").send().await;
    assert_eq!(health.status, 200);
    assert_eq!(health.json()["status"], "ok");

    let ready = app.get("/readyz").send().await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ok");
}

#[actix_rt::test]
async fn the_documentation_is_served_by_the_binary() {
    let app = spawn_app().await;
    // `/docs` redirects to `/docs/` (the client follows it).
    for path in ["/docs", "/docs/"] {
        let page = app.get(path).send().await;
        assert_eq!(page.status, 200, "{path}");
        assert!(String::from_utf8_lossy(&page.body).contains("swagger-ui"), "{path}");
    }
    // The UI's assets come from the binary itself, so the page works offline.
    let bundle = app.get("/docs/swagger-ui-bundle.js").send().await;
    assert_eq!(bundle.status, 200);
    assert!(bundle.body.len() > 100_000);
    let initializer = app.get("/docs/swagger-initializer.js").send().await;
    assert!(String::from_utf8_lossy(&initializer.body).contains("/api-docs/openapi.json"));
}

/// Issue 28, item 11: the embedded database holds identity numbers, webhook secrets and
/// password hashes. Its directory is made 0700, the database and its WAL and shared-memory
/// files 0600, and a database file left readable by others is closed at start.
#[actix_rt::test]
async fn the_embedded_database_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        return; // PostgreSQL keeps its own files.
    }
    let mode = |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    let target = crate::helpers::empty_database();
    let file = std::path::PathBuf::from(&target.url);
    {
        let app = crate::helpers::TestApp::serve(&target.url);
        let admin = app.token_for(umkm_api::domain::role::Role::Admin).await;
        app.create_business(&admin, &crate::helpers::business_json(1)).await;
        assert_eq!(mode(file.parent().unwrap()), 0o700, "the directory");
        for suffix in ["", "-wal", "-shm"] {
            let path = std::path::PathBuf::from(format!("{}{suffix}", target.url));
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
    // A database file others can read (an older release's) is closed at the next start.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _app = crate::helpers::TestApp::serve(&target.url);
    assert_eq!(mode(&file), 0o600);
}

/// Without read replicas the operators' `/readyz` (on `METRICS_ADDR`) says ready and lists none.
#[actix_rt::test]
async fn the_operators_readyz_without_replicas_lists_none() {
    let app = spawn_app().await;
    let ready = app.operator("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json(), serde_json::json!({"status": "ok"}));
}
