//! branding: a Lilt plugin for one tenant's brand and rules. The `HookPlugin` impl only routes
//! events; the policy is in policy.rs.
//!
//! World: `lilt:plugin/hooks` (subscribes to `room-pre-create`, `occupant-pre-join`,
//! `occupant-joined`, `presence` and `iq`). Settings: see README.md.

pub mod policy;

use lilt_plugin_sdk::{Configure, Event, EventKind, HookPlugin, Host, Plugin, Verdict};

/// The plugin, configured for one vhost.
#[derive(Debug)]
pub struct Branding {
    vhost: String,
    policy: policy::Policy,
}

impl Plugin for Branding {
    fn configure(ctx: &Configure) -> Result<Self, String> {
        Ok(Branding {
            vhost: ctx.vhost.clone().unwrap_or_default(),
            policy: policy::configure(&ctx.settings_json)?,
        })
    }
}

impl HookPlugin for Branding {
    fn subscriptions(&self) -> Vec<(EventKind, i32)> {
        [
            EventKind::RoomPreCreate,
            EventKind::OccupantPreJoin,
            EventKind::OccupantJoined,
            EventKind::Presence,
            EventKind::Iq,
        ]
        .into_iter()
        .map(|kind| (kind, 100))
        .collect()
    }

    fn handle(&mut self, host: &impl Host, event: Event) -> Verdict {
        let p = &self.policy;
        match event {
            Event::RoomPreCreate { room, .. } => p.pre_create(&room),
            Event::OccupantPreJoin(e) => p.display_name(&e.presence, true),
            Event::Presence(presence) => p.display_name(&presence, false),
            Event::OccupantJoined(e) => {
                p.joined(host, &e.room, &e.occupant, &e.presence);
                Verdict::Pass
            }
            Event::Iq(iq) => p.iq(host, &self.vhost, &iq),
            _ => Verdict::Pass,
        }
    }
}

lilt_plugin_sdk::export_hooks!(Branding);
