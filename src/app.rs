//! The application: middleware, CORS, the documentation, and every resource's routes.

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{Condition, ErrorHandlers, from_fn};
use actix_web::{App, HttpResponse, web};
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::http::{self, BodyLimit};
use crate::state::AppState;
use crate::{
    audit, auth, banks, businesses, health, metrics, openapi, products, regions, retail, rights, stats,
    trainings, users, webhooks,
};

/// Where the OpenAPI document is served.
const DOC_URL: &str = "/api-docs/openapi.json";

/// Every documented route. The OpenAPI document is collected from exactly these.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz).service(health::readyz).service(
        utoipa_actix_web::scope("/api/v1")
            .configure(auth::routes)
            .configure(users::routes)
            .configure(regions::routes)
            .configure(businesses::routes)
            .configure(products::routes)
            .configure(retail::routes)
            .configure(banks::routes)
            .configure(trainings::routes)
            .configure(stats::routes)
            .configure(audit::routes)
            .configure(rights::routes)
            .configure(webhooks::routes),
    );
}

fn cors(origins: &[String]) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_MATCH,
            header::ACCEPT_LANGUAGE,
            header::HeaderName::from_static("idempotency-key"),
            http::X_REQUEST_ID,
            http::consistency::CONSISTENCY_TOKEN,
        ])
        .expose_headers([
            header::ETAG,
            header::CONTENT_LANGUAGE,
            header::LOCATION,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            http::X_REQUEST_ID,
            http::consistency::CONSISTENCY_TOKEN,
        ])
        .max_age(3600);
    for origin in origins {
        cors = if origin == "*" { cors.allow_any_origin() } else { cors.allowed_origin(origin) };
    }
    cors
}

/// The application: routes, documentation, error shaping, request ids, CORS and the access log.
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    // The document comes from these same routes, made once per process (`openapi::served`).
    let app = App::new().into_utoipa_app().configure(routes).into_app();
    let served = openapi::served();
    let origins = state.config.cors_allowed_origins.clone();
    let limit = BodyLimit(state.config.max_body_bytes);
    let recorder = web::Data::from(state.metrics.clone());
    let metrics_on = state.config.metrics_addr.is_some();
    let document = openapi::served_json(&state.config.dpo);
    app.app_data(web::Data::new(state))
        .app_data(recorder)
        .app_data(limit)
        .app_data(http::AllowedOrigins(origins.clone()))
        .app_data(web::PayloadConfig::new(limit.0))
        .app_data(served.routes.clone())
        .app_data(http::query_config())
        .app_data(http::path_config())
        .service(web::resource(DOC_URL).get(move || {
            let document = document.clone();
            async move { HttpResponse::Ok().content_type(actix_web::mime::APPLICATION_JSON).body(document) }
        }))
        .service(SwaggerUi::new("/docs/{_:.*}").config(Config::new([DOC_URL])))
        .service(web::resource("/docs").get(|| async {
            HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/docs/")).finish()
        }))
        .default_service(web::to(http::fallback))
        .wrap(from_fn(http::consistency::track))
        .wrap(from_fn(http::refuse_nul))
        .wrap(ErrorHandlers::new().default_handler(http::problemize))
        .wrap(cors(&origins))
        .wrap(from_fn(http::refuse_foreign_origin))
        .wrap(from_fn(http::i18n::localize))
        .wrap(from_fn(http::request_id))
        .wrap(from_fn(http::access::log))
        // Counted only when someone can read the figures (METRICS_ADDR set): off costs nothing.
        .wrap(Condition::new(metrics_on, from_fn(metrics::track)))
}
