//! The figures Kong's `GET /license/report` states that come from the database: the server's
//! version, the newest license's key, and a few row counts.

use sqlx::PgPool;

/// What the report reads from the database.
#[derive(Debug, Clone)]
pub(crate) struct ReportFigures {
    /// `SHOW server_version`, e.g. `16.4 (Debian 16.4-1.pgdg120+2)`.
    pub(crate) server_version: String,
    /// The key of the license updated last, if there is one.
    pub(crate) newest_key: Option<String>,
    pub(crate) admin_tokens: i64,
    pub(crate) products: i64,
    pub(crate) licenses: i64,
    pub(crate) data_planes: i64,
}

pub(crate) async fn figures(db: &PgPool) -> sqlx::Result<ReportFigures> {
    let server_version: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(db)
        .await?;
    let newest_key: Option<String> =
        sqlx::query_scalar("SELECT key FROM licenses ORDER BY updated_at DESC, id LIMIT 1")
            .fetch_optional(db)
            .await?;
    let count =
        |sql: &'static str| async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(db).await };
    Ok(ReportFigures {
        server_version,
        newest_key,
        admin_tokens: count("SELECT count(*) FROM admin_tokens").await?,
        products: count("SELECT count(*) FROM products").await?,
        licenses: count("SELECT count(*) FROM licenses").await?,
        data_planes: count("SELECT count(*) FROM data_planes").await?,
    })
}
