//! speakerstats: a Lilt plugin replacing jitsi-meet's mod_speakerstats_component. The trait
//! impls only route; the policy is in policy.rs.
//!
//! World: `lilt:plugin/hooks-and-component` (component `speakerstats.DOMAIN`, identity
//! `component/speakerstats`; subscribes to `room-created`, `occupant-joined`,
//! `occupant-left`, `room-destroyed`). Settings: none.

pub mod policy;

use lilt_plugin_sdk::{
    ComponentPlugin, Configure, DiscoIdentity, Element, Event, EventKind, HookPlugin, Host, Plugin,
    Verdict,
};

/// The plugin, knowing its component domain.
#[derive(Debug)]
pub struct SpeakerStats {
    component: String,
}

impl Plugin for SpeakerStats {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        ctx.no_settings()?;
        Ok(SpeakerStats {
            component: ctx.component.clone().unwrap_or_default(),
        })
    }
}

impl HookPlugin for SpeakerStats {
    fn subscriptions(&self) -> Vec<(EventKind, i32)> {
        [
            EventKind::RoomCreated,
            EventKind::OccupantJoined,
            EventKind::OccupantLeft,
            EventKind::RoomDestroyed,
        ]
        .into_iter()
        .map(|kind| (kind, 0))
        .collect()
    }

    fn handle(&mut self, host: &impl Host, event: Event) -> Verdict {
        match event {
            Event::OccupantJoined(e) => {
                policy::joined(host, &self.component, &e.room, &e.occupant, &e.presence);
            }
            Event::OccupantLeft(e) => policy::left(host, &e.room, &e.occupant, &e.presence),
            // A new room starts clean, even if a crash left a namesake's state behind.
            Event::RoomCreated(r) | Event::RoomDestroyed(r) => policy::destroyed(host, &r),
            _ => {}
        }
        Verdict::Pass
    }
}

impl ComponentPlugin for SpeakerStats {
    fn identity(&self) -> Option<DiscoIdentity> {
        Some(DiscoIdentity::component("speakerstats"))
    }

    fn handle_message(&mut self, host: &impl Host, message: Element) {
        policy::report(host, &message);
    }
}

lilt_plugin_sdk::export_hooks_and_component!(SpeakerStats);
