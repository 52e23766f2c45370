//! The one error type of Hookboard's services. The web pages and the API each turn it
//! into an answer of their own (an HTML page or toast, a JSON error); database and
//! blocking-pool failures convert into it with `?`. It knows nothing of HTTP.

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("The page or item you asked for does not exist.")]
    NotFound,
    #[error("Please log in to continue.")]
    LoginRequired,
    #[error("{message}")]
    Validation {
        field: Option<&'static str>,
        message: String,
    },
    /// A field of one item of a list at fault (an event of a batch).
    #[error("{message}")]
    InvalidItem {
        index: usize,
        field: &'static str,
        message: String,
    },
    /// Several fields at fault at once (a form shows each next to its field; the API
    /// names the first).
    #[error("{}", .0.values().next().map(String::as_str).unwrap_or("Please check the fields."))]
    Fields(crate::validation::webhook::FieldErrors),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached just now (restarting, pool exhausted): nothing was
    /// changed and the same request can be sent again.
    #[error("The database is not reachable just now; nothing was changed. Please try again in a moment.")]
    Unavailable,
    #[error("Something went wrong on our side. It has been logged; please try again.")]
    Unexpected(#[from] anyhow::Error),
}

impl AppError {
    pub fn validation(field: &'static str, message: impl Into<String>) -> Self {
        AppError::Validation {
            field: Some(field),
            message: message.into(),
        }
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        AppError::Forbidden(message.into())
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(err: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match err {
            Error::NotFound => AppError::NotFound,
            // The constraint's name is the schema's business, never the user's: the
            // services that can hit a unique index check first and say what exists.
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                tracing::info!(constraint = info.constraint_name(), "unique violation");
                AppError::Conflict("That already exists; nothing was changed.".into())
            }
            other if connection_lost(&other) => {
                tracing::warn!(error = %other, "the database connection was lost");
                AppError::Unavailable
            }
            other => AppError::Unexpected(other.into()),
        }
    }
}

/// Whether a query failed because the connection to PostgreSQL went away (a restart, a
/// crash, an administrator ending backends) rather than because of the query itself.
pub fn connection_lost(err: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match err {
        Error::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        // SQLSTATE 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now) and a
        // server that closed the socket arrive as plain messages.
        Error::DatabaseError(_, info) => {
            let message = info.message();
            message.contains("terminating connection")
                || message.contains("server closed the connection")
                || message.contains("the database system is")
                || message.contains("no connection to the server")
        }
        _ => false,
    }
}

impl From<r2d2::Error> for AppError {
    fn from(err: r2d2::Error) -> Self {
        tracing::warn!(error = %err, "no database connection available");
        AppError::Unavailable
    }
}

#[cfg(test)]
mod tests {
    use diesel::result::{DatabaseErrorInformation, DatabaseErrorKind, Error};

    use super::AppError;

    struct Violation;

    impl DatabaseErrorInformation for Violation {
        fn message(&self) -> &str {
            "duplicate key value violates unique constraint \"connections_tenant_id_external_id_key\""
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            Some("connections")
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            Some("connections_tenant_id_external_id_key")
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    #[test]
    fn a_unique_violation_says_what_happened_without_the_schemas_names() {
        let error = AppError::from(Error::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new(Violation),
        ));
        let message = error.to_string();
        assert!(matches!(error, AppError::Conflict(_)), "{error:?}");
        assert!(message.contains("already exists"), "{message}");
        assert!(
            !message.contains("_key") && !message.contains("connections"),
            "{message}"
        );
    }
}
