//! What every request handler shares. Handlers import it from here; it imports no resource.

use std::sync::Arc;

use crate::accounts::IdentityCache;
use crate::config::Config;
use crate::crypto::Keys;
use crate::crypto::data_keys::DataKeys;
use crate::db::Pool;
use crate::disclosures::Log;
use crate::error::AppResult;
use crate::metrics::Metrics;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The database pool.
    pub pool: Pool,
    /// Token keys.
    pub keys: Arc<Keys>,
    /// The configuration.
    pub config: Arc<Config>,
    /// The identities this instance read lately (shared by its workers).
    pub identities: Arc<IdentityCache>,
    /// The instance's metrics.
    pub metrics: Arc<Metrics>,
    /// The password and secret checks allowed at once (`crate::crypto::concurrent_checks`).
    pub hashing: Arc<tokio::sync::Semaphore>,
    /// The keys that seal personal data at rest (`DATA_KEY_FILE`, read again when it changes).
    pub data_keys: Arc<DataKeys>,
    /// The writer of the disclosure log (`crate::disclosures`), one per process.
    pub disclosures: Arc<Log>,
    /// The exports under way (`crate::spool`).
    pub exports: Arc<crate::spool::Exports>,
}

impl AppState {
    /// State for `config`, using `pool`.
    pub fn new(config: Config, pool: Pool) -> AppResult<AppState> {
        let data_keys = DataKeys::load(&config.data_key_file).map_err(crate::error::AppError::internal)?;
        let deployment = {
            let mut conn = pool.get().map_err(|e| crate::error::AppError::Unavailable(e.to_string()))?;
            crate::db::deployment::current(&mut conn)?
        };
        let keys = Keys::new(&config.jwt_secret, config.access_token_ttl, &deployment)?;
        let metrics = Arc::new(Metrics::new(&pool).map_err(crate::error::AppError::internal)?);
        let hashing =
            Arc::new(tokio::sync::Semaphore::new(crate::crypto::concurrent_checks(config.db_pool_size)));
        Ok(AppState {
            exports: crate::spool::Exports::new(config.db_pool_size),
            hashing,
            pool: pool.clone(),
            keys: Arc::new(keys),
            config: Arc::new(config),
            identities: Arc::default(),
            metrics,
            data_keys: Arc::new(data_keys),
            disclosures: Arc::new(Log::start(pool.clone()).map_err(crate::error::AppError::internal)?),
        })
    }
}
