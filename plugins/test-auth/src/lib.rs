//! test-auth: a test fixture, not a product plugin. It offers SASL PLAIN, and on every password
//! check misbehaves as its `mode` says: `panic` (a Rust `panic!`, which prints its message
//! before it traps), `loop` (never returns) or `alloc` (allocates until the memory cap). The
//! isolation tests run it on one vhost to show that its logins fail closed, with a clear SASL
//! failure, while other vhosts carry on.
//!
//! World: `lilt:plugin/auth`. Imports nothing grantable. Settings: `mode` (`panic`, `loop` or
//! `alloc`).

use lilt_plugin_sdk::{AuthError, AuthPlugin, Configure, Mechanism, Plugin, Store};

/// What the fixture does on a password check.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `panic!`.
    #[default]
    Panic,
    /// Loop forever.
    Loop,
    /// Allocate until the memory cap.
    Alloc,
}

/// Settings.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// What to do.
    #[serde(default)]
    pub mode: Mode,
}

/// The plugin.
#[derive(Debug)]
pub struct TestAuth {
    mode: Mode,
}

impl Plugin for TestAuth {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        let s: Settings = ctx.settings()?;
        Ok(TestAuth { mode: s.mode })
    }
}

impl AuthPlugin for TestAuth {
    fn mechanisms(&self) -> Vec<Mechanism> {
        vec![Mechanism::Plain]
    }

    fn user_exists(&self, _: &impl Store, _: &str) -> Result<bool, AuthError> {
        Ok(true)
    }

    fn test_password(&self, _: &impl Store, user: &str, _: &str) -> Result<bool, AuthError> {
        match self.mode {
            Mode::Panic => panic!("test-auth: deliberate panic checking {user}"),
            Mode::Loop => loop {
                std::hint::black_box(user);
            },
            Mode::Alloc => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
        }
    }
}

lilt_plugin_sdk::export_auth!(TestAuth);
