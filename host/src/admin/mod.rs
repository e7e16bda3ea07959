//! Operator commands in the habit of prosodyctl: `lilt user add|del|passwd USER@VHOST` and
//! `lilt check-config`. Account changes go through the vhost's auth plugin, never around it, so
//! the plugin decides how (and whether) credentials are stored.
//!
//! Shell (edge code: anyhow errors, terminal IO). Invariants: passwords are never echoed or
//! logged; a password is read from a prompt on a terminal, else as one line from stdin.
//! Tests: tests/all/cli.rs.

pub mod plugins;
pub mod scaffold;

use std::io::{BufRead, IsTerminal, Write};

use anyhow::{Context as _, bail};

use crate::config::Config;
use crate::plugin::{AuthError, PluginError};
use crate::runtime::server::load_vhosts;
use crate::stanza::Jid;

/// What to do to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserAction {
    /// Create it.
    Add,
    /// Delete it.
    Delete,
    /// Change its password.
    Passwd,
}

/// Validate the config and load every plugin, as `serve` would.
///
/// # Errors
/// The first problem found, naming the key.
pub fn check_config(config: &Config) -> anyhow::Result<()> {
    load_vhosts(config)?;
    Ok(())
}

/// Run `lilt user ACTION USER@VHOST`.
///
/// # Errors
/// When the JID or vhost is wrong, the plugin refuses, or no password could be read.
pub async fn user(config: &Config, action: UserAction, jid: &str) -> anyhow::Result<()> {
    let jid = Jid::parse(jid).with_context(|| format!("{jid:?} is not a JID"))?;
    let Some(node) = jid.node().filter(|_| jid.is_bare()) else {
        bail!("give the account as USER@VHOST, without a resource");
    };
    if config.vhost(jid.domain()).is_none() {
        bail!("{} is not a vhost in this configuration", jid.domain());
    }
    let plugins = load_vhosts(config)?.auth;
    let Some(plugin) = plugins.get(jid.domain()) else {
        bail!("no auth plugin for {}", jid.domain())
    };
    let result = match action {
        UserAction::Add => {
            let password = read_password(true)?;
            plugin.create_user(node, &password).await
        }
        UserAction::Passwd => {
            let password = read_password(true)?;
            plugin.set_password(node, &password).await
        }
        UserAction::Delete => plugin.delete_user(node).await,
    };
    match result {
        Ok(()) => Ok(()),
        Err(PluginError::Auth {
            error: AuthError::UserExists,
            ..
        }) => bail!("{jid} already exists"),
        Err(PluginError::Auth {
            error: AuthError::UserNotFound,
            ..
        }) => bail!("{jid} does not exist"),
        Err(PluginError::Auth {
            error: AuthError::NotSupported,
            plugin,
        }) => {
            bail!(
                "the auth plugin {plugin} of {} does not manage accounts",
                jid.domain()
            )
        }
        Err(e) => Err(e.into()),
    }
}

fn read_password(confirm: bool) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt("Password: ")?;
        if confirm {
            let second = prompt("Again: ")?;
            if first != second {
                bail!("the passwords differ");
            }
        }
        first
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        bail!("the password is empty");
    }
    Ok(password)
}

/// Prompt on the terminal with echo off (via `stty`, which every Unix terminal has).
fn prompt(text: &str) -> anyhow::Result<String> {
    let mut err = std::io::stderr();
    write!(err, "{text}")?;
    err.flush()?;
    let echo_off = std::process::Command::new("stty")
        .arg("-echo")
        .status()
        .is_ok_and(|s| s.success());
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        let _ = std::process::Command::new("stty").arg("echo").status();
    }
    writeln!(err)?;
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
