//! The policy of auth-anonymous: every login is anonymous, nobody has an account.
//!
//! Pure; tested natively below. Replaces Prosody's `authentication = "anonymous"`.

/// Settings: none are accepted.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {}

/// Check the vhost's settings.
///
/// # Errors
/// When any key is set.
pub fn configure(json: &str) -> Result<Settings, String> {
    lilt_plugin_sdk::parse_settings::<Settings>(json)
        .map_err(|e| format!("auth-anonymous takes no settings ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        assert!(configure("{}").is_ok());
        assert!(configure("null").is_ok());
        assert!(
            configure("{\"x\":1}")
                .expect_err("unknown key")
                .contains("no settings")
        );
    }
}
