//! conference-duration: a Lilt plugin replacing jitsi-meet's
//! mod_conference_duration_component. The trait impls only route; the policy is in policy.rs.
//!
//! World: `lilt:plugin/hooks-and-component` (component `conferenceduration.DOMAIN`, identity
//! `component/conference_duration`; subscribes to `occupant-joined`). Settings: none.

pub mod policy;

use lilt_plugin_sdk::{
    ComponentPlugin, Configure, DiscoIdentity, Event, EventKind, HookPlugin, Host, Plugin, Verdict,
};

/// The plugin, knowing its component domain.
#[derive(Debug)]
pub struct ConferenceDuration {
    component: String,
}

impl Plugin for ConferenceDuration {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        ctx.no_settings()?;
        Ok(ConferenceDuration {
            component: ctx.component.clone().unwrap_or_default(),
        })
    }
}

impl HookPlugin for ConferenceDuration {
    fn subscriptions(&self) -> Vec<(EventKind, i32)> {
        vec![(EventKind::OccupantJoined, 0)]
    }

    fn handle(&mut self, host: &impl Host, event: Event) -> Verdict {
        if let Event::OccupantJoined(e) = event {
            policy::joined(host, &self.component, &e.room, &e.occupant);
        }
        Verdict::Pass
    }
}

impl ComponentPlugin for ConferenceDuration {
    fn identity(&self) -> Option<DiscoIdentity> {
        Some(DiscoIdentity::component("conference_duration"))
    }
}

lilt_plugin_sdk::export_hooks_and_component!(ConferenceDuration);
