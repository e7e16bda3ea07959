//! Every `bindgen!` of the host, in one place (as spin-world does): the `auth`, `hooks`,
//! `component` and `identity` worlds of `wit/` (package `lilt:plugin@0.1.0`). The shared imports are
//! generated once (in the auth world) and reused by the others. Generated code only.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "auth",
});

/// The `hooks` world.
pub(super) mod hooks_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "hooks",
        with: {
            "lilt:plugin/host": crate::plugin::bindings::lilt::plugin::host,
            "lilt:plugin/kv": crate::plugin::bindings::lilt::plugin::kv,
            "lilt:plugin/clock": crate::plugin::bindings::lilt::plugin::clock,
        },
    });
}

/// The `component` world.
pub(super) mod component_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "component",
        with: {
            "lilt:plugin/host": crate::plugin::bindings::lilt::plugin::host,
            "lilt:plugin/kv": crate::plugin::bindings::lilt::plugin::kv,
            "lilt:plugin/clock": crate::plugin::bindings::lilt::plugin::clock,
            "lilt:plugin/stanzas": crate::plugin::bindings::hooks_world::lilt::plugin::stanzas,
        },
    });
}

/// The `identity` world: the `identity-provider` export of `auth-identity` plugins and the
/// `keys` and `ldap` imports.
pub(super) mod identity_world {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "identity",
        with: {
            "lilt:plugin/host": crate::plugin::bindings::lilt::plugin::host,
            "lilt:plugin/kv": crate::plugin::bindings::lilt::plugin::kv,
            "lilt:plugin/clock": crate::plugin::bindings::lilt::plugin::clock,
            "lilt:plugin/types": crate::plugin::bindings::lilt::plugin::types,
        },
    });
}
