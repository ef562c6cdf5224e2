//! Table definitions shared by both back ends. Both migration folders create exactly these columns.

diesel::table! {
    regions (code) {
        code -> Text,
        name -> Text,
        level -> Text,
        parent_code -> Nullable<Text>,
        name_folded -> Text,
        retired -> Bool,
        served -> Bool,
    }
}

diesel::table! {
    bank_partners (id) {
        id -> BigInt,
        code -> Text,
        name -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    retail_partners (id) {
        id -> BigInt,
        code -> Text,
        name -> Text,
        brand -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    users (id) {
        id -> BigInt,
        email -> Text,
        password_hash -> Text,
        role -> Text,
        bank_partner_id -> Nullable<BigInt>,
        retail_partner_id -> Nullable<BigInt>,
        disabled -> Bool,
        last_login_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
        scopes -> Nullable<Text>,
        token_generation -> Integer,
    }
}

diesel::table! {
    deployment (singleton) {
        singleton -> Integer,
        id -> Text,
        started_at -> Timestamp,
    }
}

diesel::table! {
    login_failures (id) {
        id -> BigInt,
        key_hash -> Text,
        failed_at -> Timestamp,
    }
}

diesel::table! {
    businesses (id) {
        id -> BigInt,
        name -> Text,
        nib -> Nullable<Text>,
        npwp -> Nullable<Text>,
        kbli -> Text,
        kbli_division -> Integer,
        district_code -> Text,
        village -> Nullable<Text>,
        village_code -> Nullable<Text>,
        address -> Text,
        capital_idr -> Nullable<BigInt>,
        annual_revenue_idr -> Nullable<BigInt>,
        employees -> Nullable<Integer>,
        established_on -> Nullable<Date>,
        status -> Text,
        consented_to_bank_sharing_at -> Nullable<Timestamp>,
        scale -> Nullable<Text>,
        scale_basis -> Nullable<Text>,
        is_ikm -> Bool,
        industry_scale -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
        owner_id -> BigInt,
        person_name -> Text,
        person_nik -> Text,
        person_phone -> Text,
        person_email -> Nullable<Text>,
    }
}

diesel::table! {
    consents (id) {
        id -> BigInt,
        person_id -> BigInt,
        purpose -> Text,
        bank_partner_id -> Nullable<BigInt>,
        channel -> Text,
        evidence -> Text,
        text_version -> Text,
        given_at -> Timestamp,
        recorded_by -> Nullable<BigInt>,
        recorded_at -> Timestamp,
        withdrawn_at -> Nullable<Timestamp>,
        withdrawal_channel -> Nullable<Text>,
        withdrawal_evidence -> Nullable<Text>,
        withdrawal_recorded_by -> Nullable<BigInt>,
        withdrawal_recorded_at -> Nullable<Timestamp>,
        version -> Integer,
    }
}

diesel::table! {
    persons (id) {
        id -> BigInt,
        name -> Text,
        nik -> Text,
        nik_index -> Text,
        nik_version -> Integer,
        phone -> Text,
        email -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
        restricted_at -> Nullable<Timestamp>,
        erased_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    person_conflicts (id) {
        id -> BigInt,
        person_id -> BigInt,
        business_id -> BigInt,
        field -> Text,
        value -> Text,
        found_at -> Timestamp,
    }
}

diesel::table! {
    data_key_checks (kind, key_id) {
        kind -> Text,
        key_id -> Integer,
        probe -> Text,
    }
}

diesel::table! {
    products (id) {
        id -> BigInt,
        business_id -> BigInt,
        name -> Text,
        category -> Text,
        description -> Nullable<Text>,
        price_idr -> Nullable<BigInt>,
        unit -> Nullable<Text>,
        pirt_number -> Nullable<Text>,
        bpom_number -> Nullable<Text>,
        halal_certificate -> Nullable<Text>,
        sni_certified -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        occurred_at -> Timestamp,
        user_id -> Nullable<BigInt>,
        action -> Text,
        entity -> Text,
        entity_id -> BigInt,
        changes -> Text,
    }
}

diesel::table! {
    disclosures (id) {
        id -> BigInt,
        occurred_at -> Timestamp,
        user_id -> Nullable<BigInt>,
        bank_partner_id -> Nullable<BigInt>,
        retail_partner_id -> Nullable<BigInt>,
        route -> Text,
        request_id -> Text,
        classes -> Integer,
        persons -> Text,
    }
}

diesel::table! {
    data_requests (id) {
        id -> BigInt,
        person_id -> BigInt,
        kind -> Text,
        channel -> Text,
        received_at -> Timestamp,
        due_at -> Timestamp,
        status -> Text,
        refusal_reason -> Nullable<Text>,
        note -> Nullable<Text>,
        recorded_by -> Nullable<BigInt>,
        closed_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    disclosed_persons (person_id, disclosure_id) {
        person_id -> BigInt,
        disclosure_id -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (user_id, endpoint, idempotency_key) {
        user_id -> BigInt,
        endpoint -> Text,
        idempotency_key -> Text,
        request_hash -> Text,
        status -> Integer,
        location -> Nullable<Text>,
        body -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    trainings (id) {
        id -> BigInt,
        title -> Text,
        theme -> Nullable<Text>,
        venue -> Nullable<Text>,
        starts_on -> Date,
        ends_on -> Date,
        capacity -> Integer,
        registration_closes_at -> Nullable<Timestamp>,
        selected_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    registrations (id) {
        id -> BigInt,
        training_id -> BigInt,
        business_id -> BigInt,
        status -> Text,
        registered_at -> Timestamp,
        selection_rank -> Nullable<Integer>,
        note -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    outlets (id) {
        id -> BigInt,
        retail_partner_id -> BigInt,
        code -> Text,
        name -> Text,
        address -> Nullable<Text>,
        district_code -> Text,
        village_code -> Nullable<Text>,
        opened_on -> Nullable<Date>,
        status -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    curations (id) {
        id -> BigInt,
        product_id -> BigInt,
        retail_partner_id -> BigInt,
        status -> Text,
        notes -> Nullable<Text>,
        decided_at -> Nullable<Timestamp>,
        decided_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    placements (id) {
        id -> BigInt,
        product_id -> BigInt,
        outlet_id -> BigInt,
        listed_on -> Date,
        delisted_on -> Nullable<Date>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    financing_programmes (id) {
        id -> BigInt,
        bank_partner_id -> BigInt,
        name -> Text,
        kind -> Text,
        min_amount_idr -> BigInt,
        max_amount_idr -> BigInt,
        interest_rate_bp -> Integer,
        min_business_age_months -> Integer,
        eligible_scales -> Text,
        requires_nib -> Bool,
        open -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
    }
}

diesel::table! {
    applications (id) {
        id -> BigInt,
        business_id -> BigInt,
        programme_id -> BigInt,
        bank_partner_id -> BigInt,
        amount_requested_idr -> BigInt,
        purpose -> Nullable<Text>,
        status -> Text,
        amount_approved_idr -> Nullable<BigInt>,
        bank_reference -> Nullable<Text>,
        financing_ends_on -> Nullable<Date>,
        decided_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
        consented -> Bool,
    }
}

diesel::table! {
    summary_businesses (district_code, scale, kbli_division, is_ikm, established_year, status) {
        district_code -> Text,
        scale -> Text,
        kbli_division -> Integer,
        is_ikm -> Bool,
        established_year -> Integer,
        status -> Text,
        n -> BigInt,
        employees -> BigInt,
        revenue_idr -> BigInt,
    }
}

diesel::table! {
    summary_business_rollups (rollup, district_code, scale, kbli_division, is_ikm, established_year, status) {
        rollup -> Text,
        district_code -> Text,
        scale -> Text,
        kbli_division -> Integer,
        is_ikm -> Bool,
        established_year -> Integer,
        status -> Text,
        n -> BigInt,
        employees -> BigInt,
        revenue_idr -> BigInt,
    }
}

diesel::table! {
    summary_members (figure, scope, member) {
        figure -> Text,
        scope -> BigInt,
        member -> BigInt,
        n -> BigInt,
    }
}

// The delta tables have no key in the database (appends only); diesel needs one declared.
diesel::table! {
    summary_businesses_delta (district_code, scale, kbli_division, is_ikm, established_year, status) {
        district_code -> Text,
        scale -> Text,
        kbli_division -> Integer,
        is_ikm -> Bool,
        established_year -> Integer,
        status -> Text,
        n -> BigInt,
        employees -> BigInt,
        revenue_idr -> BigInt,
    }
}

diesel::table! {
    summary_applications (bank_partner_id, programme_id, status, consented) {
        bank_partner_id -> BigInt,
        programme_id -> BigInt,
        status -> Text,
        consented -> Bool,
        n -> BigInt,
        requested_idr -> BigInt,
        approved_idr -> BigInt,
    }
}

diesel::table! {
    summary_applications_delta (bank_partner_id, programme_id, status, consented) {
        bank_partner_id -> BigInt,
        programme_id -> BigInt,
        status -> Text,
        consented -> Bool,
        n -> BigInt,
        requested_idr -> BigInt,
        approved_idr -> BigInt,
    }
}

diesel::table! {
    summary_counts (figure, scope, item) {
        figure -> Text,
        scope -> BigInt,
        item -> Text,
        n -> BigInt,
    }
}

diesel::table! {
    summary_counts_delta (figure, scope, item) {
        figure -> Text,
        scope -> BigInt,
        item -> Text,
        n -> BigInt,
    }
}

diesel::table! {
    bank_feed (application_id) {
        application_id -> BigInt,
        bank_partner_id -> BigInt,
        business_id -> BigInt,
        programme_id -> BigInt,
        listed -> Bool,
        shown -> Bool,
        left_reason -> Text,
        fingerprint -> Text,
        changed_at -> Timestamp,
    }
}

diesel::table! {
    bank_feed_clocks (bank_partner_id) {
        bank_partner_id -> BigInt,
        changed_at -> Timestamp,
    }
}

diesel::table! {
    client_secrets (id) {
        id -> BigInt,
        user_id -> BigInt,
        secret_hash -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    webhook_subscriptions (id) {
        id -> BigInt,
        bank_partner_id -> Nullable<BigInt>,
        retail_partner_id -> Nullable<BigInt>,
        url -> Text,
        event_types -> Text,
        secret -> Text,
        active -> Bool,
        disabled_reason -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> Integer,
        events_dropped -> BigInt,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> BigInt,
        subscription_id -> BigInt,
        message_id -> Text,
        event_type -> Text,
        payload -> Text,
        created_at -> Timestamp,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        leased_until -> Nullable<Timestamp>,
        delivered_at -> Nullable<Timestamp>,
        last_status -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        first_attempted_at -> Nullable<Timestamp>,
    }
}

diesel::joinable!(webhook_deliveries -> webhook_subscriptions (subscription_id));
diesel::joinable!(client_secrets -> users (user_id));
diesel::joinable!(users -> bank_partners (bank_partner_id));
diesel::joinable!(users -> retail_partners (retail_partner_id));
diesel::joinable!(products -> businesses (business_id));
diesel::joinable!(businesses -> regions (district_code));
diesel::joinable!(businesses -> persons (owner_id));
diesel::joinable!(person_conflicts -> persons (person_id));
diesel::joinable!(consents -> persons (person_id));
diesel::joinable!(data_requests -> persons (person_id));
diesel::joinable!(person_conflicts -> businesses (business_id));
diesel::joinable!(registrations -> trainings (training_id));
diesel::joinable!(registrations -> businesses (business_id));
diesel::joinable!(outlets -> retail_partners (retail_partner_id));
diesel::joinable!(curations -> products (product_id));
diesel::joinable!(curations -> retail_partners (retail_partner_id));
diesel::joinable!(placements -> products (product_id));
diesel::joinable!(placements -> outlets (outlet_id));
diesel::joinable!(financing_programmes -> bank_partners (bank_partner_id));
diesel::joinable!(applications -> financing_programmes (programme_id));
diesel::joinable!(applications -> businesses (business_id));

diesel::allow_tables_to_appear_in_same_query!(
    consents,
    deployment,
    webhook_subscriptions,
    webhook_deliveries,
    client_secrets,
    bank_feed,
    bank_feed_clocks,
    regions,
    bank_partners,
    retail_partners,
    users,
    login_failures,
    businesses,
    persons,
    person_conflicts,
    data_key_checks,
    products,
    audit_log,
    disclosures,
    disclosed_persons,
    data_requests,
    idempotency_keys,
    trainings,
    registrations,
    outlets,
    curations,
    placements,
    financing_programmes,
    applications,
);
