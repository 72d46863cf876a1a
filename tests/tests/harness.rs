//! The test harness itself: [`pg::fresh_database`] hands out distinct, usable databases, also
//! to many tests asking at once.

use integration_tests::pg;
use sqlx::{Connection, PgConnection};

async fn select_one(url: &str) -> i32 {
    let mut conn = PgConnection::connect(url).await.expect("a connection");
    let one: i32 = sqlx::query_scalar("SELECT 1")
        .fetch_one(&mut conn)
        .await
        .expect("SELECT 1");
    conn.close().await.expect("closed");
    one
}

async fn current_database(url: &str) -> String {
    let mut conn = PgConnection::connect(url).await.expect("a connection");
    let name = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&mut conn)
        .await
        .expect("the database's name");
    conn.close().await.expect("closed");
    name
}

#[tokio::test]
async fn each_call_gives_a_different_usable_database() {
    let first = pg::fresh_database().await.expect("a first database");
    let second = pg::fresh_database().await.expect("a second database");

    assert_ne!(first, second);
    assert_eq!(select_one(&first).await, 1);
    assert_eq!(select_one(&second).await, 1);
    let name = current_database(&first).await;
    assert!(name.starts_with("lstest_"), "{name}");
    assert_ne!(name, current_database(&second).await);
}

#[tokio::test]
async fn a_fresh_database_is_empty() {
    let url = pg::fresh_database().await.expect("a database");
    let mut conn = PgConnection::connect(&url).await.expect("a connection");

    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .expect("counted");

    assert_eq!(tables, 0);
}

#[tokio::test]
async fn the_server_url_reaches_the_server() {
    let url = pg::server_url().await.expect("the server's URL");
    assert_eq!(select_one(&url).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_callers_all_get_a_database() {
    let tasks: Vec<_> = (0..20)
        .map(|_| tokio::spawn(async { pg::fresh_database().await }))
        .collect();
    let mut urls = Vec::new();
    for task in tasks {
        urls.push(task.await.expect("the task ran").expect("a database"));
    }

    urls.sort();
    urls.dedup();
    assert_eq!(urls.len(), 20, "twenty distinct databases");
    for url in &urls {
        assert_eq!(select_one(url).await, 1);
    }
}
