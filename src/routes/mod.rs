//! Thin handlers, one file per area: each extracts its input, calls one service function and
//! maps the result. No SQL and no provider calls here.

pub mod api_keys;
pub mod auth;
pub mod chat;
pub mod docs;
pub mod documents;
pub mod health;
pub mod metrics;
pub mod openai;
pub mod search;
pub mod ui;

use utoipa::OpenApi;
use utoipa::openapi::security::{
    Flow, HttpAuthScheme, HttpBuilder, OAuth2, Password, Scopes, SecurityScheme,
};
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;
use crate::http::error::{ErrorDetail, ErrorResponse, FieldError};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ragd",
        description = "One binary that puts LLMs behind an API: chat over many providers, \
            documents turned into searchable knowledge with citations, users, API keys and limits.",
        license(name = "MIT")
    ),
    components(schemas(ErrorResponse, ErrorDetail, FieldError)),
    modifiers(&BearerAuth),
    tags(
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "auth", description = "Accounts, access tokens and API keys"),
        (name = "search", description = "Vector, keyword and hybrid search over your documents"),
        (name = "documents", description = "Uploads turned into searchable chunks in the background"),
        (name = "chat", description = "Chat answers, grounded in your documents with citations; whole or streamed"),
        (name = "openai", description = "OpenAI-compatible API: point the official SDKs at /v1"),
    )
)]
struct ApiDoc;

/// Declares the two ways to authenticate, either of which every protected route accepts:
/// `bearer`, a JWT from /api/v1/auth/token or an `rk_...` API key pasted in; and `password`,
/// OAuth2's password flow against /api/v1/auth/token, so Swagger UI's Authorize dialog signs
/// in with an email and a password itself.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A JWT from /api/v1/auth/token, or an API key (rk_...)",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "password",
            SecurityScheme::OAuth2(OAuth2::with_description(
                [Flow::Password(Password::new(
                    "/api/v1/auth/token",
                    Scopes::new(),
                ))],
                "Your email (as the username) and password",
            )),
        );
    }
}

/// Every documented route but the upload ([`documents::upload::router`]), with the OpenAPI
/// document they make up. The upload stands apart because it is timed differently.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(health::router())
        .merge(auth::router())
        .merge(search::router())
        .merge(api_keys::router())
        .merge(documents::router())
        .merge(chat::router())
        .merge(openai::router())
}
