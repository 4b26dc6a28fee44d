//! Unit tests of `${ENV}` replacement in source URLs.

use super::*;

#[test]
fn environment_variables_fill_urls_and_a_missing_one_is_named() {
    // PATH is set wherever tests run; the missing variable's name is one nobody sets.
    let path = std::env::var("PATH").expect("PATH");
    assert_eq!(expand_env("a${PATH}b").expect("set"), format!("a{path}b"));
    assert_eq!(expand_env("postgres://db/x").expect("none"), "postgres://db/x");
    let error = expand_env("postgres://u:${VIGIE_NO_SUCH_VARIABLE_42}@db/x").expect_err("unset");
    assert!(error.contains("VIGIE_NO_SUCH_VARIABLE_42 is not set"), "{error}");
    assert!(expand_env("x${OPEN").expect_err("unclosed").contains("closing"));
}
