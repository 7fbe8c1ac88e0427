//! Spelling rules every data file shares (environment variable names), in a module of
//! their own so that the matrix, the descriptors and the runtime axes can all use them
//! without importing one another.

use crate::diag::{Diagnostic, Source};
use toml::Spanned;

pub(crate) fn valid_env_name(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_alphabetic() || x == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

/// A data file's variable name checked where it stands: `None` when valid, else the located
/// diagnostic every descriptor gives for it.
pub(crate) fn env_name_error(src: &Source, name: &Spanned<String>) -> Option<Diagnostic> {
    (!valid_env_name(name.get_ref())).then(|| {
        Diagnostic::at(
            src,
            name.span(),
            format!("invalid environment variable name {:?}", name.get_ref()),
        )
        .expected("letters, digits and `_`, not starting with a digit")
    })
}
