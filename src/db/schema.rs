//! Table definitions shared by both back ends. Both migration folders create exactly these columns.

diesel::table! {
    regions (code) {
        code -> Text,
        name -> Text,
        level -> Text,
        parent_code -> Nullable<Text>,
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
    }
}

diesel::table! {
    login_failures (id) {
        id -> BigInt,
        email -> Text,
        failed_at -> Timestamp,
    }
}

diesel::joinable!(users -> bank_partners (bank_partner_id));
diesel::joinable!(users -> retail_partners (retail_partner_id));

diesel::allow_tables_to_appear_in_same_query!(
    regions,
    bank_partners,
    retail_partners,
    users,
    login_failures,
);
