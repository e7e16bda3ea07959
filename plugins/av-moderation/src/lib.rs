//! av-moderation: a Lilt plugin replacing jitsi-meet's mod_av_moderation_component. The trait
//! impls only route; the policy is in policy.rs.
//!
//! World: `lilt:plugin/hooks-and-component` (component `avmoderation.DOMAIN`, identity
//! `component/av_moderation`; subscribes to `room-created`, `occupant-joined`,
//! `occupant-left`, `room-destroyed`). Settings: `max_whitelist`, `max_rooms`,
//! `focus_grants_owner` (see README.md).

pub mod policy;

use lilt_plugin_sdk::{
    ComponentPlugin, Configure, DiscoIdentity, Element, Event, EventKind, HookPlugin, Host, Plugin,
    Verdict,
};

/// The plugin, knowing its component domain and settings.
#[derive(Debug)]
pub struct AvModeration {
    component: String,
    settings: policy::Settings,
}

impl Plugin for AvModeration {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        let settings: policy::Settings = ctx.settings()?;
        settings.check()?;
        Ok(AvModeration {
            component: ctx.component.clone().unwrap_or_default(),
            settings,
        })
    }
}

impl AvModeration {
    fn ctx(&self) -> policy::Ctx<'_> {
        policy::Ctx {
            component: &self.component,
            settings: &self.settings,
        }
    }
}

impl HookPlugin for AvModeration {
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
        let ctx = self.ctx();
        match event {
            Event::OccupantJoined(e) => policy::joined(host, &ctx, &e.room.jid, &e.occupant),
            Event::OccupantLeft(e) => policy::left(host, &ctx, &e.room.jid, &e.occupant),
            // A new room starts clean, even if a crash left a namesake's state behind.
            Event::RoomCreated(r) | Event::RoomDestroyed(r) => policy::forget_room(host, &r.jid),
            _ => {}
        }
        Verdict::Pass
    }
}

impl ComponentPlugin for AvModeration {
    fn identity(&self) -> Option<DiscoIdentity> {
        Some(DiscoIdentity::component("av_moderation"))
    }

    fn handle_message(&mut self, host: &impl Host, message: Element) {
        policy::command(host, &self.ctx(), &message);
    }
}

lilt_plugin_sdk::export_hooks_and_component!(AvModeration);
