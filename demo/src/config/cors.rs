//! Which browser origins may call the API with credentials.

use redge::origin::Origin;

use super::reader::Reader;

/// Name of the variable with the CORS origins.
pub const CORS_VAR: &str = "CORS_ALLOWED_ORIGINS";

/// CORS settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CorsSettings {
    /// Origins allowed to call the API from a browser, besides the Worker's own.
    pub allowed_origins: Vec<Origin>,
}

impl CorsSettings {
    pub(super) fn read(reader: &mut Reader<'_>) -> CorsSettings {
        let mut allowed_origins = Vec::new();
        reader.origins(CORS_VAR, &mut allowed_origins);
        CorsSettings { allowed_origins }
    }
}
