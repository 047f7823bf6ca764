//! The database scenario's one decision: which errors say the database is unhealthy.

use hotbreaker::Outcome;

/// A Failure for what says the database is unhealthy (I/O, a pool timeout, a protocol error, a
/// server shutting down, a deadline); `Ignored` for the caller's own problems: SQLSTATE class
/// 23 (integrity constraint violations: unique, foreign key, not null, check), class 42
/// (syntax errors and access rule violations), and a row or column that is not there.
pub fn classify(e: &sqlx::Error) -> Outcome {
    match e {
        sqlx::Error::Database(db)
            if db
                .code()
                .is_some_and(|c| c.starts_with("23") || c.starts_with("42")) =>
        {
            Outcome::Ignored
        }
        sqlx::Error::RowNotFound | sqlx::Error::ColumnNotFound(_) => Outcome::Ignored,
        _ => Outcome::Failure,
    }
}
