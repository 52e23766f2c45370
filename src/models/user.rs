//! Users: tenant staff (owner, admin, viewer), partners (a tenant's login bound to one of its
//! connections) and platform operators (no tenant).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::models::tenant::Tenant;
use crate::schema::{alerts, tenants, users};
use crate::validation::normalize_email;

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Viewer,
    /// A login of a tenant bound to one of its connections: manages that connection's
    /// webhooks only, and sees nothing else of the tenant.
    Partner,
    Operator,
}

impl Role {
    pub const TENANT_ROLES: [Role; 4] = [Role::Owner, Role::Admin, Role::Viewer, Role::Partner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Viewer => "viewer",
            Role::Partner => "partner",
            Role::Operator => "operator",
        }
    }

    /// Owners and admins change the tenant's things; viewers only look (and export).
    pub fn can_edit(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }

    /// Who may change webhooks: owners and admins, and partners (their connection's).
    pub fn manages_webhooks(self) -> bool {
        matches!(self, Role::Owner | Role::Admin | Role::Partner)
    }

    /// The tenant's own staff, who see the whole tenant.
    pub fn is_staff(self) -> bool {
        matches!(self, Role::Owner | Role::Admin | Role::Viewer)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "owner" => Ok(Role::Owner),
            "admin" => Ok(Role::Admin),
            "viewer" => Ok(Role::Viewer),
            "partner" => Ok(Role::Partner),
            "operator" => Ok(Role::Operator),
            other => Err(format!(
                "unknown role `{other}` (use owner, admin, viewer or partner)"
            )),
        }
    }
}

impl TryFrom<String> for Role {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Role> for String {
    fn from(role: Role) -> String {
        role.as_str().to_owned()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub struct User {
    pub id: i64,
    pub tenant_id: Option<i64>,
    pub email: String,
    #[diesel(deserialize_as = String)]
    pub role: Role,
    pub password_hash: String,
    pub disabled: bool,
    pub failed_logins: i32,
    pub first_failed_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
    pub password_changed_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// A partner's connection (none for everyone else).
    pub connection_id: Option<i64>,
    /// The last alert this user has seen under the bell.
    pub alerts_seen_id: i64,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub tenant_id: Option<i64>,
    pub email: &'a str,
    #[diesel(serialize_as = String)]
    pub role: Role,
    pub password_hash: &'a str,
    pub connection_id: Option<i64>,
}

impl User {
    /// Stores the email in its normalized spelling ([`normalize_email`]).
    pub fn create(conn: &mut PgConnection, new: NewUser<'_>) -> QueryResult<User> {
        let email = normalize_email(new.email);
        diesel::insert_into(users::table)
            .values(NewUser { email: &email, ..new })
            .returning(User::as_returning())
            .get_result(conn)
    }

    /// Emails are unique and compared in their normalized spelling: without regard to case
    /// or to the Unicode form they were typed in.
    pub fn find_by_email(conn: &mut PgConnection, email: &str) -> QueryResult<Option<User>> {
        users::table
            .filter(lower(users::email).eq(normalize_email(email)))
            .select(User::as_select())
            .first(conn)
            .optional()
    }

    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<User> {
        users::table.find(id).select(User::as_select()).first(conn)
    }

    /// A user, their tenant (none for operators) and how many of the tenant's alerts they
    /// have not seen (a partner: of its connection), in one query: every signed-in request
    /// needs all three. The one place the store reads two tables at once (a user belongs to
    /// a tenant); `tests/integration/layers.rs` names it.
    pub fn find_with_tenant(conn: &mut PgConnection, id: i64) -> QueryResult<(User, Option<Tenant>, i64)> {
        let unread = alerts::table
            .filter(alerts::tenant_id.nullable().eq(users::tenant_id))
            .filter(alerts::id.gt(users::alerts_seen_id))
            .filter(
                users::connection_id
                    .is_null()
                    .or(alerts::connection_id.eq(users::connection_id)),
            )
            .count()
            .single_value();
        let (user, tenant, unread): (User, Option<Tenant>, Option<i64>) = users::table
            .left_join(tenants::table)
            .filter(users::id.eq(id))
            .select((User::as_select(), Option::<Tenant>::as_select(), unread))
            .first(conn)?;
        Ok((user, tenant, unread.unwrap_or(0)))
    }

    pub fn list_for_tenant(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<Vec<User>> {
        users::table
            .filter(users::tenant_id.eq(tenant_id))
            .order(users::email.asc())
            .select(User::as_select())
            .load(conn)
    }

    pub fn list_all(conn: &mut PgConnection) -> QueryResult<Vec<User>> {
        users::table
            .order(users::email.asc())
            .select(User::as_select())
            .load(conn)
    }

    pub fn set_password(conn: &mut PgConnection, id: i64, password_hash: &str) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set((
                users::password_hash.eq(password_hash),
                users::password_changed_at.eq(diesel::dsl::now),
                users::failed_logins.eq(0),
                users::locked_until.eq(None::<DateTime<Utc>>),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
    }

    /// Sets a user's role and, for a partner, the connection it is bound to.
    pub fn set_role(
        conn: &mut PgConnection,
        id: i64,
        role: Role,
        connection_id: Option<i64>,
    ) -> QueryResult<User> {
        diesel::update(users::table.find(id))
            .set((
                users::role.eq(role.as_str()),
                users::connection_id.eq(connection_id),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .returning(User::as_returning())
            .get_result(conn)
    }

    /// A user of a tenant, by id: another tenant's answers `NotFound`.
    pub fn find_in_tenant(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<User> {
        users::table
            .filter(users::tenant_id.eq(tenant_id))
            .filter(users::id.eq(id))
            .select(User::as_select())
            .first(conn)
    }

    /// Marks every alert up to `alert_id` as seen under the bell.
    pub fn set_alerts_seen(conn: &mut PgConnection, id: i64, alert_id: i64) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .filter(users::alerts_seen_id.lt(alert_id))
            .set(users::alerts_seen_id.eq(alert_id))
            .execute(conn)
    }

    /// How many partner logins a connection has.
    pub fn partner_count(conn: &mut PgConnection, connection_id: i64) -> QueryResult<i64> {
        users::table
            .filter(users::connection_id.eq(connection_id))
            .count()
            .get_result(conn)
    }

    pub fn set_disabled(conn: &mut PgConnection, id: i64, disabled: bool) -> QueryResult<usize> {
        diesel::update(users::table.find(id))
            .set((
                users::disabled.eq(disabled),
                users::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
    }
}

/// What a claimed password check may do.
pub enum PasswordCheck {
    /// Check the password against `user.password_hash`; `attempt` names this claim.
    Check { user: User, attempt: i64 },
    /// Refused without checking: the account is paused or disabled.
    Refused,
}

impl User {
    /// Claims one password check of the account at `now`, atomically (the row is locked
    /// while the throttle record is read and written), before any hashing: the attempt is
    /// counted as a failure in advance, so concurrent attempts beyond the limit are refused
    /// without a check. Every attempt, refused or not, takes the next `login_attempts`.
    pub fn claim_password_check(
        conn: &mut PgConnection,
        id: i64,
        now: DateTime<Utc>,
    ) -> QueryResult<PasswordCheck> {
        conn.transaction(|conn| {
            let (user, attempts) = User::lock_with_attempts(conn, id)?;
            let attempt = attempts + 1;
            let claimed = user.throttle_record().claim(now).filter(|_| !user.disabled);
            let target = diesel::update(users::table.find(id));
            match claimed {
                Some(record) => {
                    target
                        .set((
                            users::login_attempts.eq(attempt),
                            users::failed_logins.eq(record.failures),
                            users::first_failed_at.eq(record.first_failed_at),
                            users::locked_until.eq(record.locked_until),
                        ))
                        .execute(conn)?;
                    Ok(PasswordCheck::Check { user, attempt })
                }
                None => {
                    target.set(users::login_attempts.eq(attempt)).execute(conn)?;
                    Ok(PasswordCheck::Refused)
                }
            }
        })
    }

    /// The user and their attempt count, with the row locked until the transaction ends.
    fn lock_with_attempts(conn: &mut PgConnection, id: i64) -> QueryResult<(User, i64)> {
        users::table
            .find(id)
            .select((User::as_select(), users::login_attempts))
            .for_update()
            .first(conn)
    }

    /// The claimed check `attempt` matched: clears the throttle record and answers true,
    /// unless attempts after this one paused the account meanwhile (a burst of guesses
    /// does not carry the right password through).
    pub fn finish_matching_check(
        conn: &mut PgConnection,
        id: i64,
        attempt: i64,
        now: DateTime<Utc>,
    ) -> QueryResult<bool> {
        conn.transaction(|conn| {
            let (user, attempts) = User::lock_with_attempts(conn, id)?;
            if user.disabled || (attempts != attempt && user.throttle_record().is_locked(now)) {
                return Ok(false);
            }
            diesel::update(users::table.find(id))
                .set((
                    users::failed_logins.eq(0),
                    users::first_failed_at.eq(None::<DateTime<Utc>>),
                    users::locked_until.eq(None::<DateTime<Utc>>),
                ))
                .execute(conn)?;
            Ok(true)
        })
    }

    pub fn throttle_record(&self) -> crate::auth::throttle::Record {
        crate::auth::throttle::Record {
            failures: self.failed_logins,
            first_failed_at: self.first_failed_at,
            locked_until: self.locked_until,
        }
    }
}
