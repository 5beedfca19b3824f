//! [`Secret`]: a password or digest that must never reach a log.
//!
//! Every type that carries a client's or an auth server's password holds it as a
//! `Secret`, so those types can derive `Debug` and still never print it: the wrapper's
//! `Debug` says `<redacted>`, and the value is only reachable through
//! [`Secret::expose`], which makes each use visible in review.

/// A value whose `Debug` output is `<redacted>`. It has no `Display`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The value itself: for the wire, never for a log.
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Secret(value)
    }
}

impl From<&str> for Secret<Vec<u8>> {
    fn from(value: &str) -> Self {
        Secret(value.as_bytes().to_vec())
    }
}

impl From<&[u8]> for Secret<Vec<u8>> {
    fn from(value: &[u8]) -> Self {
        Secret(value.to_vec())
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        #[derive(Debug)]
        #[allow(dead_code)]
        struct Login {
            user: String,
            password: Secret<Vec<u8>>,
        }
        let login = Login {
            user: "alice".into(),
            password: Secret::new(b"s3cret".to_vec()),
        };
        let shown = format!("{login:?} {login:#?}");
        assert!(
            shown.contains("alice") && shown.contains("<redacted>"),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        // Nor in the numeric form a derived Debug of Vec<u8> would use.
        assert!(!shown.contains("115, 51"), "{shown}");
        assert_eq!(login.password.expose(), b"s3cret");
    }
}
