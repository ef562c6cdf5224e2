//! The OpenAPI document: generated from the handlers' annotations, completed here with the
//! security scheme and the problem responses every operation can give.

use actix_web::App;
use utoipa::OpenApi;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::Schema;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, Ref, RefOr};
use utoipa_actix_web::AppExt;

use crate::error::{FieldError, PROBLEM_JSON, Problem};

mod examples;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "umkm-api",
        description = "JSON REST API for the UMKM (micro, small and medium enterprise) records of a \
regency's trade and industry office (Disperindag): businesses, products, retail partners, partner banks \
and trainings.\n\n\
Log in with `POST /api/v1/auth/token` and send the token as `Authorization: Bearer <token>`. \
Errors are RFC 9457 problem documents (`application/problem+json`); validation problems list every \
bad field in `errors`. Lists take `limit` (1–500, default 50) and an opaque `cursor` (the previous \
page's `next_cursor`); `count=true` adds the exact `total`. Single resources carry an `ETag` (their \
`version`); `PATCH` and `DELETE` honour `If-Match` and answer 412 when it names another version. \
Times are UTC in RFC 3339; money is whole rupiah in 64-bit integers (`*_idr`).\n\n\
Read-your-writes: where the deployment has read replicas, lists, exports, statistics and the banks' \
pull may be served by one, a little behind the primary. A successful write then answers a \
`Consistency-Token` header; send the latest one you got as `Consistency-Token` on later requests and \
they see at least that write, through any instance, for at least 60 seconds (an older token is ignored). \
Send it back as given: it is signed, and one that is malformed or not a write's answer is 400. \
Without the header a read may lag by up to the deployment's bound (`REPLICA_MAX_LAG_MS`).\n\n\
Problem answers are in English unless `Accept-Language` prefers Indonesian (`id`): then their \
`title`, `detail` and field `message`s are in Bahasa Indonesia. `Content-Language` says which; \
`type`, `status` and the field `code`s are the same in both.",
        license(name = "MIT", url = "https://opensource.org/licenses/MIT"),
    ),
    servers((url = "/", description = "The server that serves this document")),
    components(schemas(
        Problem,
        FieldError,
        crate::regions::Level,
        crate::businesses::ScaleFilter,
        crate::stats::FinancingKey,
        crate::banks::events::ApplicantEvent,
        crate::banks::events::StatusChangedEvent
    )),
    tags(
        (name = "auth", description = "Log in and who am I"),
        (name = "users", description = "Accounts and roles (admin only)"),
        (name = "regions", description = "Kemendagri region codes"),
        (name = "businesses", description = "The UMKM: validated, classified, masked for callers without clearance"),
        (name = "products", description = "What the businesses make, with their certifications"),
        (name = "banks", description = "Partner banks, financing programmes, applications and the banks' pull of eligible applicants"),
        (name = "retail", description = "Retail partners, outlets, product curation and placements"),
        (name = "trainings", description = "Training programmes, registrations and the selection of participants"),
        (name = "statistics", description = "Aggregates for the dashboards"),
        (name = "audit", description = "Who changed what (admin only)"),
        (name = "webhooks", description = "Signed events pushed to partners' systems (admin only)"),
        (name = "health", description = "Liveness and readiness probes"),
    ),
)]
struct ApiDoc;

/// The annotations' part of the document, before the routes are collected, with the default
/// data protection officer as its contact (an installation's own replaces it: [`served_json`]).
pub fn base() -> Document {
    let mut doc = ApiDoc::openapi();
    doc.info.contact = Some(contact(&crate::config::Dpo::default()));
    doc
}

fn contact(dpo: &crate::config::Dpo) -> utoipa::openapi::info::Contact {
    utoipa::openapi::info::ContactBuilder::new()
        .name(Some(format!("{} — personal data: access, correction, erasure, complaints", dpo.name)))
        .email(Some(dpo.email.clone()))
        .build()
}

/// `/api-docs/openapi.json`'s body for an installation whose data protection officer is `dpo`:
/// the document made once per process, its contact replaced when it is not the default's.
pub fn served_json(dpo: &crate::config::Dpo) -> actix_web::web::Bytes {
    let served = &served().json;
    if *dpo == crate::config::Dpo::default() {
        return served.clone();
    }
    let mut doc: serde_json::Value = serde_json::from_slice(served).unwrap_or_default();
    if let (Some(info), Ok(contact)) = (doc.get_mut("info"), serde_json::to_value(contact(dpo))) {
        info["contact"] = contact;
    }
    serde_json::to_vec(&doc).map(Into::into).unwrap_or_else(|_| served.clone())
}

/// The complete document, as `/api-docs/openapi.json` serves it and `umkm-api openapi` prints it.
pub fn spec() -> Document {
    let (_app, doc) =
        App::new().into_utoipa_app().openapi(base()).configure(crate::app::routes).split_for_parts();
    complete(doc)
}

/// What the server keeps of the document: its JSON as served, and the route table it implies.
pub struct Served {
    /// `/api-docs/openapi.json`'s body.
    pub json: actix_web::web::Bytes,
    /// Which methods each path has (405 and `Allow` for the others).
    pub routes: crate::http::RouteTable,
}

/// The document, made once per process on first use: every worker shares it, and it is
/// serialized once rather than at every request.
pub fn served() -> &'static Served {
    static SERVED: std::sync::OnceLock<Served> = std::sync::OnceLock::new();
    SERVED.get_or_init(|| {
        let doc = spec();
        // Cannot fail (string keys only); `the_committed_document_matches_the_served_one`
        // would see an empty body.
        let json = serde_json::to_vec(&doc).unwrap_or_else(|e| {
            log::error!("the OpenAPI document does not serialize: {e}");
            Vec::new()
        });
        Served { json: json.into(), routes: crate::http::RouteTable::from_spec(&doc) }
    })
}

/// Adds the bearer scheme and, to every operation, the problem responses it can give, so that
/// each handler lists only its success and its own specific failures.
pub fn complete(mut doc: Document) -> Document {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some("An access token from `POST /api/v1/auth/token`"))
                .build(),
        ),
    );
    for (path, item) in doc.paths.paths.iter_mut() {
        let methods = [
            (&mut item.get, false),
            (&mut item.delete, true),
            (&mut item.post, false),
            (&mut item.put, true),
            (&mut item.patch, true),
        ];
        for (operation, conditional) in methods {
            if let Some(operation) = operation {
                add_problems(operation, conditional);
                constrain_parameters(path, operation);
                // Public on purpose (the probes, the token endpoint): said, not left out.
                operation.security.get_or_insert_with(Vec::new);
            }
        }
    }
    patch_schemas(&mut doc);
    constrain_fields(&mut doc);
    add_links(&mut doc);
    doc.webhooks = Some(webhooks());
    drop_unreferenced_schemas(&mut doc);
    examples::add(&mut doc);
    doc
}

/// The events the server POSTs to partners' subscriptions (OpenAPI 3.1 `webhooks`), each with
/// its Standard Webhooks headers and body.
fn webhooks() -> utoipa::openapi::path::Paths {
    use crate::webhooks::EventType;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, PathItem, PathsBuilder};
    use utoipa::openapi::request_body::RequestBodyBuilder;
    use utoipa::openapi::response::ResponsesBuilder;
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    use utoipa::openapi::{Required, Schema};
    let header = |name: &str, description: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(description))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build()
    };
    let mut paths = PathsBuilder::new();
    for event in EventType::ALL {
        let data = match event {
            EventType::ApplicantEligible | EventType::ApplicantUpdated | EventType::ApplicantLeft => {
                "ApplicantEvent"
            }
            EventType::ApplicationStatusChanged => "StatusChangedEvent",
            EventType::CurationSubmitted | EventType::CurationDecided => "Curation",
            EventType::PlacementListed | EventType::PlacementDelisted => "Placement",
        };
        let body: Schema = ObjectBuilder::new()
            .property(
                "type",
                ObjectBuilder::new().schema_type(Type::String).enum_values(Some([event.as_str()])),
            )
            .property(
                "timestamp",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
            )
            .property("data", Ref::from_schema_name(data))
            .required("type")
            .required("timestamp")
            .required("data")
            .into();
        let operation = OperationBuilder::new()
            .operation_id(Some(event.as_str()))
            .tag("webhooks")
            // No bearer token: the receiver authenticates the request by its signature.
            .securities(Some(Vec::<utoipa::openapi::security::SecurityRequirement>::new()))
            .summary(Some(format!("The `{}` event", event.as_str())))
            .description(Some(
                "POSTed to a subscription's URL, signed as Standard Webhooks specify: verify \
                 `webhook-signature` over `{webhook-id}.{webhook-timestamp}.{body}` with the \
                 subscription's secret, and use `webhook-id` to drop a repeated delivery.",
            ))
            .parameter(header("webhook-id", "The message's id: the same on every attempt and redelivery"))
            .parameter(header("webhook-timestamp", "When this attempt was signed, seconds since the epoch"))
            .parameter(header("webhook-signature", "`v1,` and the base64 HMAC-SHA256 signature"))
            .request_body(Some(
                RequestBodyBuilder::new()
                    .required(Some(Required::True))
                    .content("application/json", ContentBuilder::new().schema(Some(body)).build())
                    .build(),
            ))
            .responses(
                ResponsesBuilder::new()
                    .response("2XX", ResponseBuilder::new().description("Received: the delivery is done"))
                    .response(
                        "4XX",
                        ResponseBuilder::new().description("Not received: retried with backoff for 24 hours"),
                    )
                    .response(
                        "5XX",
                        ResponseBuilder::new().description("Not received: retried with backoff for 24 hours"),
                    )
                    .build(),
            )
            .build();
        paths = paths.path(event.as_str(), PathItem::new(HttpMethod::Post, operation));
    }
    paths.build()
}

/// OpenAPI links from each create to what can be done with what it created: a `201` of
/// `POST /x` whose body has an `id` (or an object that has one, as `{"client": {"id"}}`) links
/// to every operation of `/x/{id}` and of the paths below it that take only that id, passing
/// the id from the body. Clients and stateful fuzzers follow them to real records.
fn add_links(doc: &mut Document) {
    use utoipa::openapi::link::LinkBuilder;
    let schemas = doc.components.as_ref().map(|c| c.schemas.clone()).unwrap_or_default();
    let resolve = |schema: &RefOr<Schema>| -> Option<Schema> {
        match schema {
            RefOr::Ref(r) => match schemas.get(r.ref_location.rsplit('/').next()?)? {
                RefOr::T(s) => Some(s.clone()),
                RefOr::Ref(_) => None,
            },
            RefOr::T(s) => Some(s.clone()),
        }
    };
    // Where the created record's id is in the body: `/id`, or `/<property>/id`.
    let id_pointer = |response: &utoipa::openapi::Response| -> Option<String> {
        let RefOr::T(content) = response.content.get("application/json")? else { return None };
        let Schema::Object(body) = resolve(content.schema.as_ref()?)? else { return None };
        if body.properties.contains_key("id") {
            return Some("$response.body#/id".into());
        }
        body.properties.iter().find_map(|(name, property)| match resolve(property)? {
            Schema::Object(o) if o.properties.contains_key("id") => {
                Some(format!("$response.body#/{name}/id"))
            }
            _ => None,
        })
    };
    let mut links: Vec<(String, String, String, String)> = Vec::new(); // path, operation, parameter, pointer
    for (path, item) in &doc.paths.paths {
        let Some(RefOr::T(created)) = item.post.as_ref().and_then(|op| op.responses.responses.get("201"))
        else {
            continue;
        };
        let Some(pointer) = id_pointer(created) else { continue };
        let below = format!("{path}/{{");
        for (target, target_item) in doc.paths.paths.range(below.clone()..) {
            if !target.starts_with(&below) {
                break;
            }
            let rest = &target[below.len()..];
            let Some((parameter, tail)) = rest.split_once('}') else { continue };
            if tail.contains('{') {
                continue;
            }
            // On the record itself every method but a create; below it, its creates too.
            let post = if tail.is_empty() { &None } else { &target_item.post };
            let operations =
                [&target_item.get, &target_item.patch, &target_item.put, &target_item.delete, post];
            for operation in operations.into_iter().flatten() {
                if let Some(id) = &operation.operation_id {
                    links.push((path.clone(), id.clone(), parameter.to_owned(), pointer.clone()));
                }
            }
        }
    }
    for (path, operation, parameter, pointer) in links {
        let item = doc.paths.paths.get_mut(&path);
        let created = item.and_then(|i| i.post.as_mut()).and_then(|op| op.responses.responses.get_mut("201"));
        if let Some(RefOr::T(response)) = created {
            let link = LinkBuilder::new()
                .operation_id(operation.clone())
                .parameter(parameter, pointer)
                .description("The record this request created")
                .build();
            response.links.insert(operation, RefOr::T(link));
        }
    }
}

/// Removes the schemas no part of the document refers to (types registered through a
/// handler's signature whose answers are described by another schema), until none is left.
fn drop_unreferenced_schemas(doc: &mut Document) {
    loop {
        let text = serde_json::to_string(&*doc).unwrap_or_default();
        let Some(components) = doc.components.as_mut() else { return };
        let unused: Vec<String> = components
            .schemas
            .keys()
            .filter(|name| !text.contains(&format!("\"#/components/schemas/{name}\"")))
            .cloned()
            .collect();
        if unused.is_empty() {
            return;
        }
        for name in unused {
            components.schemas.remove(&name);
        }
    }
}

/// A merge patch (RFC 7396) carries any subset of a record's fields: each `PATCH` whose body is
/// declared as a create's `XInput` gets an `XPatch` of the same fields with none required,
/// without the fields a patch may not carry.
fn patch_schemas(doc: &mut Document) {
    use utoipa::openapi::schema::Schema;
    let components = doc.components.get_or_insert_with(Default::default);
    for item in doc.paths.paths.values_mut() {
        let Some(RefOr::T(body)) = item.patch.as_mut().and_then(|op| op.request_body.as_mut()) else {
            continue;
        };
        for content in body.content.values_mut() {
            let RefOr::T(content) = content else { continue };
            let Some(RefOr::Ref(reference)) = &content.schema else { continue };
            let Some(input) = reference.ref_location.strip_prefix("#/components/schemas/") else { continue };
            let Some(stem) = input.strip_suffix("Input") else { continue };
            let name = format!("{stem}Patch");
            if !components.schemas.contains_key(&name) {
                let Some(RefOr::T(Schema::Object(object))) = components.schemas.get(input) else { continue };
                let mut patch = object.clone();
                patch.required.clear();
                let excluded: &[&str] =
                    if input == "TrainingInput" { &crate::trainings::trainings::NOT_PATCHED } else { &[] };
                patch.properties.retain(|field, _| !excluded.contains(&field.as_str()));
                patch.description = Some(format!(
                    "A merge patch of a {}: any of the fields of `{input}`, null to clear an optional one.",
                    stem.to_lowercase()
                ));
                components.schemas.insert(name.clone(), RefOr::T(Schema::Object(patch)));
            }
            content.schema = Some(RefOr::Ref(Ref::from_schema_name(name)));
        }
    }
}

/// The shapes of the identity and registration numbers a body carries, by field name, from
/// the parsers' own patterns (`domain::codes::patterns`).
fn field_pattern(schema: &str, field: &str) -> Option<&'static str> {
    use crate::domain::codes::patterns;
    Some(match field {
        "owner_nik" | "nik" => patterns::NIK,
        "nib" => patterns::NIB,
        "npwp" => patterns::NPWP,
        "kbli" => patterns::KBLI,
        "district_code" => patterns::DISTRICT,
        "village_code" => patterns::VILLAGE,
        "phone" => patterns::PHONE,
        "email" => patterns::EMAIL,
        "pirt_number" => patterns::PIRT,
        "bpom_number" => patterns::BPOM,
        "halal_certificate" => patterns::HALAL,
        "code" if schema.starts_with("BankPartner") || schema.starts_with("RetailPartner") => {
            patterns::PARTNER_CODE
        }
        _ => return None,
    })
}

/// The schemas of what clients send: the request bodies of every operation.
fn request_schemas(doc: &Document) -> std::collections::BTreeSet<String> {
    let operations =
        doc.paths.paths.values().flat_map(|item| {
            [&item.get, &item.put, &item.post, &item.delete, &item.patch].into_iter().flatten()
        });
    let contents = operations
        .filter_map(|op| match &op.request_body {
            Some(RefOr::T(body)) => Some(body.content.values()),
            _ => None,
        })
        .flatten();
    contents
        .filter_map(|content| match content {
            RefOr::T(content) => match &content.schema {
                Some(RefOr::Ref(reference)) => {
                    reference.ref_location.strip_prefix("#/components/schemas/").map(str::to_owned)
                }
                _ => None,
            },
            RefOr::Ref(_) => None,
        })
        .collect()
}

/// Declares on the fields of what clients send the characters the server takes: the shapes of
/// [`field_pattern`]; for a text (`http::input::Check::text` and `optional_text`, the fields
/// with a `maxLength`), no control characters, and not blank unless it may be left out; for
/// any other string, no NUL (`http::input::nul_field` refuses one in any body).
fn constrain_fields(doc: &mut Document) {
    use crate::http::input::{NO_NUL_PATTERN, REQUIRED_TEXT_PATTERN, TEXT_PATTERN};
    let sent = request_schemas(doc);
    let Some(components) = doc.components.as_mut() else { return };
    for (name, schema) in components.schemas.iter_mut() {
        let RefOr::T(Schema::Object(object)) = schema else { continue };
        if !sent.contains(name) {
            continue;
        }
        for (field, property) in object.properties.iter_mut() {
            let RefOr::T(Schema::Object(property)) = property else { continue };
            let types = serde_json::to_value(&property.schema_type).unwrap_or_default();
            let has = |t: &str| types == t || types.as_array().is_some_and(|types| types.contains(&t.into()));
            if !has("string") || property.enum_values.is_some() || property.format.is_some() {
                continue;
            }
            let nullable = has("null");
            property.pattern = Some(if let Some(pattern) = field_pattern(name, field) {
                // An optional number sent blank means none.
                if nullable { format!(r"^\s*$|{pattern}") } else { pattern.to_owned() }
            } else if field == "password" {
                // A new password's length (`users::model::check_password`); any characters
                // but NUL. A login's is not checked: a wrong one is 401.
                if name != "TokenRequest" {
                    use crate::users::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
                    property.min_length = Some(MIN_PASSWORD_CHARS);
                    property.max_length = Some(MAX_PASSWORD_CHARS);
                }
                NO_NUL_PATTERN.to_owned()
            } else if property.pattern.is_some() {
                continue;
            } else if property.max_length.is_some() {
                if !nullable {
                    property.min_length = Some(1);
                }
                if nullable { TEXT_PATTERN } else { REQUIRED_TEXT_PATTERN }.to_owned()
            } else {
                NO_NUL_PATTERN.to_owned()
            });
        }
    }
}

/// The `sort` keys of the list at `path`, from the columns the list sorts by.
fn sort_pattern(path: &str) -> Option<String> {
    use crate::http::list::sort_pattern;
    Some(match path {
        "/api/v1/businesses" => sort_pattern::<crate::businesses::BusinessSort>(),
        "/api/v1/products" | "/api/v1/businesses/{id}/products" => {
            sort_pattern::<crate::products::ProductSort>()
        }
        "/api/v1/applications" => sort_pattern::<crate::banks::applications::ApplicationSort>(),
        "/api/v1/trainings" => sort_pattern::<crate::trainings::trainings::TrainingSort>(),
        "/api/v1/outlets" => sort_pattern::<crate::retail::OutletSort>(),
        "/api/v1/placements" => sort_pattern::<crate::retail::PlacementSort>(),
        _ => return None,
    })
}

/// The constraints of the parameters lists and writes share, declared from the values the
/// server enforces, so that the document and the checks cannot drift: `limit`'s bounds
/// (`http::list::MAX_LIMIT`), `sort`'s keys (each list's `SortField`), a cursor's shape, `q`'s
/// length and a district's shape (`http::list::check_filters`), `group_by`'s keys, the shapes
/// of `If-Match` and `Idempotency-Key` (`http::etag`, `http::idempotency`), a KBLI filter's
/// (`businesses::filter`).
fn constrain_parameters(path: &str, op: &mut Operation) {
    // `http::refuse_nul`: no NUL anywhere in a path or query string.
    use crate::http::input::NO_NUL_PATTERN as NO_NUL;
    use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
    let text = |pattern: &str| ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern));
    for parameter in op.parameters.iter_mut().flatten() {
        let RefOr::T(parameter) = parameter else { continue };
        let schema = match (parameter.name.as_str(), &parameter.parameter_in) {
            ("limit", ParameterIn::Query) => ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(1))
                .maximum(Some(crate::http::list::MAX_LIMIT)),
            ("sort", ParameterIn::Query) => match sort_pattern(path) {
                Some(pattern) => text(&pattern),
                None => continue,
            },
            ("cursor", ParameterIn::Query) => text(crate::http::list::CURSOR_PATTERN),
            ("q", ParameterIn::Query) => text(NO_NUL).max_length(Some(crate::http::list::MAX_QUERY_TEXT)),
            ("entity" | "parent" | "code", ParameterIn::Query) => text(NO_NUL),
            ("district", ParameterIn::Query) => text(crate::domain::codes::patterns::DISTRICT),
            ("village", ParameterIn::Query) => text(crate::domain::codes::patterns::VILLAGE),
            ("nik", ParameterIn::Query) => {
                // Persons are found by exact NIK only: without one the look-up is a 400.
                parameter.required = utoipa::openapi::Required::True;
                text(crate::domain::codes::patterns::NIK)
            }
            ("group_by", ParameterIn::Query) if path == "/api/v1/stats/businesses" => {
                text(&crate::stats::BusinessKey::pattern())
            }
            ("kbli", ParameterIn::Query) => text(crate::businesses::KBLI_FILTER_PATTERN),
            ("If-Match", ParameterIn::Header) => {
                text(crate::http::etag::IF_MATCH_PATTERN).examples(["\"1\""])
            }
            ("Idempotency-Key", ParameterIn::Header) => ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(crate::http::idempotency::MAX_KEY_LENGTH))
                .pattern(Some("^[!-~]+$")),
            _ => continue,
        };
        parameter.schema = Some(RefOr::T(schema.build().into()));
    }
}

fn add_problems(op: &mut Operation, conditional: bool) {
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_parameter = |location: ParameterIn| {
        op.parameters.iter().flatten().any(|p| matches!(p, RefOr::T(p) if p.parameter_in == location))
    };
    // A POST that takes If-Match (a client's new secret) is conditional too.
    let conditional = conditional
        || op.parameters.iter().flatten().any(
            |p| matches!(p, RefOr::T(p) if p.parameter_in == ParameterIn::Header && p.name == "If-Match"),
        );
    let has_path_params = has_parameter(ParameterIn::Path);
    let has_query = has_parameter(ParameterIn::Query);
    let has_body = op.request_body.is_some();
    let database = op.operation_id.as_deref() != Some("healthz");
    let ndjson = |r: &RefOr<utoipa::openapi::Response>| matches!(r, RefOr::T(ok) if ok.content.contains_key("application/x-ndjson"));
    let exports = op.responses.responses.get("200").is_some_and(ndjson);

    let mut add = |status: &str, description: &str| {
        let problem = ResponseBuilder::new()
            .description(description)
            .content(
                PROBLEM_JSON,
                ContentBuilder::new().schema(Some(RefOr::Ref(Ref::from_schema_name("Problem")))).build(),
            )
            .build();
        op.responses.responses.entry(status.to_owned()).or_insert(RefOr::T(problem));
    };
    if has_query || has_path_params || has_body {
        add("400", "Malformed JSON, query string or path parameter, or an `Origin` CORS does not allow");
    } else {
        // Any request, the probes' too, from a browser origin CORS does not allow.
        add("400", "The request's `Origin` is not one CORS allows (`CORS_ALLOWED_ORIGINS`)");
    }
    if secured {
        add("401", "Missing, malformed, badly signed or expired token, or a disabled user");
        add("403", "The caller's role may not do this");
    }
    if has_path_params || secured {
        // Bank and retail users see only their part of the API: the rest is 404 for them, as
        // a record outside their scope is.
        add(
            "404",
            "No such resource, not in the caller's scope, or a part of the API the caller's role does not see",
        );
    }
    if conditional {
        add("412", "If-Match names another version");
    }
    if has_body {
        add("413", "The body is larger than MAX_BODY_BYTES");
        add("415", "The body is not JSON");
        add("422", "Invalid fields; `errors` lists every one");
    }
    if exports {
        add("429", "The caller's partner (or the caller) has 4 exports under way; retry after Retry-After");
    }
    add("500", "An internal error; the X-Request-Id identifies it in the log");
    if database {
        add("503", "The database is unavailable; retry after Retry-After seconds");
    }
}
