//! umkm-api: the JSON REST backend for a regency trade and industry office's UMKM records.

pub mod audit;
pub mod auth;
pub mod banks;
pub mod businesses;
pub mod config;
pub mod create;
pub mod db;
pub mod domain;
pub mod error;
pub mod export;
pub mod fields;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod listing;
pub mod openapi;
pub mod pagination;
pub mod products;
pub mod regions;
pub mod retail;
pub mod seed;
pub mod stats;
pub mod trainings;
pub mod users;

use std::sync::Arc;

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::{ErrorHandlers, Logger, from_fn};
use actix_web::{App, HttpResponse, web};
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::Keys;
use crate::config::Config;
use crate::db::Pool;
use crate::error::AppResult;
use crate::http::{BodyLimit, RouteTable};

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database pool.
    pub pool: Pool,
    /// Token keys.
    pub keys: Arc<Keys>,
    /// The configuration.
    pub config: Arc<Config>,
}

impl AppState {
    /// State for `config`, using `pool`.
    pub fn new(config: Config, pool: Pool) -> AppResult<AppState> {
        let keys = Keys::new(&config.jwt_secret, config.access_token_ttl)?;
        Ok(AppState { pool, keys: Arc::new(keys), config: Arc::new(config) })
    }
}

/// Every documented route. The OpenAPI document is collected from exactly these.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz).service(health::readyz).service(
        utoipa_actix_web::scope("/api/v1")
            .service(auth::issue_token)
            .service(auth::me)
            .service(users::list_users)
            .service(users::create_user)
            .service(users::get_user)
            .service(users::update_user)
            .service(users::delete_user)
            .service(regions::list_regions)
            .service(businesses::list_businesses)
            .service(businesses::create_business)
            .service(businesses::import_businesses)
            .service(businesses::get_business)
            .service(businesses::update_business)
            .service(businesses::delete_business)
            .service(products::list_business_products)
            .service(products::list_products)
            .service(products::create_product)
            .service(products::get_product)
            .service(products::update_product)
            .service(products::delete_product)
            .service(retail::list_retail_partners)
            .service(retail::create_retail_partner)
            .service(retail::get_retail_partner)
            .service(retail::update_retail_partner)
            .service(retail::list_outlets)
            .service(retail::create_outlet)
            .service(retail::get_outlet)
            .service(retail::update_outlet)
            .service(retail::delete_outlet)
            .service(retail::list_curations)
            .service(retail::create_curation)
            .service(retail::get_curation)
            .service(retail::decide_curation)
            .service(retail::list_placements)
            .service(retail::create_placement)
            .service(retail::update_placement)
            .service(retail::delete_placement)
            .service(banks::list_bank_partners)
            .service(banks::create_bank_partner)
            .service(banks::eligible_applicants)
            .service(banks::get_bank_partner)
            .service(banks::update_bank_partner)
            .service(banks::list_programmes)
            .service(banks::create_programme)
            .service(banks::get_programme)
            .service(banks::update_programme)
            .service(banks::list_applications)
            .service(banks::create_application_handler)
            .service(banks::get_application)
            .service(banks::update_application)
            .service(banks::list_business_applications)
            .service(trainings::list_trainings)
            .service(trainings::create_training)
            .service(trainings::get_training)
            .service(trainings::update_training)
            .service(trainings::list_registrations)
            .service(trainings::create_registration)
            .service(trainings::update_registration)
            .service(trainings::select_participants)
            .service(stats::overview_statistics)
            .service(stats::business_statistics)
            .service(stats::product_statistics)
            .service(stats::retail_statistics)
            .service(stats::financing_statistics)
            .service(stats::training_statistics)
            .service(audit::list_audit_log),
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
            header::HeaderName::from_static("idempotency-key"),
            http::X_REQUEST_ID,
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            http::X_REQUEST_ID,
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
    let (app, doc) =
        App::new().into_utoipa_app().openapi(openapi::base()).configure(routes).split_for_parts();
    let doc = openapi::complete(doc);
    let origins = state.config.cors_allowed_origins.clone();
    let limit = BodyLimit(state.config.max_body_bytes);
    app.app_data(web::Data::new(state))
        .app_data(limit)
        .app_data(web::PayloadConfig::new(limit.0))
        .app_data(RouteTable::from_spec(&doc))
        .app_data(http::query_config())
        .app_data(http::path_config())
        .service(SwaggerUi::new("/docs/{_:.*}").url("/api-docs/openapi.json", doc))
        .service(web::resource("/docs").get(|| async {
            HttpResponse::PermanentRedirect().insert_header((header::LOCATION, "/docs/")).finish()
        }))
        .default_service(web::to(http::fallback))
        .wrap(ErrorHandlers::new().default_handler(http::problemize))
        .wrap(cors(&origins))
        .wrap(from_fn(http::request_id))
        .wrap(Logger::new("%{r}a \"%r\" %s %b %Dms request_id=%{x-request-id}o"))
}
