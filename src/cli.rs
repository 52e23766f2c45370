//! The command line. Every command uses the same database rule as `serve`: `DATABASE_URL`
//! when set, otherwise the embedded PostgreSQL under `HOOKBOARD_DATA_DIR`.

use std::io::BufRead;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};

use crate::app;
use crate::auth::password;
use crate::db::{self, Database};
use crate::models::audit::Actor;
use crate::models::tenant::{Plan, Tenant};
use crate::models::user::Role;
use crate::services::accounts;
use crate::settings::Settings;

#[derive(Debug, Parser)]
#[command(name = "hookboard", version, about = "Webhook dashboard and delivery engine")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run pending migrations, then serve the dashboard, the API and the delivery worker (the default).
    Serve,
    /// Run pending database migrations and exit.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage tenant API keys.
    #[command(subcommand)]
    Apikey(ApiKeyCommand),
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant; prints its slug.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = parse_plan)]
        plan: Plan,
    },
    /// Change a tenant's plan.
    SetPlan {
        #[arg(long)]
        tenant: String,
        #[arg(long, value_parser = parse_plan)]
        plan: Plan,
    },
    /// Set who gets the tenant's alert mails (comma-separated; empty: nobody).
    Alerts {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        emails: String,
    },
    /// Switch the tenant's Webhooks tool on (Apps > Tools), or off with `--off`.
    Webhooks {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        off: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input (one line).
    Create(UserCreate),
    /// Set a user's password (read from standard input, one line) and end their sessions,
    /// e.g. when the demo login printed on the first start was missed.
    SetPassword {
        #[arg(long)]
        email: String,
    },
}

#[derive(Debug, Args)]
pub struct UserCreate {
    #[arg(long, required_unless_present = "operator", conflicts_with = "operator")]
    tenant: Option<String>,
    #[arg(long)]
    email: String,
    #[arg(long, value_parser = parse_tenant_role, required_unless_present = "operator", conflicts_with = "operator")]
    role: Option<Role>,
    /// A platform operator (no tenant).
    #[arg(long)]
    operator: bool,
    /// For `--role partner`: the contract ID of the tenant's connection the partner manages.
    #[arg(long, conflicts_with = "operator")]
    connection: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Create a tenant API key; prints the key, which is shown only this once.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
    },
}

fn parse_plan(text: &str) -> Result<Plan, String> {
    text.parse()
}

fn parse_tenant_role(text: &str) -> Result<Role, String> {
    match text.parse()? {
        Role::Operator => Err("use --operator for operators".into()),
        role => Ok(role),
    }
}

/// Runs one command to completion.
pub fn run(cli: Cli, settings: Settings) -> anyhow::Result<()> {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => app::serve(settings),
        Command::Migrate => with_database(&settings, |_| {
            println!("Migrations are up to date.");
            Ok(())
        }),
        Command::Tenant(TenantCommand::Create { name, plan }) => {
            let name = accounts::check_tenant_name(&name).map_err(|m| anyhow::anyhow!("--name: {m}"))?;
            with_database(&settings, |conn| {
                let tenant = accounts::create_tenant(conn, &name, plan, &Actor::system())?;
                println!(
                    "Created tenant {} on the {} plan: {}",
                    tenant.name,
                    plan.label(),
                    tenant.slug
                );
                Ok(())
            })
        }
        Command::Tenant(TenantCommand::SetPlan { tenant, plan }) => with_database(&settings, |conn| {
            let found = find_tenant(conn, &tenant)?;
            accounts::update_tenant(conn, found.id, None, Some(plan), &Actor::system())?;
            println!(
                "Tenant {} is now on the {} plan: {}",
                found.slug,
                plan.label(),
                found.slug
            );
            Ok(())
        }),
        Command::Tenant(TenantCommand::Alerts { tenant, emails }) => with_database(&settings, |conn| {
            let found = find_tenant(conn, &tenant)?;
            let saved = crate::services::alerts::set_recipients(conn, found.id, &emails, &Actor::system())
                .map_err(|err| anyhow::anyhow!("--emails: {err}"))?;
            if saved.is_empty() {
                println!("Nobody gets the alert mails of {}: {}", found.slug, found.slug);
            } else {
                println!(
                    "Alert mails of {} go to {}: {}",
                    found.slug,
                    saved.join(", "),
                    found.slug
                );
            }
            Ok(())
        }),
        Command::Tenant(TenantCommand::Webhooks { tenant, off }) => with_database(&settings, |conn| {
            let found = find_tenant(conn, &tenant)?;
            accounts::set_webhooks_enabled(conn, found.id, !off, &Actor::system())?;
            println!(
                "The Webhooks tool of {} is {}: {}",
                found.slug,
                if off { "off" } else { "on" },
                found.slug
            );
            Ok(())
        }),
        Command::User(UserCommand::Create(args)) => {
            let email = accounts::check_email(&args.email).map_err(|m| anyhow::anyhow!("--email: {m}"))?;
            let typed = read_password()?;
            password::validate(&typed).map_err(anyhow::Error::msg)?;
            let hash = password::hash(&typed)?;
            with_database(&settings, |conn| {
                let (tenant_id, role) = match (&args.tenant, args.role) {
                    (Some(slug), Some(role)) if !args.operator => (Some(find_tenant(conn, slug)?.id), role),
                    _ => (None, Role::Operator),
                };
                let account = accounts::NewAccount {
                    tenant_id,
                    email: &email,
                    role,
                    password_hash: &hash,
                    connection: args.connection.as_deref(),
                };
                let user = accounts::create_user(conn, account, &Actor::system())?;
                println!("Created {} user: {}", role, user.email);
                Ok(())
            })
        }
        Command::User(UserCommand::SetPassword { email }) => {
            let typed = read_password()?;
            password::validate(&typed).map_err(anyhow::Error::msg)?;
            let hash = password::hash(&typed)?;
            with_database(&settings, |conn| {
                let user = accounts::set_password(conn, &email, &hash, &Actor::system())?;
                println!(
                    "Set the password of {}; their sessions ended: {}",
                    user.email, user.email
                );
                Ok(())
            })
        }
        Command::Apikey(ApiKeyCommand::Create { tenant, name }) => {
            let name = accounts::check_key_name(&name).map_err(|m| anyhow::anyhow!("--name: {m}"))?;
            with_database(&settings, |conn| {
                let found = find_tenant(conn, &tenant)?;
                let (key, secret) = accounts::create_api_key(conn, found.id, &name, None, &Actor::system())?;
                println!(
                    "Created API key \"{}\" for {}. It is shown only once; keep it safe:",
                    key.name, found.slug
                );
                println!("{secret}");
                Ok(())
            })
        }
    }
}

fn find_tenant(conn: &mut diesel::PgConnection, slug: &str) -> anyhow::Result<Tenant> {
    use diesel::OptionalExtension;
    Tenant::find_by_slug(conn, slug)
        .optional()?
        .with_context(|| format!("no tenant with the slug `{slug}` (see the tenant list in /admin/tenants)"))
}

/// One line from standard input, its line ending dropped.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.strip_suffix('\n').unwrap_or(&line);
    let password = password.strip_suffix('\r').unwrap_or(password);
    if password.is_empty() {
        bail!(
            "no password on standard input (pipe one line, e.g. `echo 'a long password' | hookboard user create ...`)"
        );
    }
    Ok(password.to_owned())
}

/// Opens the database (starting the embedded server if needed), migrates, runs `work`.
fn with_database<T>(
    settings: &Settings,
    work: impl FnOnce(&mut diesel::PgConnection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let database = Database::open(settings)?;
    let pool = db::connect(&database.url, 2)?;
    let mut conn = pool.get()?;
    db::run_migrations(&mut conn)?;
    let result = work(&mut conn);
    drop(conn);
    drop(pool);
    drop(database);
    result
}
