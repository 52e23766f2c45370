// @generated automatically by Diesel CLI.

diesel::table! {
    alerts (id) {
        id -> Int8,
        tenant_id -> Int8,
        webhook_id -> Int8,
        webhook_number -> Int4,
        url -> Text,
        connection_id -> Nullable<Int8>,
        kind -> Text,
        reason -> Text,
        consecutive_failures -> Int4,
        created_at -> Timestamptz,
        published_at -> Nullable<Timestamptz>,
        mail_due_at -> Nullable<Timestamptz>,
        mail_claimed_until -> Nullable<Timestamptz>,
        mail_attempts -> Int4,
        mail_error -> Nullable<Text>,
        mailed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Int8,
        tenant_id -> Int8,
        name -> Text,
        prefix -> Text,
        key_hash -> Text,
        enabled -> Bool,
        last_used_at -> Nullable<Timestamptz>,
        created_by -> Nullable<Int8>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        tenant_id -> Nullable<Int8>,
        actor_user_id -> Nullable<Int8>,
        actor -> Text,
        action -> Text,
        target_type -> Text,
        target_id -> Nullable<Text>,
        details -> Jsonb,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    connections (id) {
        id -> Int8,
        tenant_id -> Int8,
        name -> Text,
        external_id -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Int8,
        tenant_id -> Int8,
        webhook_id -> Int8,
        event_id -> Text,
        status -> Text,
        attempt_count -> Int4,
        next_attempt_at -> Timestamptz,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<Timestamptz>,
        last_status_code -> Nullable<Int4>,
        last_error -> Nullable<Text>,
        body -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        event_type -> Text,
        ordering_key -> Nullable<Text>,
        done_on -> Date,
    }
}

diesel::table! {
    delivery_attempts (id, started_at) {
        id -> Int8,
        delivery_id -> Int8,
        tenant_id -> Int8,
        webhook_id -> Int8,
        attempt_number -> Int4,
        started_at -> Timestamptz,
        duration_ms -> Int4,
        status_code -> Nullable<Int4>,
        succeeded -> Bool,
        error_class -> Nullable<Text>,
        error_message -> Nullable<Text>,
        request_headers -> Jsonb,
        response_headers -> Jsonb,
        response_body -> Nullable<Bytea>,
    }
}

diesel::table! {
    event_types (code) {
        code -> Text,
        category -> Text,
        label -> Text,
        description -> Text,
        example_payload -> Jsonb,
        position -> Int4,
    }
}

diesel::table! {
    events (id) {
        id -> Text,
        tenant_id -> Int8,
        event_type -> Text,
        connection_id -> Nullable<Int8>,
        language -> Nullable<Text>,
        occurred_at -> Timestamptz,
        idempotency_key -> Nullable<Text>,
        body -> Text,
        created_at -> Timestamptz,
        ordering_key -> Nullable<Text>,
    }
}

diesel::table! {
    idempotency_keys (tenant_id, key) {
        tenant_id -> Int8,
        key -> Text,
        request_hash -> Text,
        status -> Int4,
        body -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    password_links (id) {
        id -> Int8,
        user_id -> Int8,
        token_hash -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        used_at -> Nullable<Timestamptz>,
        created_by_user_id -> Nullable<Int8>,
    }
}

diesel::table! {
    sessions (key_hash) {
        key_hash -> Text,
        user_id -> Nullable<Int8>,
        state -> Jsonb,
        created_at -> Timestamptz,
        last_seen_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    tenants (id) {
        id -> Int8,
        name -> Text,
        slug -> Text,
        plan -> Text,
        timezone -> Text,
        webhooks_enabled -> Bool,
        next_webhook_number -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        alert_emails -> Array<Nullable<Text>>,
    }
}

diesel::table! {
    users (id) {
        id -> Int8,
        tenant_id -> Nullable<Int8>,
        email -> Text,
        role -> Text,
        password_hash -> Text,
        disabled -> Bool,
        failed_logins -> Int4,
        first_failed_at -> Nullable<Timestamptz>,
        locked_until -> Nullable<Timestamptz>,
        password_changed_at -> Timestamptz,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        login_attempts -> Int8,
        connection_id -> Nullable<Int8>,
        alerts_seen_id -> Int8,
    }
}

diesel::table! {
    webhook_hours (webhook_id, hour) {
        webhook_id -> Int8,
        hour -> Timestamptz,
        succeeded -> Int8,
        failed -> Int8,
        tenant_id -> Int8,
    }
}

// `alert_state` and `failing_attempts` of webhooks are left out (diesel's limit is 32
// columns a table): only SQL statements of the delivery worker and the alerts read them.
diesel::table! {
    webhooks (id) {
        id -> Int8,
        tenant_id -> Int8,
        number -> Int4,
        url -> Text,
        description -> Text,
        events -> Array<Nullable<Text>>,
        connection_id -> Nullable<Int8>,
        status -> Text,
        disabled_reason -> Nullable<Text>,
        disabled_at -> Nullable<Timestamptz>,
        api_key_enabled -> Bool,
        api_key_hash -> Text,
        api_key_prefix -> Text,
        secret_ciphertext -> Bytea,
        previous_secret_ciphertext -> Nullable<Bytea>,
        previous_secret_expires_at -> Nullable<Timestamptz>,
        headers -> Jsonb,
        retry_on_error -> Bool,
        use_customer_language -> Bool,
        capabilities -> Array<Nullable<Text>>,
        event_count -> Int8,
        error_count -> Int8,
        consecutive_failures -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        ordered -> Bool,
        filter -> Nullable<Text>,
        filtered_count -> Int8,
        filter_error_count -> Int8,
        filter_last_error -> Nullable<Text>,
        filter_last_error_at -> Nullable<Timestamptz>,
    }
}

diesel::joinable!(api_keys -> tenants (tenant_id));
diesel::joinable!(api_keys -> users (created_by));
diesel::joinable!(audit_log -> tenants (tenant_id));
diesel::joinable!(audit_log -> users (actor_user_id));
diesel::joinable!(connections -> tenants (tenant_id));
diesel::joinable!(events -> connections (connection_id));
diesel::joinable!(idempotency_keys -> tenants (tenant_id));
diesel::joinable!(webhook_hours -> webhooks (webhook_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(users -> tenants (tenant_id));
diesel::joinable!(webhooks -> connections (connection_id));
diesel::joinable!(webhooks -> tenants (tenant_id));

diesel::allow_tables_to_appear_in_same_query!(
    alerts,
    api_keys,
    audit_log,
    connections,
    deliveries,
    delivery_attempts,
    event_types,
    events,
    idempotency_keys,
    password_links,
    sessions,
    tenants,
    users,
    webhook_hours,
    webhooks,
);
