//! The API documentation is generated from the code and served entirely from the binary.

use crate::helpers::{Backend, spawn_app, spawn_app_with};

#[tokio::test]
async fn openapi_json_is_openapi_3_1_and_lists_the_routes() {
    let app = spawn_app().await;
    let response = app.get("/openapi.json").await;
    assert_eq!(response.status(), 200);
    let doc: serde_json::Value = response.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in ["/health", "/health/ready"] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["schemas"]["ErrorResponse"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

#[tokio::test]
async fn swagger_ui_can_sign_in_with_the_oauth2_password_flow() {
    let app = spawn_app().await;
    let doc: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    let flow = &doc["components"]["securitySchemes"]["password"]["flows"]["password"];
    assert_eq!(flow["tokenUrl"], "/api/v1/auth/token");
    // Every protected route accepts either scheme.
    assert_eq!(
        doc["paths"]["/api/v1/auth/me"]["get"]["security"],
        serde_json::json!([{"bearer": []}, {"password": []}])
    );

    // What Swagger UI sends: the form with an empty scope, and the (empty) client credentials
    // in a Basic header.
    crate::helpers::signed_up(&app, "swagger@example.com").await;
    let response = app
        .client
        .post(app.url("/api/v1/auth/token"))
        .header("authorization", "Basic Og==")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password&scope=&username=swagger%40example.com&password=correct%20horse%20battery")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let token: serde_json::Value = response.json().await.unwrap();
    assert_eq!(token["token_type"], "bearer");
    let me = app.me(token["access_token"].as_str().unwrap()).await;
    assert_eq!(me.status(), 200);
}

/// Every `src`/`href` of a page that points at this server must be served by it, and none may
/// point elsewhere: a browser opening the docs sends no request off the machine.
async fn assert_page_is_self_contained(app: &crate::helpers::TestApp, page: &str) {
    let response = app.get(page).await;
    assert_eq!(response.status(), 200, "{page}");
    assert!(
        response.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    let html = response.text().await.unwrap();
    let mut assets = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for part in html.split(attribute).skip(1) {
            let target = part.split('"').next().unwrap_or_default();
            assert!(
                !target.starts_with("http") && !target.starts_with("//"),
                "{page} loads {target}"
            );
            assets.push(target.to_string());
        }
    }
    assert!(!assets.is_empty(), "{page} references its assets");
    let base = page.trim_end_matches("index.html");
    for asset in assets {
        let url = if asset.starts_with('/') {
            asset.clone()
        } else {
            format!(
                "{}/{}",
                base.trim_end_matches('/'),
                asset.trim_start_matches("./")
            )
        };
        let response = app.get(&url).await;
        assert_eq!(response.status(), 200, "{page} asset {url}");
    }
}

#[tokio::test]
async fn swagger_ui_and_its_assets_are_served_locally() {
    let app = spawn_app().await;
    assert_page_is_self_contained(&app, "/docs/").await;
    let initializer = app
        .get("/docs/swagger-initializer.js")
        .await
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/openapi.json"));
}

#[tokio::test]
async fn redoc_and_its_bundle_are_served_locally() {
    let app = spawn_app().await;
    assert_page_is_self_contained(&app, "/redoc").await;
}

#[tokio::test]
async fn docs_can_be_turned_off() {
    let app = spawn_app_with(Backend::Sqlite, &[("DOCS_ENABLED", "false")])
        .await
        .unwrap();
    for path in ["/docs/", "/redoc", "/openapi.json"] {
        assert_eq!(app.get(path).await.status(), 404, "{path}");
    }
}

/// The README is the user's manual: it names every configuration variable and shows every
/// documented route, so neither can be added without telling users.
#[tokio::test]
async fn the_readme_names_every_variable_and_every_route() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    for variable in ragd::config::VARIABLES {
        assert!(
            readme.contains(&format!("`{}`", variable.name)),
            "README.md does not name {}",
            variable.name
        );
    }
    let app = spawn_app().await;
    let doc: serde_json::Value = app.get("/openapi.json").await.json().await.unwrap();
    for path in doc["paths"].as_object().unwrap().keys() {
        // `/api/v1/documents/{id}` is shown with a real id or a shell variable in examples.
        let prefix = path.split('{').next().unwrap_or(path);
        assert!(readme.contains(prefix), "README.md does not show {path}");
    }
}
