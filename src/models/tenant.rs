//! Tenants: travel businesses, each with a plan and the Webhooks tool switch.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;

use crate::schema::tenants;

/// The subscription plan. Webhooks are a Scale-plan feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Starter,
    Growth,
    Scale,
}

impl Plan {
    pub const ALL: [Plan; 3] = [Plan::Starter, Plan::Growth, Plan::Scale];

    pub fn as_str(self) -> &'static str {
        match self {
            Plan::Starter => "starter",
            Plan::Growth => "growth",
            Plan::Scale => "scale",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Plan::Starter => "Starter",
            Plan::Growth => "Growth",
            Plan::Scale => "Scale",
        }
    }

    pub fn has_webhooks(self) -> bool {
        self == Plan::Scale
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "starter" => Ok(Plan::Starter),
            "growth" => Ok(Plan::Growth),
            "scale" => Ok(Plan::Scale),
            other => Err(format!("unknown plan `{other}` (use starter, growth or scale)")),
        }
    }
}

impl TryFrom<String> for Plan {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<Plan> for String {
    fn from(plan: Plan) -> String {
        plan.as_str().to_owned()
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Identifiable, Serialize)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub struct Tenant {
    pub id: i64,
    pub name: String,
    pub slug: String,
    #[diesel(deserialize_as = String)]
    pub plan: Plan,
    pub timezone: String,
    pub webhooks_enabled: bool,
    pub next_webhook_number: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = tenants)]
pub struct NewTenant<'a> {
    pub name: &'a str,
    pub slug: &'a str,
    #[diesel(serialize_as = String)]
    pub plan: Plan,
    pub timezone: &'a str,
}

impl Tenant {
    /// Creates a tenant with a slug made from its name, made unique with a number.
    pub fn create(conn: &mut PgConnection, name: &str, plan: Plan) -> QueryResult<Tenant> {
        let base = slugify(name);
        conn.transaction(|conn| {
            let taken: Vec<String> = tenants::table
                .filter(
                    tenants::slug
                        .eq(&base)
                        .or(tenants::slug.like(format!("{base}-%"))),
                )
                .select(tenants::slug)
                .load(conn)?;
            let slug = (1..)
                .map(|n| {
                    if n == 1 {
                        base.clone()
                    } else {
                        format!("{base}-{n}")
                    }
                })
                .find(|candidate| !taken.contains(candidate))
                .expect("an unused slug exists");
            diesel::insert_into(tenants::table)
                .values(NewTenant {
                    name,
                    slug: &slug,
                    plan,
                    timezone: "UTC",
                })
                .returning(Tenant::as_returning())
                .get_result(conn)
        })
    }

    pub fn find(conn: &mut PgConnection, id: i64) -> QueryResult<Tenant> {
        tenants::table.find(id).select(Tenant::as_select()).first(conn)
    }

    /// Who gets the tenant's alert mails.
    pub fn alert_emails(conn: &mut PgConnection, id: i64) -> QueryResult<Vec<String>> {
        let emails: Vec<Option<String>> = tenants::table
            .find(id)
            .select(tenants::alert_emails)
            .first(conn)?;
        Ok(emails.into_iter().flatten().collect())
    }

    pub fn set_alert_emails(conn: &mut PgConnection, id: i64, emails: &[String]) -> QueryResult<usize> {
        diesel::update(tenants::table.find(id))
            .set((
                tenants::alert_emails.eq(emails.iter().cloned().map(Some).collect::<Vec<_>>()),
                tenants::updated_at.eq(diesel::dsl::now),
            ))
            .execute(conn)
    }

    pub fn find_by_slug(conn: &mut PgConnection, slug: &str) -> QueryResult<Tenant> {
        tenants::table
            .filter(tenants::slug.eq(slug))
            .select(Tenant::as_select())
            .first(conn)
    }

    pub fn list(conn: &mut PgConnection) -> QueryResult<Vec<Tenant>> {
        tenants::table
            .order(tenants::name.asc())
            .select(Tenant::as_select())
            .load(conn)
    }

    pub fn count(conn: &mut PgConnection) -> QueryResult<i64> {
        tenants::table.count().get_result(conn)
    }

    pub fn set_plan(conn: &mut PgConnection, id: i64, plan: Plan) -> QueryResult<Tenant> {
        diesel::update(tenants::table.find(id))
            .set((
                tenants::plan.eq(plan.as_str()),
                tenants::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Tenant::as_returning())
            .get_result(conn)
    }

    pub fn rename(conn: &mut PgConnection, id: i64, name: &str) -> QueryResult<Tenant> {
        diesel::update(tenants::table.find(id))
            .set((tenants::name.eq(name), tenants::updated_at.eq(diesel::dsl::now)))
            .returning(Tenant::as_returning())
            .get_result(conn)
    }

    pub fn set_webhooks_enabled(conn: &mut PgConnection, id: i64, enabled: bool) -> QueryResult<Tenant> {
        diesel::update(tenants::table.find(id))
            .set((
                tenants::webhooks_enabled.eq(enabled),
                tenants::updated_at.eq(diesel::dsl::now),
            ))
            .returning(Tenant::as_returning())
            .get_result(conn)
    }
}

/// Lowercase ASCII letters and digits joined by single hyphens, at most 50 characters.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 50 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() {
        "tenant".to_owned()
    } else {
        slug.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_words_joined_by_hyphens() {
        assert_eq!(slugify("Alpine Tours & Co."), "alpine-tours-co");
        assert_eq!(slugify("  --Ümlaut Reisen 2026"), "mlaut-reisen-2026");
        assert_eq!(slugify("!!!"), "tenant");
        assert!(slugify(&"x".repeat(200)).len() <= 50);
    }

    #[test]
    fn plans_round_trip_through_text() {
        for plan in Plan::ALL {
            assert_eq!(plan.as_str().parse::<Plan>().unwrap(), plan);
        }
        assert!(
            "enterprise"
                .parse::<Plan>()
                .unwrap_err()
                .contains("starter, growth or scale")
        );
    }
}
