//! A fresh PostgreSQL database per run: created on the server `--database-url` names (whose own
//! database serves only as the admin connection) and dropped after the run.

use anyhow::{Context, bail};
use sqlx::{Connection, Executor, PgConnection};

#[derive(Debug)]
pub struct FreshDatabase {
    admin_url: String,
    name: String,
    /// The URL Herald gets: the admin URL with the fresh database's name.
    pub url: String,
}

impl FreshDatabase {
    /// Creates `herald_bench_<pid>_<run>` on the admin URL's server.
    pub async fn create(admin_url: &str, run: usize) -> anyhow::Result<Self> {
        let mut url = url::Url::parse(admin_url).context("--database-url is not a URL")?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            bail!("--database-url must be a postgres:// or postgresql:// URL");
        }
        let name = format!("herald_bench_{}_{run}", std::process::id());
        url.set_path(&format!("/{name}"));
        let mut admin = connect(admin_url).await?;
        // Names made of [a-z0-9_] only, so quoting is all they need.
        admin
            .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
            .await?;
        admin
            .execute(format!("CREATE DATABASE \"{name}\"").as_str())
            .await
            .with_context(|| format!("creating database {name}"))?;
        admin.close().await?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url: url.to_string(),
        })
    }

    /// Drops the database, ending any session still in it (Herald's, if it was not stopped).
    pub async fn drop_database(self) -> anyhow::Result<()> {
        let mut admin = connect(&self.admin_url).await?;
        admin
            .execute(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name).as_str())
            .await
            .with_context(|| format!("dropping database {}", self.name))?;
        admin.close().await?;
        Ok(())
    }
}

async fn connect(admin_url: &str) -> anyhow::Result<PgConnection> {
    PgConnection::connect(admin_url)
        .await
        .context("connecting to --database-url (the admin connection)")
}
