//! nginx.conf → typed, validated [`Config`].
mod model;
pub use model::*;
