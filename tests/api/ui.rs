//! The web UI is embedded in the binary and served at `/` and `/ui/...` with a strict
//! Content-Security-Policy, correct types and revalidation, without hiding the API's own pages.

use std::collections::BTreeSet;

use crate::helpers::{assert_error, spawn_app};

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("{name} header on {}", response.url()))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn the_page_is_served_at_the_root_with_a_strict_csp() {
    let app = spawn_app().await;
    let response = app.get("/").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        "text/html; charset=utf-8"
    );
    let csp = header(&response, "content-security-policy");
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    assert!(!csp.contains("unsafe"), "no unsafe-* allowance in {csp}");
    assert_eq!(header(&response, "x-content-type-options"), "nosniff");
    assert!(header(&response, "etag").starts_with('"'));
    assert_eq!(header(&response, "cache-control"), "no-cache");
    let html = response.text().await.unwrap();
    assert!(
        html.split("<script")
            .skip(1)
            .all(|tag| tag.contains("src=")),
        "no inline script: the CSP would block it"
    );
}

#[tokio::test]
async fn every_asset_the_page_and_its_modules_load_is_served_with_its_type() {
    let app = spawn_app().await;
    let html = app.get("/").await.text().await.unwrap();
    let mut pending: Vec<String> = ["src=\"", "href=\""]
        .iter()
        .flat_map(|attribute| html.split(attribute).skip(1))
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .filter(|target| !target.starts_with('#'))
        .collect();
    let mut seen = BTreeSet::new();
    while let Some(path) = pending.pop() {
        assert!(path.starts_with("/ui/"), "{path} is served by ragd");
        if !seen.insert(path.clone()) {
            continue;
        }
        let response = app.get(&path).await;
        assert_eq!(response.status(), 200, "{path}");
        let expected = match path.rsplit_once('.').unwrap().1 {
            "js" => "text/javascript; charset=utf-8",
            "css" => "text/css; charset=utf-8",
            "svg" => "image/svg+xml; charset=utf-8",
            other => panic!("unexpected asset type {other}"),
        };
        assert_eq!(header(&response, "content-type"), expected, "{path}");
        assert_eq!(header(&response, "x-content-type-options"), "nosniff");
        assert!(header(&response, "content-security-policy").contains("default-src 'self'"));
        if path.ends_with(".js") {
            // Follow the module graph: every `import ... from './x.js'` must be embedded too.
            let source = response.text().await.unwrap();
            let dir = path.rsplit_once('/').unwrap().0;
            for import in source.split("from './").skip(1) {
                let file = import.split('\'').next().unwrap();
                pending.push(format!("{dir}/{file}"));
            }
        }
    }
    assert!(seen.contains("/ui/js/app.js") && seen.contains("/ui/js/api.js"));
    assert!(
        seen.len() >= 10,
        "the whole module graph was walked: {seen:?}"
    );
}

#[tokio::test]
async fn a_current_copy_is_revalidated_with_its_etag() {
    let app = spawn_app().await;
    let first = app.get("/ui/style.css").await;
    let etag = header(&first, "etag").to_string();
    let again = app
        .client
        .get(app.url("/ui/style.css"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), etag);
    assert!(again.bytes().await.unwrap().is_empty());
    let stale = app
        .client
        .get(app.url("/ui/style.css"))
        .header("if-none-match", "\"not-this-one\"")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 200);
}

#[tokio::test]
async fn an_unknown_asset_is_a_404_in_the_error_shape() {
    let app = spawn_app().await;
    for path in [
        "/ui/nope.js",
        "/ui/js/",
        "/ui/%2e%2e/Cargo.toml",
        "/ui/..%2f..%2fCargo.toml",
    ] {
        assert_error(app.get(path).await, 404, "not_found").await;
    }
}

#[tokio::test]
async fn the_api_pages_stay_where_they_were() {
    let app = spawn_app().await;
    for path in ["/health", "/openapi.json", "/docs/", "/redoc"] {
        assert_eq!(app.get(path).await.status(), 200, "{path}");
    }
    let docs = app.get("/docs/").await;
    assert!(
        !header(&docs, "content-security-policy").contains("script-src 'self';"),
        "the docs keep their own policy"
    );
}
