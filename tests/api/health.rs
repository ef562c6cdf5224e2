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
